"""Copy the README's pictures out of a finished `make demo` run.

    .venv/bin/python docs/demo_figures.py [runs/demo]

Writes docs/demo_curves.png (the run's curves.png) and docs/demo_frame.png (a frame of the
first annotated video, enlarged 3x).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import av
from PIL import Image


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
    docs = Path(__file__).parent
    shutil.copyfile(run / "curves.png", docs / "demo_curves.png")
    video = sorted((run / "inference").glob("*.annotated.mp4"))[0]
    with av.open(str(video)) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    frame = frames[len(frames) * 2 // 3]
    frame.resize((frame.width * 3, frame.height * 3), Image.NEAREST).save(docs / "demo_frame.png")
    print(f"wrote {docs / 'demo_curves.png'} and {docs / 'demo_frame.png'} (from {video})")


if __name__ == "__main__":
    main()

"""One H.264 MP4 of held-out synthetic-motion videos back to back, for the picture of `stts serve`'s page.

    .venv/bin/python docs/serve_clip.py [data/synthetic-motion] [serve_clip.mp4] [MoveLeft Grow RotateClockwise]

Three videos of each class (g01, c01-c03: 3.8 s, longer than a window's 2.6 s), one class after
the other, so that the page's timeline shows each; frames are doubled in size (nearest
neighbour) so that the page's player shows them crisp. Each frame is written 4 times at 100 fps:
the demo's 32-frame videos were sampled every frame in training (the frame-step rule for videos
too short for every 4th), and a video this long is sampled every 4th.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av


def main() -> None:
    videos = Path(sys.argv[1] if len(sys.argv) > 1 else "data/synthetic-motion") / "videos" / "UCF-101"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "serve_clip.mp4")
    classes = sys.argv[3:] or ["MoveLeft", "Grow", "RotateClockwise"]
    frames = []
    for name in classes:
        for clip in (1, 2, 3):
            with av.open(str(videos / name / f"v_{name}_g01_c{clip:02d}.avi")) as container:
                for frame in container.decode(video=0):
                    frames += [frame.to_ndarray(format="rgb24").repeat(2, 0).repeat(2, 1)] * 4
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(100))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    print(f"{out}: {', '.join(classes)}, {len(frames)} frames")


if __name__ == "__main__":
    main()

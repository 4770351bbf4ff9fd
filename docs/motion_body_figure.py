"""Draw the motion suite's body family, docs/motion_body.png.

    PYTHONPATH=src .venv/bin/python docs/motion_body_figure.py [SEED] [VIDEOS]

One row per class: for each of the first VIDEOS (default 2) train videos that `generate_family`
writes for that class, six frames evenly spread over the video (as rendered, before MPEG-4
compression), each at its full 160x120. Below each video: its frame count, the figure's height,
whether it is drawn mirrored, its polarity and the camera's pan.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from stts.data.motion import SPLIT_OFFSETS, SUITE
from stts.data.motion_body import ACTIONS, SIZE, render_body

SHOWN = 6  # frames a video
GAP, LABEL, NAME = 8, 16, 104


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    videos = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    width, height = SIZE
    strip = SHOWN * (width + 1)
    sheet = Image.new("RGB", (NAME + videos * (strip + GAP), len(ACTIONS) * (height + LABEL + GAP)), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(13)
    family = list(SUITE).index("body")
    for row, action in enumerate(ACTIONS):
        top = row * (height + LABEL + GAP)
        draw.text((4, top + height // 2 - 7), action, fill="black", font=font)
        for video in range(videos):
            # the seed of this train video in generate_family
            scene = render_body(action, np.random.default_rng([seed, family, row, SPLIT_OFFSETS["train"] + video]))
            left = NAME + video * (strip + GAP)
            for k, index in enumerate(np.linspace(0, len(scene.frames) - 1, SHOWN).round().astype(int)):
                sheet.paste(Image.fromarray(scene.frames[index]), (left + k * (width + 1), top))
            pan = np.ptp(scene.camera[:, 0])
            about = (f"{len(scene.frames)} frames, {scene.stature:.0f} px tall, "
                     f"{'mirrored, ' if scene.mirrored else ''}{'lighter' if scene.polarity > 0 else 'darker'}, "
                     + (f"camera pans {pan:.0f} px" if pan else "still camera"))
            draw.text((left, top + height + 1), about, fill="black", font=font)
    out = Path(__file__).parent / "motion_body.png"
    sheet.save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

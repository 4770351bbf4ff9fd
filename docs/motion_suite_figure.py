"""Draw the motion suite's contact sheet, docs/motion_suite.png.

    PYTHONPATH=src .venv/bin/python docs/motion_suite_figure.py [SEED]

One row per family, one column per class: the first, middle and last frame of the first train
video that `generate_family` writes for that class (as rendered, before MPEG-4 compression).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from stts.data.motion import FAMILIES, MOTIONS, render_video

BOX = (128, 96)  # each frame is scaled to fit this box
GAP, LABEL, NAME = 6, 16, 78


def video_cell(frames: np.ndarray) -> Image.Image:
    cell = Image.new("RGB", (3 * BOX[0] + 2, BOX[1]), "white")
    for k, index in enumerate((0, len(frames) // 2, len(frames) - 1)):
        frame = Image.fromarray(frames[index])
        scale = min(BOX[0] / frame.width, BOX[1] / frame.height)
        frame = frame.resize((round(frame.width * scale), round(frame.height * scale)), Image.Resampling.BILINEAR)
        cell.paste(frame, (k * (BOX[0] + 1) + (BOX[0] - frame.width) // 2, (BOX[1] - frame.height) // 2))
    return cell


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    width = 3 * BOX[0] + 2
    sheet = Image.new("RGB", (NAME + len(MOTIONS) * (width + GAP), len(FAMILIES) * (BOX[1] + LABEL + GAP)), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(13)
    for row, family in enumerate(FAMILIES):
        top = row * (BOX[1] + LABEL + GAP)
        draw.text((4, top + BOX[1] // 2 - 7), family, fill="black", font=font)
        for col, motion in enumerate(MOTIONS):
            # the seed of the first train video of this class in generate_family
            frames, _, fps = render_video(family, motion, np.random.default_rng([seed, row, col, 0]))
            left = NAME + col * (width + GAP)
            sheet.paste(video_cell(frames), (left, top))
            size = f"{frames.shape[2]}x{frames.shape[1]}, {len(frames)} frames, {fps} fps"
            draw.text((left, top + BOX[1] + 1), f"{motion}  ({size})", fill="black", font=font)
    out = Path(__file__).parent / "motion_suite.png"
    sheet.save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

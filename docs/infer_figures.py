"""The README's pictures of segments and explanations, on synthetic-motion.

    .venv/bin/python docs/infer_figures.py [CHECKPOINT]

Without a checkpoint, trains a small STTS-A (width 8) for 150 steps on 8-frame 64x64
synthetic-motion clips of four classes (a few minutes on a CPU). A checkpoint must know the
classes MoveLeft and MoveUp.

Writes docs/infer_timeline.png (the timeline of a video of MoveLeft, then MoveUp: two videos
of each, back to back) and docs/infer_explain.png (a frame of a held-out MoveRight video: the
frame, its Grad-CAM overlay and, for STTS-A, the gates' mean map; the shape outlined in white).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from stts.clip import ClipSpec
from stts.data.synthetic import render_video_and_masks
from stts.data.video import resize_to_stored
from stts.inference.explain import explain_clips, heat_on_frame, overlay_heat
from stts.inference.segments import video_segments, window_times, write_timeline
from stts.inference.windows import window_frame_range
from stts.models import build_model
from stts.runtime import LoadedModel, load_model

CLASSES = ["MoveLeft", "MoveRight", "MoveUp", "MoveDown"]
# 32 rendered frames, every 4th kept: one clip of 8 kept frames shows a whole rendered video's motion
SPEC = ClipSpec(keep_every=4, min_kept=8, height=64, clip_len=8, crop_size=64, view=1.0, normalisation="clip")
SIZE, FRAMES, FPS = 64, 32, 25


def train_quickly(steps: int = 150) -> LoadedModel:
    torch.manual_seed(0)
    clips, labels = [], []
    for index in range(256):
        video, _ = render_video_and_masks(CLASSES[index % 4], FRAMES, SIZE, SIZE, np.random.default_rng([0, index]))
        clips.append(video[::4])
        labels.append(index % 4)
    x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3)  # (N, 3, 8, 64, 64) uint8
    y = torch.tensor(labels)
    model = build_model("stts-a", len(CLASSES), width=8, blocks=(1, 1, 1, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for step in range(steps):
        batch = torch.randint(0, len(x), (8,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(SPEC.normalise(x[batch])), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            print(f"step {step}: loss {loss.item():.3f}", flush=True)
    return LoadedModel(Path("quickly-trained"), model.eval(), SPEC, CLASSES, "fp32", torch.device("cpu"),
                       {"model_type": "stts-a"})


def windows_of(loaded: LoadedModel, frames: np.ndarray) -> tuple[np.ndarray, list[int], int, np.ndarray]:
    """Window clips (W, 3, T, crop, crop) uint8 of decoded frames, their starts, the keep step and the views."""
    spec = loaded.spec
    step = spec.keep_step(len(frames))
    views = spec.centre_view(resize_to_stored(frames[::step], spec))
    starts = spec.window_starts(len(views), 1)
    clips = np.stack([views[spec.window_indices(s, len(views))] for s in starts])
    return torch.from_numpy(clips).permute(0, 4, 1, 2, 3), starts, step, views


def timeline(loaded: LoadedModel, path: Path) -> None:
    parts = [render_video_and_masks(motion, FRAMES, SIZE, SIZE, np.random.default_rng([1, index]))[0]
             for index, motion in enumerate(["MoveLeft", "MoveLeft", "MoveUp", "MoveUp"])]
    frames = np.concatenate(parts)
    clips, starts, step, _ = windows_of(loaded, frames)
    probs = loaded.probabilities(clips).numpy()
    times = window_times([window_frame_range(s, loaded.spec.span, step, len(frames)) for s in starts], FPS)
    segments = video_segments(probs, times, loaded.classes)
    print("segments:", segments)
    write_timeline(probs, times, loaded.classes, segments, path, top=4,
                   title="MoveLeft until 2.56 s, then MoveUp (synthetic-motion, 4 videos back to back)")


def explain_figure(loaded: LoadedModel, path: Path, scale: int = 3) -> None:
    frames, masks = render_video_and_masks("MoveRight", FRAMES, SIZE, SIZE, np.random.default_rng([2, 0]))
    clips, starts, step, _ = windows_of(loaded, frames)
    explanation = explain_clips(loaded, clips[:1])
    t = loaded.spec.clip_len // 2  # the middle frame of the first window
    decoded = int(loaded.spec.window_indices(starts[0], len(frames) // step)[t] * step)
    frame = frames[decoded]
    panels = [frame, overlay_heat(frame, heat_on_frame(explanation.heat[0, t], loaded.spec, *frame.shape[:2]))]
    if explanation.gate is not None:
        panels.append(overlay_heat(frame, heat_on_frame(explanation.gate[0, t], loaded.spec, *frame.shape[:2])))
    outline = Image.fromarray(masks[decoded]).resize((SIZE * scale, SIZE * scale), Image.NEAREST)
    images = []
    for panel in panels:
        image = Image.fromarray(panel).resize((SIZE * scale, SIZE * scale), Image.NEAREST)
        edge = np.asarray(outline, bool) ^ np.asarray(outline.transform(outline.size, Image.AFFINE, (1, 0, 1, 0, 1, 1)), bool)
        pixels = np.asarray(image).copy()
        pixels[edge] = 255
        images.append(Image.fromarray(pixels))
    names = ["frame", f"Grad-CAM: {loaded.classes[explanation.targets[0]]}", "STTS-A gates (mean)"][:len(images)]
    sheet = Image.new("RGB", (len(images) * SIZE * scale, SIZE * scale + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (image, name) in enumerate(zip(images, names, strict=True)):
        sheet.paste(image, (index * SIZE * scale, 18))
        draw.text((index * SIZE * scale + 4, 3), name, fill="black")
    sheet.save(path, optimize=True)


def main() -> None:
    loaded = load_model(sys.argv[1], "cpu", "fp32") if len(sys.argv) > 1 else train_quickly()
    docs = Path(__file__).parent
    timeline(loaded, docs / "infer_timeline.png")
    explain_figure(loaded, docs / "infer_explain.png")
    print(f"wrote {docs / 'infer_timeline.png'} and {docs / 'infer_explain.png'}")


if __name__ == "__main__":
    main()

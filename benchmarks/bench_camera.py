"""What --stabilise costs: a training step of --preset small's network with and without the camera cancelled.

Both rows run the same step (the clip spec's input conversion, forward, backward, Adam) on the
same rendered motion-camera clips at --preset small's shape (8 clips of 16x48x48, clip
standardisation and the temporal residual, STTS-A width 16, fp32); the second also fits and
cancels the camera. Also prints how far the fitted camera is from the rendered one. Prints a
markdown table; timings on a shared machine are noisy.

    python benchmarks/bench_camera.py [--batch 8] [--steps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from stts.camera import clip_cameras
from stts.clip import ClipSpec
from stts.data.motion import FAMILIES, MOTIONS, render_scene
from stts.models import build_model

SIDE, FRAMES = 48, 16


def rendered(count: int):
    """``count`` motion-camera clips of FRAMES frames across each video at the 48-pixel view, with their scenes."""
    clips, truths = [], []
    for i in range(count):
        scene = render_scene("camera", MOTIONS[i % 6], np.random.default_rng([11, list(FAMILIES).index("camera"), i]))
        pick = np.linspace(0, len(scene.frames) - 1, FRAMES).round().astype(int)
        height, width = scene.frames.shape[1:3]
        short = min(height, width)
        top, left = (height - short) // 2, (width - short) // 2
        view = [np.asarray(Image.fromarray(f[top:top + short, left:left + short]).resize((SIDE, SIDE), Image.BILINEAR))
                for f in scene.frames[pick]]
        clips.append(torch.from_numpy(np.stack(view)).permute(3, 0, 1, 2))
        truths.append((scene, pick))
    return torch.stack(clips), truths


def fit_errors(clips: torch.Tensor, truths) -> tuple[np.ndarray, np.ndarray]:
    scale, shift = clip_cameras(clips.float() / 255)
    scale_errors, shift_errors = [], []
    for n, (scene, pick) in enumerate(truths):
        middle, to_view = pick[len(pick) // 2], SIDE / min(scene.frames.shape[1:3])
        for k, frame in enumerate(pick):
            true_shift = (scene.centre[middle] - scene.centre[frame]) * scene.zoom[frame] * to_view
            scale_errors.append(abs(float(scale[n, k]) * scene.zoom[middle] / scene.zoom[frame] - 1))
            shift_errors.append(float(np.linalg.norm(shift[n, k].numpy() - true_shift)))
    return np.array(scale_errors), np.array(shift_errors)


def step_seconds(spec: ClipSpec, clips: torch.Tensor, steps: int) -> tuple[float, float]:
    """(seconds a training step, seconds of it in the input conversion), the median over ``steps``."""
    torch.manual_seed(0)
    model = build_model("stts-a", 6, width=16, in_channels=spec.network_channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    labels = torch.arange(len(clips)) % 6
    totals, inputs = [], []
    for _ in range(steps + 1):
        begin = time.perf_counter()
        x = spec.model_input(clips)
        converted = time.perf_counter()
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(time.perf_counter() - begin)
        inputs.append(converted - begin)
    return float(np.median(totals[1:])), float(np.median(inputs[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clips, truths = rendered(args.batch)
    plain = ClipSpec(clip_len=FRAMES, crop_size=SIDE, normalisation="clip", temporal_residual=True)
    steady = ClipSpec(clip_len=FRAMES, crop_size=SIDE, normalisation="clip", temporal_residual=True, stabilise=True)
    print(f"Training step of STTS-A width 16, {args.batch} clips of {FRAMES}x{SIDE}x{SIDE}, fp32, "
          f"{torch.get_num_threads()} threads\n")
    print("| input | step, ms | of it input conversion, ms | clips/s |")
    print("|---|---:|---:|---:|")
    for name, spec in (("as stored (--stabilise off)", plain), ("camera cancelled (--stabilise on)", steady)):
        total, converted = step_seconds(spec, clips, args.steps)
        print(f"| {name} | {total * 1000:.0f} | {converted * 1000:.0f} | {args.batch / total:.1f} |")
    scale_errors, shift_errors = fit_errors(clips, truths)
    print(f"\nFitted camera against the rendered one over {len(scale_errors)} frames: zoom error median "
          f"{np.median(scale_errors):.2%}, 90th percentile {np.percentile(scale_errors, 90):.2%}; shift error median "
          f"{np.median(shift_errors):.2f} px, 90th percentile {np.percentile(shift_errors, 90):.2f} px of the {SIDE}-pixel view")


if __name__ == "__main__":
    main()

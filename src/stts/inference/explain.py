"""Where a network looks: Grad-CAM of a class for any registered network, STTS-A's attention gates, on the video.

Grad-CAM (Selvaraju et al., 2017): the feature map a network pools globally before its classifier
(found generically: the input of its first adaptive pooling module, the last stage of the ResNets,
the last conv of C3D), weighted per channel by the mean gradient of the class's logit, summed over
channels and passed through a ReLU. That coarse (T', H', W') map is upsampled trilinearly to the
clip's (T, crop, crop) and divided by its maximum, so each clip's heat lies in [0, 1].

STTS-A's gates (:class:`stts.models.layers.GridAttentionGate`) weight each position of a conv's
input by ``sigmoid(psi(...))``; they are captured from ``psi``'s output and upsampled the same way,
their values kept (a weight in [0, 1], not rescaled). ``gate`` is their mean over all gates,
divided by its maximum per clip, for pictures.

Heat is in the coordinates of the network's input, the centre view; :func:`heat_on_frame` puts it
back on the decoded frame (zero outside the view) and :func:`overlay_heat` draws it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..clip import ClipSpec
from ..errors import SttsError
from ..models.layers import GridAttentionGate
from ..runtime import LoadedModel
from .annotate import mp4_writer

POOLS = (nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d)
# the colour map: anchors from cold to hot (dark blue, blue, cyan, yellow, red), interpolated linearly
HEAT_COLOURS = np.array([[0, 0, 128], [0, 64, 255], [0, 224, 255], [255, 230, 0], [255, 32, 0]], np.float32)


@dataclass
class Explanation:
    """What the network looked at in N clips of T frames at the crop size."""

    targets: np.ndarray  # (N,) the class explained in each clip
    probabilities: np.ndarray  # (N, classes)
    heat: np.ndarray  # (N, T, crop, crop) float32 Grad-CAM in [0, 1], 1 at each clip's maximum
    gates: dict[str, np.ndarray] = field(default_factory=dict)  # module name -> (N, T, crop, crop) gate weights
    gate: np.ndarray | None = None  # (N, T, crop, crop) the gates' mean in [0, 1] per clip; None without gates


def feature_module(model: nn.Module) -> nn.Module:
    """The module whose input is the feature map Grad-CAM explains: the network's first adaptive pooling."""
    for module in model.modules():
        if isinstance(module, POOLS):
            return module
    raise SttsError(f"{type(model).__name__}: no adaptive pooling module, so no last feature map to explain")


def grad_cam(model: nn.Module, x: torch.Tensor, target: int | list[int] | torch.Tensor | None = None,
             out_size: tuple[int, int, int] | None = None) -> Explanation:
    """Grad-CAM of ``target`` (None: each clip's predicted class) for float network input ``x`` (N, C, T, H, W).

    Runs with gradients in fp32, the network in eval mode for the call (its mode is restored);
    ``out_size`` is the (T, H, W) to upsample to, ``x``'s by default.
    """
    if x.ndim != 5:
        raise SttsError(f"Grad-CAM needs clips (N, C, T, H, W), got shape {tuple(x.shape)}")
    out_size = tuple(out_size or x.shape[2:])
    captured: dict[str, torch.Tensor] = {}
    gates: dict[str, torch.Tensor] = {}

    def keep_features(_module, inputs):
        captured["features"] = inputs[0]

    def keep_gate(name):
        def hook(_module, _inputs, output):
            gates[name] = torch.sigmoid(output.detach().float())  # GridAttentionGate.attention's sigmoid
        return hook

    handles = [feature_module(model).register_forward_pre_hook(keep_features)]
    handles += [module.psi.register_forward_hook(keep_gate(name)) for name, module in model.named_modules()
                if isinstance(module, GridAttentionGate)]
    training = model.training
    model.eval()
    try:
        with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
            x = x.detach().float().requires_grad_(True)  # a graph even when the weights are frozen
            logits = model(x).float()  # (N, classes)
            targets = _targets(target, logits)
            score = logits.gather(1, targets[:, None]).sum()
            features = captured["features"]  # (N, K, T', H', W')
            (gradient,) = torch.autograd.grad(score, features)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    weights = gradient.float().mean(dim=(2, 3, 4), keepdim=True)  # (N, K, 1, 1, 1)
    cam = F.relu((weights * features.detach().float()).sum(1, keepdim=True))  # (N, 1, T', H', W')
    heat = _per_clip_max(_upsample(cam, out_size))
    explanation = Explanation(targets.cpu().numpy(), torch.softmax(logits.detach(), 1).cpu().numpy(), heat)
    if gates:
        explanation.gates = {name: _upsample(g, out_size) for name, g in gates.items()}
        explanation.gate = _per_clip_max(np.mean(list(explanation.gates.values()), axis=0))
    return explanation


def explain_clips(loaded: LoadedModel, clips: torch.Tensor, target: int | list[int] | None = None) -> Explanation:
    """Grad-CAM (and STTS-A's gates) of uint8 RGB window clips (N, 3, T, crop, crop), as ``LoadedModel.probabilities``
    takes them; ``target`` None explains each clip's predicted class."""
    if clips.ndim != 5 or clips.dtype != torch.uint8 or tuple(clips.shape[1:]) != loaded.spec.input_shape():
        raise SttsError(f"clips must be uint8 {(None, *loaded.spec.input_shape())}, got {clips.dtype} {tuple(clips.shape)}")
    # over every frame of the clips, also where the network saw fewer time steps (pool_frames)
    explanation = grad_cam(loaded.model, loaded.spec.model_input(clips, loaded.device), target,
                           out_size=tuple(clips.shape[2:]))
    # the network saw the clips in their middle frame's camera when the spec stabilises; the frames are drawn as filmed
    explanation.heat = loaded.spec.in_own_cameras(explanation.heat, clips)
    explanation.gates = {name: loaded.spec.in_own_cameras(g, clips) for name, g in explanation.gates.items()}
    if explanation.gate is not None:
        explanation.gate = loaded.spec.in_own_cameras(explanation.gate, clips)
    return explanation


def _targets(target, logits: torch.Tensor) -> torch.Tensor:
    count, classes = logits.shape
    if target is None:
        return logits.detach().argmax(1)
    targets = torch.as_tensor(target, dtype=torch.long, device=logits.device).reshape(-1)
    if len(targets) == 1:
        targets = targets.expand(count)
    if len(targets) != count:
        raise SttsError(f"{len(targets)} target classes for {count} clips; give one, or one per clip")
    if targets.min() < 0 or targets.max() >= classes:
        raise SttsError(f"target class {targets.tolist()} out of range: the network has {classes} classes")
    return targets


def _upsample(maps: torch.Tensor, size: tuple[int, int, int]) -> np.ndarray:
    """(N, 1, T', H', W') -> (N, T, H, W) float32, trilinear (over time too)."""
    return F.interpolate(maps.float(), size=size, mode="trilinear", align_corners=False)[:, 0].cpu().numpy()


def _per_clip_max(maps: np.ndarray) -> np.ndarray:
    peak = maps.reshape(len(maps), -1).max(1).reshape(-1, 1, 1, 1)
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype(np.float32)


# --- onto the video -------------------------------------------------------------------------------------------------

def kept_frame_heat(window_heat: np.ndarray, starts: list[int], spec: ClipSpec, num_kept: int) -> np.ndarray:
    """Windows' heat (W, T, crop, crop), windows starting at kept frames ``starts`` -> (num_kept, crop, crop): each
    kept frame's mean over the windows covering it, each window giving the heat of its clip frame nearest in time.

    Decoded frame i then takes kept frame ``frame_slots(...)[i]`` (see :mod:`stts.inference.windows`).
    """
    if len(window_heat) != len(starts):
        raise SttsError(f"{len(window_heat)} windows of heat for {len(starts)} window starts")
    total = np.zeros((num_kept, *window_heat.shape[2:]), np.float64)
    count = np.zeros(num_kept, np.int64)
    for heat, start in zip(window_heat, starts, strict=True):
        indices = spec.window_indices(start, num_kept)  # the kept frame of each clip frame
        covered = np.arange(indices.min(), min(indices.max() + 1, num_kept))
        nearest = np.abs(covered[:, None] - indices[None, :]).argmin(1)
        total[covered] += heat[nearest]
        count[covered] += 1
    return (total / np.maximum(count, 1)[:, None, None]).astype(np.float32)


def heat_on_frame(heat: np.ndarray, spec: ClipSpec, height: int, width: int) -> np.ndarray:
    """(crop, crop) heat of the centre view -> (height, width) heat on the decoded frame, zero outside the view."""
    if heat.ndim != 2:
        raise SttsError(f"heat must be one frame's (H, W), got shape {heat.shape}")
    top, left, box_h, box_w = spec.centre_box(height, width)
    y0, x0 = round(top), round(left)
    y1, x1 = min(height, round(top + box_h)), min(width, round(left + box_w))
    out = np.zeros((height, width), np.float32)
    if y1 > y0 and x1 > x0:
        resized = Image.fromarray(np.ascontiguousarray(heat, dtype=np.float32), mode="F").resize((x1 - x0, y1 - y0),
                                                                                                 Image.BILINEAR)
        out[y0:y1, x0:x1] = np.asarray(resized)
    return out


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """(H, W) heat in [0, 1] -> (H, W, 3) uint8 RGB, dark blue for 0 to red for 1."""
    position = np.clip(np.nan_to_num(heat), 0, 1) * (len(HEAT_COLOURS) - 1)
    low = np.minimum(position.astype(np.int64), len(HEAT_COLOURS) - 2)
    share = (position - low)[..., None]
    return (HEAT_COLOURS[low] * (1 - share) + HEAT_COLOURS[low + 1] * share).round().astype(np.uint8)


def overlay_heat(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """(H, W, 3) uint8 frame with (H, W) heat in [0, 1] blended on it: colour weight ``alpha * heat`` per pixel,
    so where the network does not look the frame shows unchanged."""
    if frame.shape[:2] != heat.shape or frame.ndim != 3:
        raise SttsError(f"heat {heat.shape} does not fit frame {frame.shape}")
    if not 0 <= alpha <= 1:
        raise SttsError(f"alpha must be in [0, 1], got {alpha}")
    weight = (alpha * np.clip(np.nan_to_num(heat), 0, 1))[..., None]
    return (frame * (1 - weight) + heat_colours(heat) * weight).round().astype(np.uint8)


def write_explain_video(frames: Iterable[np.ndarray], heats: Iterable[np.ndarray], fps: float, path: str | Path,
                        alpha: float = 0.6) -> Path:
    """``<name>.explain.mp4``: each decoded (H, W, 3) frame with its (H, W) heat (see :func:`heat_on_frame`)
    overlaid, written as it comes (H.264, like ``<name>.annotated.mp4``)."""
    with mp4_writer(path, fps) as writer:
        try:
            for frame, heat in zip(frames, heats, strict=True):
                writer.write(overlay_heat(frame, heat, alpha))
        except ValueError:  # zip's: one iterable ended before the other
            raise SttsError(f"{path}: frames and heat maps differ in number") from None
    return Path(path)

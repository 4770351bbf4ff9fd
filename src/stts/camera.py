"""The camera's pan and zoom in a clip, estimated from its frames and cancelled (``ClipSpec.stabilise``).

A network that must tell an object's motion from the camera's learns the camera's motion first,
and from a few hundred videos it does not (issue 10: 56 % on motion-camera, 97 % on the same
classes under a still camera). Trajectory methods cancel the camera before describing motion
(Wang & Schmid, "Action recognition with improved trajectories", 2013); this does the same for
a clip: between consecutive frames it fits x' = s * x + t (zoom s, shift t, about the frame's
centre) to the frames' colours by Gauss-Newton (inverse compositional Lucas-Kanade, coarse to fine),
with Tukey weights so that what moves against the scene (the action) does not pull the fit, then
resamples every frame into the middle frame's camera. Plain tensor operations, batched over clips,
on the clips' device: training, evaluation, inference and serving run the same code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .lazy import onnx_exporting

LEVELS = ((4, 8), (2, 6), (1, 3))  # (pooling, Gauss-Newton steps), coarse to fine: the coarse steps are cheap
KEPT = 0.9  # a fitted camera is kept where it leaves at most this share of a still camera's misfit
TUKEY = 4.685  # Tukey's biweight constant, in robust standard deviations of the residual
# explained_share: cells of the view, and how much of a cell's change the camera must account for to explain it
REGIONS = 8
EXPLAINED = 0.8


def _centred_grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2
    xs = torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2
    return torch.meshgrid(ys, xs, indexing="ij")


def _sampling_grid(scale: torch.Tensor, shift: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W, 2) grid_sample coordinates of the points s * x + t, x the pixels' centred coordinates."""
    ys, xs = _centred_grid(height, width, scale.device)
    x = scale[:, None, None] * xs + shift[:, 0, None, None]
    y = scale[:, None, None] * ys + shift[:, 1, None, None]
    return torch.stack([x / ((width - 1) / 2), y / ((height - 1) / 2)], -1)


def _fit_level(template: torch.Tensor, image: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, steps: int):
    """Refine (scale, shift) so that image(s * x + t) ~ template(x) on one pyramid level (B, C, h, w)."""
    height, width = template.shape[2:]
    padded = F.pad(template, (1, 1, 1, 1), mode="replicate")
    grad_y = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    grad_x = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    ys, xs = _centred_grid(height, width, template.device)
    # (B, 3, C*h*w): d template / d (s, tx, ty), every colour channel a set of pixels of its own
    steepest = torch.stack([grad_x * xs + grad_y * ys, grad_x, grad_y], 1).flatten(2)
    interior = torch.zeros(height, width, device=template.device)
    interior[1:-1, 1:-1] = 1
    for _ in range(steps):
        grid = _sampling_grid(scale, shift, height, width)
        inside = ((grid.abs() <= 1).all(-1).float() * interior)[:, None]
        error = F.grid_sample(image, grid, align_corners=True) - template
        spread = 1.4826 * _median((error.abs() * inside).flatten(1)).clamp_min(1e-3)
        weight = inside * (1 - (error / (TUKEY * spread[:, None, None, None])).square()).clamp_min(0).square()
        weighted = steepest * weight.flatten(1)[:, None]
        hessian = weighted @ steepest.transpose(1, 2)
        damping = 1e-3 * hessian.diagonal(dim1=1, dim2=2).mean(1).clamp_min(1e-6)
        hessian = hessian + damping[:, None, None] * torch.eye(3, device=template.device)
        step = _solve3(hessian, (weighted @ error.flatten(1)[:, :, None])[..., 0])
        step = torch.nan_to_num(step)
        growth = 1 + step[:, 0].clamp(-0.3, 0.3)
        moved = step[:, 1:].clamp(-max(height, width) / 4, max(height, width) / 4)
        # compose with the inverse of the step: x -> (x - dt) / (1 + da), then s * . + t
        scale, shift = scale / growth, shift - scale[:, None] * moved / growth[:, None]
    return scale, shift


def _median(values: torch.Tensor) -> torch.Tensor:
    """(B, K) -> (B,) the lower median of each row; by a sort in an ONNX graph (which has no median), the same value."""
    if onnx_exporting():
        return values.sort(1).values[:, (values.shape[1] - 1) // 2]
    return values.median(1).values


def _misfit(template: torch.Tensor, image: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B,) mean absolute difference between the template and the image resampled by (scale, shift), where both are seen."""
    grid = _sampling_grid(scale, shift, *template.shape[2:])
    inside = (grid.abs() <= 1).all(-1).float()[:, None]
    error = (F.grid_sample(image, grid, align_corners=True) - template).abs()
    return (error * inside).flatten(1).sum(1) / (inside.flatten(1).sum(1) * template.shape[1]).clamp_min(1)


def _solve3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) symmetric positive definite, (B, 3) -> (B, 3) x with a x = b, by the adjugate (an ONNX graph has no solver)."""
    cofactors = torch.stack([torch.linalg.cross(a[:, 1], a[:, 2]), torch.linalg.cross(a[:, 2], a[:, 0]),
                             torch.linalg.cross(a[:, 0], a[:, 1])], 1)
    determinant = (a[:, 0] * cofactors[:, 0]).sum(1)
    return (cofactors.transpose(1, 2) @ b[:, :, None])[..., 0] / determinant[:, None]


def consecutive_cameras(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, T, H, W) frames -> scale (N, T-1), shift (N, T-1, 2): frame k+1 at s * x + t shows frame k's x.

    All colour channels are fitted: a scene's texture may differ in colour more than in brightness.
    """
    n, channels, t, height, width = x.shape
    frames = x.transpose(1, 2)
    template = frames[:, :-1].reshape(-1, channels, height, width)
    image = frames[:, 1:].reshape(-1, channels, height, width)
    # from the frames, not from len(template): a traced graph (ONNX) must not keep the example's batch as a constant
    scale = torch.ones_like(template[:, 0, 0, 0])
    shift = torch.stack([torch.zeros_like(scale)] * 2, 1)
    for factor, steps in LEVELS:
        if min(height, width) // factor < 8:
            continue
        pooled_template = F.avg_pool2d(template, factor) if factor > 1 else template
        pooled_image = F.avg_pool2d(image, factor) if factor > 1 else image
        scale, shift = _fit_level(pooled_template, pooled_image, scale, shift / factor, steps)
        shift = shift * factor
    # a fit that does not explain the frames clearly better than a still camera (a cut, a blank or noisy frame) is not kept
    still_scale, still_shift = torch.ones_like(scale), torch.zeros_like(shift)
    kept = _misfit(template, image, scale, shift) < KEPT * _misfit(template, image, still_scale, still_shift)
    scale, shift = torch.where(kept, scale, still_scale), torch.where(kept[:, None], shift, still_shift)
    return scale.view(n, t - 1), shift.view(n, t - 1, 2)


def from_middle(scale: torch.Tensor, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain consecutive cameras: scale (N, T), shift (N, T, 2), frame k at s * x + t shows the middle frame's x."""
    n, steps = scale.shape
    middle = (steps + 1) // 2
    one, zero = torch.ones(n, device=scale.device), torch.zeros(n, 2, device=scale.device)
    scales, shifts = [one] * (steps + 1), [zero] * (steps + 1)
    s, t = one, zero
    for k in range(middle, steps):  # later frames: apply the middle's step first
        s, t = scale[:, k] * s, scale[:, k, None] * t + shift[:, k]
        scales[k + 1], shifts[k + 1] = s, t
    s, t = one, zero
    for k in range(middle - 1, -1, -1):  # earlier frames: the inverse of the chain from them to the middle
        s, t = s * scale[:, k], s[:, None] * shift[:, k] + t
        scales[k], shifts[k] = 1 / s, -t / s[:, None]
    return torch.stack(scales, 1), torch.stack(shifts, 1)


def clip_cameras(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, T, H, W) values in [0, 1] -> scale (N, T), shift (N, T, 2) of every frame from the middle one."""
    return from_middle(*consecutive_cameras(x.float()))


def stabilise(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) values in [0, 1] -> the same clips resampled into their middle frame's camera
    (what the camera's move brings in from outside the frame repeats the frame's edge)."""
    n, channels, t, height, width = x.shape
    with torch.autocast(x.device.type, enabled=False):
        scale, shift = clip_cameras(x)
        grid = _sampling_grid(scale.flatten(), shift.flatten(0, 1), height, width)
        frames = x.float().transpose(1, 2).reshape(n * t, channels, height, width)
        warped = F.grid_sample(frames, grid, align_corners=True, padding_mode="border")
    return warped.view(n, t, channels, height, width).transpose(1, 2).to(x.dtype)


def to_own_cameras(maps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N, T, H, W) maps over stabilised clips (the middle frame's camera) -> the same over each frame as it was
    filmed; ``x`` (N, 3, T, H, W) the clips' values in [0, 1] before stabilisation. Zero where a frame saw
    what the middle frame did not."""
    n, t, height, width = maps.shape
    with torch.autocast(x.device.type, enabled=False):
        scale, shift = clip_cameras(x)
        scale, shift = scale.flatten(), shift.flatten(0, 1)
        # frame k's point y shows the middle frame's (y - t) / s
        grid = _sampling_grid(1 / scale, -shift / scale[:, None], height, width)
        moved = F.grid_sample(maps.float().reshape(n * t, 1, height, width), grid, align_corners=True)
    return moved.view(n, t, height, width)


def camera_motion(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, T, H, W) values in [0, 1] -> (N,) how far the camera moves a corner of the view within the clip, px."""
    return corner_motion(*clip_cameras(x), *x.shape[-2:])


def corner_motion(scale: torch.Tensor, shift: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Cameras of clips (scale (N, T), shift (N, T, 2)) -> (N,) the farthest a corner of the view moves, px."""
    corners = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], device=scale.device)
    corners = corners * torch.tensor([(width - 1) / 2, (height - 1) / 2], device=scale.device)
    moved = (scale[:, :, None, None] - 1) * corners + shift[:, :, None, :]  # (N, T, 4, 2)
    return moved.norm(dim=-1).flatten(1).amax(1)


def explained_share(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(N, 3, T, H, W) values in [0, 1] and their cameras from :func:`clip_cameras` -> (N,) the share of the view
    whose change from the middle frame the fitted camera explains, on average over the clip's other frames.

    The view is cut into REGIONS x REGIONS cells; in a frame, a cell is explained where the frame resampled into
    the middle frame's camera differs from the middle frame by less than EXPLAINED times as much as the frame as
    filmed does. A camera that moves shows in every cell with texture, in every frame; an object that moves (and
    that the fit follows where the background is plain or faint) only in the cells it covers in that frame or in
    the middle one, while a still background that the fit moves is made worse. Frame by frame, not summed over
    the clip: a bar that crosses the whole view over the clip covers every cell in some frame.
    """
    n, channels, t, height, width = x.shape
    grid = _sampling_grid(scale.flatten(), shift.flatten(0, 1), height, width)
    frames = x.float().transpose(1, 2).reshape(n * t, channels, height, width)
    warped = F.grid_sample(frames, grid, align_corners=True).view(n, t, channels, height, width)
    inside = (grid.abs() <= 1).all(-1).view(n, t, height, width).float()
    filmed = frames.view(n, t, channels, height, width)
    middle = t // 2  # the frame whose camera the others are resampled into (from_middle)
    moved, filmed = (((seen - filmed[:, middle, None]).abs().mean(2) * inside) for seen in (warped, filmed))
    cells = min(REGIONS, height, width)
    moved, filmed = (F.adaptive_avg_pool2d(e, cells).flatten(2) for e in (moved, filmed))  # (N, T, cells²)
    explained = (moved < EXPLAINED * filmed).float().mean(2)
    others = torch.arange(t, device=x.device) != middle
    return explained[:, others].mean(1) if t > 1 else explained[:, 0]

"""The clip spec: how a video becomes network input, decided once and read back by every stage.

``stts prepare`` decides how frames are stored (which decoded frames are kept, at what height)
and writes a spec into ``dataset.json``; ``stts train`` adds how clips are sampled from the stored
frames (length, temporal stride, crop, view scale, flips, normalisation, channel order) and writes
the whole spec into every checkpoint. Evaluation, inference, export and serving read it from the
checkpoint and nowhere else. Each stage turns frames into model input through the functions of
this module only, so that train and serve cannot drift apart.

Frames are uint8 RGB in (T, H, W, 3) until :meth:`ClipSpec.model_input`, which converts a batch
(N, 3, T, H, W) to the network's float input on the device.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .camera import stabilise, to_own_cameras
from .choices import REGIONS
from .errors import SttsError

SPEC_VERSION = 1
CHANNEL_ORDERS = ("RGB", "BGR")
NORMALISATIONS = ("fixed", "clip")  # see InputOptions.normalisation
# local_contrast: a 5x5 window straddles one edge of an object a few pixels across at the 48-pixel view; the floor,
# 8 grey levels, is above the sensor noise of most video (sigma 2-6) and below the contrast of what is worth seeing
CONTRAST_WINDOW = 5
CONTRAST_FLOOR = 8 / 255
# the fields of ClipSpec that decide how a clip becomes numbers (what a network's weights were trained on)
INPUT_FIELDS = ("mean", "std", "channels", "inputs")


@dataclass(frozen=True)
class InputOptions:
    """How a clip's frames become the network's numbers beyond the crop: chosen per run by ``stts train``'s flags
    of the same names, carried in the clip spec (and so in every checkpoint and ONNX file).

    A new input option is a field here (with its default the old behaviour) and a flag in ``stts.cli.options``;
    the training config, the spec's serialisation and warm starts carry the whole group.
    """

    # fixed: (value / 255 - mean) / std with the spec's mean and std (the seed's: mean 0, std 1);
    # clip: each clip less its own per-channel mean, over its own per-channel standard deviation
    normalisation: str = "fixed"
    # the network also sees what moves: each frame less the clip's mean frame, as 3 more channels
    temporal_residual: bool = False
    # the network also sees which way edges move, whatever their contrast: the normal-flow terms (see normal_flow)
    normal_flow: bool = False
    # with normal_flow: the frame change is taken over 1, ..., flow_baselines clip steps either side, 2 channels each
    flow_baselines: int = 1
    # with normal_flow: taken on frames whose local contrast is evened out, so that a region's brightness changing
    # (a flickering light, a shadow) reads as no motion (see local_contrast)
    flow_local_contrast: bool = False
    # the camera's pan and zoom cancelled: every frame resampled into the clip's middle frame's camera (stts.camera);
    # a training config may hold "auto" here until the data decides (engine.recipe)
    stabilise: bool | str = False
    # the network sees the input channels (computed on every clip frame) averaged over this many consecutive clip
    # frames: clip_len / pool_frames time steps, so about pool_frames times less work in the network, while the
    # temporal residual and the normal flow still come from every frame (see ClipSpec.normalise)
    pool_frames: int = 1

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def problems(self) -> list[str]:
        """What is wrong with these options once every "auto" is decided (empty when nothing)."""
        problems = []
        if self.normalisation not in NORMALISATIONS:
            problems.append(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {self.normalisation!r}")
        for name in ("flow_baselines", "pool_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("temporal_residual", "normal_flow", "flow_local_contrast", "stabilise"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        return problems


def carries_input_options(cls):
    """Class decorator for a dataclass with an ``inputs: InputOptions`` field: the options may be given to its
    constructor by their own names (``ClipSpec(normal_flow=True)``) and read as attributes (``spec.normal_flow``)."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args: Any, **fields: Any) -> None:
        options = {name: fields.pop(name) for name in InputOptions.names() if name in fields}
        if options:
            fields["inputs"] = dataclasses.replace(fields.get("inputs", InputOptions()), **options)
        init(self, *args, **fields)

    cls.__init__ = __init__
    for name in InputOptions.names():
        setattr(cls, name, property(functools.partial(_input_option, name=name), doc=f"``inputs.{name}``"))
    return cls


def _input_option(owner: Any, name: str) -> Any:
    return getattr(owner.inputs, name)


@dataclass(frozen=True)
class ClipSample:
    """Which stored frames and which square region of them make one clip."""

    indices: np.ndarray  # stored-frame indices, in clip order (repeats when a video is short)
    box: tuple[int, int, int, int]  # (top, left, height, width) on the stored frame
    flip: bool = False


@carries_input_options
@dataclass(frozen=True)
class ClipSpec:
    """How a video becomes network input. The defaults are the seed's: every 4th frame (denser
    for short videos), height 128, 32-frame clips, 112x112 crops at the stored scale, values / 255.
    """

    # how frames are stored (stts prepare)
    keep_every: int = 4  # keep every 4th decoded frame ...
    min_kept: int = 32  # ... or every 3rd/2nd/1st when fewer than this would be kept (the seed's rule)
    height: int = 128  # stored frames have this height, the width in proportion (see stored_shape)
    hflip: bool = True  # whether training may mirror clips (a flip-sensitive data set says no, or names flip pairs)
    # how clips are sampled from stored frames (stts train)
    clip_len: int = 32  # frames a clip
    clip_stride: int = 1  # stored frames from one clip frame to the next
    crop_size: int = 112  # the network sees crop_size x crop_size
    # eval: the centre region (see region) of this fraction of the frame, resized to crop_size;
    # None: crop_size pixels at the stored scale, unresized (the seed's way)
    view: float | None = None
    # train: a region (see region) of a random fraction in [lo, hi] of the frame, resized to crop_size;
    # None: crop_size pixels at the stored scale at a random place (the seed's way)
    train_views: tuple[float, float] | None = None
    # the shape of the region view and train_views take: "square" (a fraction of the short side, the sides of a
    # wider frame cut away) or "frame" (that fraction of each side: at 1.0 the whole frame, squeezed to the crop)
    region: str = "square"
    # on values in [0, 1], per channel of the network's input order; normalisation "fixed" uses these
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channels: str = "RGB"  # the network's input channel order; the original STTS code fed BGR
    inputs: InputOptions = InputOptions()  # what the network sees beside the frames (chosen per run)
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        problems = []
        for name in ("keep_every", "min_kept", "height", "clip_len", "clip_stride", "crop_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if self.view is not None and not 0 < self.view <= 1:
            problems.append(f"view must be in (0, 1], got {self.view!r}")
        if self.region not in REGIONS:
            problems.append(f"region must be one of {', '.join(REGIONS)}, got {self.region!r}")
        elif self.region == "frame" and self.view is None:
            problems.append("region 'frame' needs a view (a fraction of the frame resized to the crop)")
        if self.train_views is not None and not (len(self.train_views) == 2
                                                 and 0 < self.train_views[0] <= self.train_views[1] <= 1):
            problems.append(f"train_views must be (lo, hi) with 0 < lo <= hi <= 1, got {self.train_views!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            problems.append(f"mean and std need 3 values each, std positive; got {self.mean!r}, {self.std!r}")
        problems += self.inputs.problems()
        if self.channels not in CHANNEL_ORDERS:
            problems.append(f"channels must be one of {', '.join(CHANNEL_ORDERS)}, got {self.channels!r}")
        if isinstance(self.pool_frames, int) and self.pool_frames >= 1 and self.clip_len % self.pool_frames:
            problems.append(f"clip_len ({self.clip_len}) must be a multiple of pool_frames ({self.pool_frames})")
        if self.version != SPEC_VERSION:
            problems.append(f"version {self.version!r} is not {SPEC_VERSION}; a newer stts wrote it")
        if problems:
            raise SttsError("clip spec: " + "; ".join(problems))

    # --- reading and writing ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Flat, as checkpoints and ONNX metadata have always held it: the input options beside the other fields."""
        state = dataclasses.asdict(self)
        state.update(state.pop("inputs"))
        for key in ("train_views", "mean", "std"):
            if state[key] is not None:
                state[key] = list(state[key])
        return state

    @classmethod
    def from_dict(cls, state: Any, source: str = "clip spec") -> ClipSpec:
        """The spec stored in ``source`` (a dataset.json or a checkpoint); one-line SttsError if it is not one."""
        if not isinstance(state, dict):
            raise SttsError(f"{source}: no clip spec (how frames become network input); prepare or train it again "
                            "with this stts, or convert an original STTS checkpoint with `stts convert`")
        known = {f.name for f in dataclasses.fields(cls)} - {"inputs"}
        unknown = sorted(set(state) - known - set(InputOptions.names()))
        if unknown:
            raise SttsError(f"{source}: clip spec has unknown fields {', '.join(unknown)}; a newer stts wrote it")
        values = {k: v for k, v in state.items() if k in known}
        values["inputs"] = InputOptions(**{k: v for k, v in state.items() if k in InputOptions.names()})
        for key in ("train_views", "mean", "std"):
            if values.get(key) is not None:
                values[key] = tuple(float(v) for v in values[key])
        try:
            return cls(**values)
        except SttsError as error:
            raise SttsError(f"{source}: {error}") from None
        except TypeError as error:
            raise SttsError(f"{source}: not a clip spec ({error})") from None

    def replace(self, **changes: Any) -> ClipSpec:
        """A copy with ``changes`` (None values ignored; input options by their own names too), checked."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def with_sampling(self, clip_len: int, clip_stride: int, crop_size: int, view: float | None,
                      train_views: tuple[float, float] | None, hflip: bool | None = None,
                      inputs: InputOptions = InputOptions(), region: str = "square") -> ClipSpec:
        """This storage with a run's sampling and input options (``hflip`` None keeps the data's)."""
        return dataclasses.replace(self, clip_len=clip_len, clip_stride=clip_stride, crop_size=crop_size, view=view,
                                   train_views=None if train_views is None else tuple(train_views), region=region,
                                   hflip=self.hflip if hflip is None else hflip, inputs=inputs)

    def with_input_of(self, other: ClipSpec) -> ClipSpec:
        """This spec with ``other``'s conversion of clips to numbers (a warm start keeps its weights' input)."""
        return dataclasses.replace(self, **{name: getattr(other, name) for name in INPUT_FIELDS})

    def storage(self) -> dict[str, Any]:
        """The fields stts prepare decided: two data sets with equal storage hold the same frames."""
        return {"keep_every": self.keep_every, "min_kept": self.min_kept, "height": self.height}

    def prepared_dict(self) -> dict[str, Any]:
        """What stts prepare writes into dataset.json: the storage and the flip behaviour; training adds the rest."""
        return {**self.storage(), "hflip": self.hflip, "version": self.version}

    def describe(self) -> str:
        """One line for people: what a clip is made of."""
        stride = f", {_every(self.clip_stride, 'stored frame')}" if self.clip_stride > 1 else ""
        if self.view is None:
            crop = f"{self.crop_size}x{self.crop_size} crop"
        else:
            crop = f"centre {self.view:.0%} of the short side resized to {self.crop_size}x{self.crop_size}"
            if self.region == "frame":
                crop = (f"the whole frame resized to {self.crop_size}x{self.crop_size}" if self.view == 1 else
                        f"centre {self.view:.0%} of each side resized to {self.crop_size}x{self.crop_size}")
        scale = (", each clip standardised" if self.normalisation == "clip" else "") + (
            ", plus its temporal residual" if self.temporal_residual else "") + (
            f", plus its normal flow{_over(self.flow_baselines)}{_on_local_contrast(self.flow_local_contrast)}"
            if self.normal_flow else "") + (
            ", the camera's pan and zoom cancelled" if self.stabilise else "") + (
            f", averaged over {self.pool_frames} frames at a time ({self.network_frames} time steps)"
            if self.pool_frames > 1 else "")
        return (f"{self.clip_len} frames{stride} (stored: {_every(self.keep_every, 'frame')}, denser below "
                f"{self.min_kept} kept, height {self.height}), {crop}, {self.channels}{scale}")

    # --- storing frames (stts prepare, and inference exactly alike) --------------------------

    def keep_step(self, num_frames: int | None) -> int:
        """Keep every n-th decoded frame: ``keep_every``, or less when fewer than ``min_kept`` would be kept.

        ``num_frames`` None (a live source, a stream of unknown length) takes ``keep_every``, the
        step any video of ``keep_every * min_kept`` frames or more gets.
        """
        step = self.keep_every
        if num_frames is None:
            return step
        while step > 1 and len(range(0, num_frames, step)) < self.min_kept:
            step -= 1
        return step

    def stored_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of a stored frame: ``self.height`` high, the width in proportion (320x240 -> 170x128).

        As in the seed, a frame whose width would fall under 7/8 of the height (a portrait video)
        gets the width ``self.height`` and the height in proportion instead, so a square crop fits.
        """
        size = self.height
        new_width = int(width * size / height)
        if new_width < size * 7 // 8:
            return int(height * size / width), size
        return size, new_width

    # --- sampling clips from stored frames ---------------------------------------------------

    @property
    def span(self) -> int:
        """Stored frames from a clip's first frame to its last, both included."""
        return (self.clip_len - 1) * self.clip_stride + 1

    def window_indices(self, start: int, num_frames: int) -> np.ndarray:
        """Stored-frame indices of the clip starting at ``start``.

        A video shorter than a clip's span is stretched over the clip by repeating frames in
        order (0,0,1,1,2,...), so it is padded, never dropped, and its motion keeps its direction.
        """
        if num_frames >= self.span:
            return start + np.arange(self.clip_len) * self.clip_stride
        return np.arange(self.clip_len) * num_frames // self.clip_len

    @staticmethod
    def spanning_stride(clip_len: int, stored_frames: float) -> int:
        """The largest clip stride whose clip spans no more than ``stored_frames`` (at least 1).

        A clip that covers a sliver of a video misses motion that unfolds over the whole of it: with
        2..4 jittering distractors, Grow and Shrink (a slow, steady change of size) were half confused
        when 16-frame clips spanned 31 of ~48 frames, not when they spanned 46 (issue 10's note).
        """
        if clip_len < 2:
            return 1
        return max(1, int((stored_frames - 1) // (clip_len - 1)))

    def window_starts(self, num_frames: int, stride: int) -> list[int]:
        """Starts of clips ``stride`` stored frames apart; the last one ends on the last frame."""
        if stride < 1:
            raise SttsError(f"the window stride must be at least 1, got {stride}")
        last = num_frames - self.span
        if last <= 0:
            return [0]
        starts = list(range(0, last + 1, stride))
        return starts if starts[-1] == last else [*starts, last]

    def spaced_starts(self, num_frames: int, windows: int) -> list[int]:
        """``windows`` starts evenly spaced from the first to the last full clip; one window is the middle one."""
        last = max(num_frames - self.span, 0)
        if windows == 1:
            return [last // 2]
        return [round(i * last / (windows - 1)) for i in range(windows)]

    def view_size(self, height: int, width: int, fraction: float | None = None) -> tuple[int, int]:
        """(height, width) of the region of a stored frame that becomes the network's input: ``fraction`` (by default
        the evaluation's ``view``) of the short side a side for a square region, of each side for a frame region."""
        fraction = self.view if fraction is None else fraction
        if fraction is None:
            return self.crop_size, self.crop_size
        if self.region == "frame":
            return max(1, round(fraction * height)), max(1, round(fraction * width))
        side = max(1, round(fraction * min(height, width)))
        return side, side

    def coverage_warnings(self, stored_frames: float, short_side: float) -> list[str]:
        """Lines on clips that may hide a typical video's classes (``stored_frames`` and ``short_side`` of it)."""
        warnings = []
        if stored_frames < self.span:
            warnings.append(f"clips span {self.span} stored frames but half the videos have {stored_frames:.0f} or "
                            "fewer: they are stretched by repeating frames; use a smaller --clip-len or --clip-stride")
        elif self.span < stored_frames / 3:
            warnings.append(f"a clip spans {self.span} of a typical video's {stored_frames:.0f} stored frames (under a "
                            "third): motion slower than that is not seen; --clip-stride "
                            f"{self.spanning_stride(self.clip_len, stored_frames)} (or auto) spans a typical video")
        if self.view is None and self.crop_size < 0.7 * short_side:
            warnings.append(f"the {self.crop_size}-pixel crop sees {self.crop_size / short_side:.0%} of the frames' "
                            f"short side ({short_side:.0f} px): what happens elsewhere is cut away; --view 1.0 resizes "
                            "the whole short side to the crop instead")
        return warnings

    def check_frame_size(self, height: int, width: int, source: str) -> None:
        if self.view is None and min(height, width) < self.crop_size:
            raise SttsError(f"{source}: frames are {width}x{height}, smaller than the {self.crop_size}-pixel crop; "
                            "prepare again with a larger --size, use a smaller --crop-size, or crop a scaled "
                            "view (--preset small does)")

    def train_sample(self, num_frames: int, height: int, width: int, rng: np.random.Generator) -> ClipSample:
        """A random window, a random region (``view_size``) and a random flip (when ``hflip``), drawn from ``rng``."""
        start = int(rng.integers(0, max(num_frames - self.span, 0) + 1))
        if self.train_views is None:
            box_h = box_w = self.crop_size
        else:
            box_h, box_w = self.view_size(height, width, rng.uniform(*self.train_views))
        top, left = int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))
        flip = bool(rng.integers(0, 2)) if self.hflip else False
        return ClipSample(self.window_indices(start, num_frames), (top, left, box_h, box_w), flip)

    def distinct_crops(self, crops: int) -> int:
        """How many different regions ``crops`` evaluation crops (1 or 3) of any frame are: 1 where the region is the
        whole frame (``region`` frame at ``view`` 1.0), whose start, centre and end are the same pixels."""
        return 1 if self.region == "frame" and self.view == 1 else crops

    def eval_samples(self, num_frames: int, height: int, width: int, windows: int = 1,
                     crops: int = 1) -> list[ClipSample]:
        """``windows`` evenly spaced clips x ``crops`` regions (1: centre; 3: start, centre, end of the longer side).

        Three crops of the whole frame are one (``distinct_crops``): then one region a window, not three copies.
        """
        if crops not in (1, 3):
            raise SttsError(f"crops must be 1 or 3, got {crops}")
        crops = self.distinct_crops(crops)
        box_h, box_w = self.view_size(height, width)
        top, left = (height - box_h) // 2, (width - box_w) // 2
        boxes = [(top, left)]
        if crops == 3:
            boxes = ([(top, 0), (top, left), (top, width - box_w)] if width >= height
                     else [(0, left), (top, left), (height - box_h, left)])
        return [ClipSample(self.window_indices(start, num_frames), (t, l, box_h, box_w))
                for start in self.spaced_starts(num_frames, windows) for t, l in boxes]

    def centre_view(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) stored-size frames -> (T, crop, crop, 3): the evaluation view (inference, serving)."""
        box_h, box_w = self.view_size(*frames.shape[1:3])
        if frames.shape[1] < box_h or frames.shape[2] < box_w:
            frames = _grow(frames, max(box_h, box_w))
        top, left = (frames.shape[1] - box_h) // 2, (frames.shape[2] - box_w) // 2
        return self.to_crop(frames[:, top:top + box_h, left:left + box_w])

    def centre_box(self, height: int, width: int) -> tuple[float, float, float, float]:
        """(top, left, height, width) in pixels of a decoded ``height`` x ``width`` frame of the region
        :meth:`centre_view` shows the network once the frame is stored: where its input lies in the video."""
        stored_h, stored_w = self.stored_shape(height, width)
        box_h, box_w = self.view_size(stored_h, stored_w)
        grown_h, grown_w = stored_h, stored_w
        if stored_h < box_h or stored_w < box_w:  # as _grow: a stored frame smaller than the crop is upscaled first
            side = max(box_h, box_w)
            scale = side / min(stored_h, stored_w)
            grown_h, grown_w = max(side, round(stored_h * scale)), max(side, round(stored_w * scale))
        top, left = (grown_h - box_h) // 2, (grown_w - box_w) // 2
        to_h, to_w = height / grown_h, width / grown_w
        return top * to_h, left * to_w, box_h * to_h, box_w * to_w

    def to_crop(self, region: np.ndarray) -> np.ndarray:
        """(T, h, w, 3) uint8 regions -> (T, crop, crop, 3): resized when the view is scaled."""
        size = self.crop_size
        if region.shape[1:3] == (size, size):
            return np.ascontiguousarray(region)
        out = np.empty((len(region), size, size, 3), np.uint8)
        for index, frame in enumerate(region):
            # BILINEAR with Pillow's reducing filter support: antialiased when shrinking
            out[index] = np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((size, size), Image.BILINEAR))
        return out

    # --- the network's input -------------------------------------------------------------------

    def model_input(self, clips: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """uint8 RGB clips (N, 3, T, H, W) -> the network's float input on ``device``, channels-last-3d.

        The conversion runs on the device, so loader workers only move bytes.
        """
        x = self.normalise(clips.to(device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last_3d)

    def normalise(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (N, 3, T, H, W) -> float32 (N, network_channels, network_frames, H, W) in the network's channel
        order and normalisation. Plain tensor operations, so that an exported ONNX graph carries them too.
        """
        x = clips.float() / 255.0
        if self.stabilise:
            x = stabilise(x)
        if self.channels == "BGR":
            x = x.flip(1)
        values = x
        if self.normalisation == "clip":
            # a clip's own brightness and colour cast carry no motion; left in, they dominate a fresh network's
            # first features and it learns nothing from scenes whose colours vary (measured: issue 10's note)
            values = _standardise(x - x.mean(dim=(2, 3, 4), keepdim=True))
        elif self.mean != (0.0, 0.0, 0.0) or self.std != (1.0, 1.0, 1.0):
            mean, std = (torch.tensor(v, device=x.device).view(1, 3, 1, 1, 1) for v in (self.mean, self.std))
            values = (x - mean) / std
        if self.temporal_residual:
            # what stays still (background, clutter) cancels; what moves remains, whatever its contrast
            values = torch.cat([values, _standardise(x - x.mean(dim=2, keepdim=True))], dim=1)
        if self.normal_flow:
            frames = local_contrast(x) if self.flow_local_contrast else x
            values = torch.cat([values, normal_flow(frames, self.flow_baselines)], dim=1)
        if self.pool_frames > 1:
            values = F.avg_pool3d(values, kernel_size=(self.pool_frames, 1, 1))
        return values

    def as_seen(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 RGB clips (N, 3, T, H, W) -> the same after what the input conversion does to the picture
        (the camera cancelled, when ``stabilise``), for people to look at."""
        if not self.stabilise:
            return clips
        return (stabilise(clips.float() / 255.0) * 255).round().to(torch.uint8)

    def in_own_cameras(self, maps: np.ndarray, clips: torch.Tensor) -> np.ndarray:
        """(N, T, crop, crop) maps over the network's input (Grad-CAM heat) -> over each frame of the uint8 clips
        (N, 3, T, crop, crop) as filmed: moved with the camera when ``stabilise``, else unchanged."""
        if not self.stabilise:
            return maps
        return to_own_cameras(torch.from_numpy(maps), clips.float() / 255.0).numpy()

    @property
    def network_channels(self) -> int:
        """Channels of the network's input: 3, 3 more with the temporal residual, 2 more a normal-flow baseline."""
        return 3 + 3 * self.temporal_residual + 2 * self.flow_baselines * self.normal_flow

    @property
    def network_frames(self) -> int:
        """Time steps of the network's input: the clip's frames, averaged ``pool_frames`` at a time."""
        return self.clip_len // self.pool_frames

    def input_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one uint8 RGB clip that model_input takes."""
        return 3, self.clip_len, self.crop_size, self.crop_size



def normal_flow(x: torch.Tensor, baselines: int = 1) -> torch.Tensor:
    """Clips (N, 3, T, H, W) of values in [0, 1] -> (N, 2 * baselines, T, H, W): how fast and which way the edges
    move, x and y, with the frame change taken over 1, ..., ``baselines`` clip steps either side.

    The numerators of Lucas-Kanade's flow, -I_t * dI/dx and -I_t * dI/dy (central differences), summed over the
    colours and over 3x3 pixels: where an edge moves right the first is positive, whether the edge is dark on
    bright or bright on dark. The temporal residual alone has opposite signs for the two contrasts, so a network
    fed only colours and residual must learn direction and contrast together: on motion-slow, whose objects move
    a third of a pixel a clip step, --preset small reached 92.5 % test top-1 in 40 epochs without these channels
    and 97.5 % in 15 with them (issue 10's note). Each baseline is standardised by its clip's root mean square
    (at least one grey level squared), which keeps the ratio of x to y.

    Over k steps a sub-pixel edge moves k times as far while what changes from frame to frame on its own (sensor
    noise, a flickering light) does not grow: a longer baseline sees slow motion k times as clearly, a short one
    keeps fast motion within reach of the gradient's linearisation.
    """
    dx = F.pad(x[..., 2:] - x[..., :-2], (1, 1))
    dy = F.pad(x[..., 2:, :] - x[..., :-2, :], (0, 0, 1, 1))
    frames = torch.arange(x.shape[2], device=x.device)
    flows = []
    for step in range(1, baselines + 1):
        previous = x[:, :, (frames - step).clamp(min=0)]
        following = x[:, :, (frames + step).clamp(max=x.shape[2] - 1)]
        change = previous - following  # -I_t, times 2 * step
        flow = torch.cat([(change * dx).sum(dim=1, keepdim=True), (change * dy).sum(dim=1, keepdim=True)], dim=1)
        flow = F.avg_pool3d(flow, kernel_size=(1, 3, 3), stride=1, padding=(0, 1, 1))
        flows.append(flow / flow.square().mean(dim=(1, 2, 3, 4), keepdim=True).sqrt().clamp_min(1.0 / 255**2))
    return torch.cat(flows, dim=1)


def local_contrast(x: torch.Tensor, window: int = CONTRAST_WINDOW, floor: float = CONTRAST_FLOOR) -> torch.Tensor:
    """Clips (N, C, T, H, W) of values in [0, 1] -> each frame and colour less its local mean, over its local
    standard deviation (``window`` x ``window`` pixels) floored at ``floor``, times ``floor``.

    Where a window holds two levels (an object's edge) the result does not depend on the levels, only on where
    the edge is: an object that flickers or a light that dims changes the frame, not this. Where the deviation is
    under ``floor`` (flat areas and their sensor noise) the values stay as they were, less the local mean; an edge
    of any contrast above ``floor`` comes out at about ``floor``, so that the normal flow of these frames weighs
    faint edges as much as strong ones, and a brightening or dimming object (motion-crowd's distractors flicker by
    up to +-30 grey levels a frame) does not read as one growing or shrinking.
    """
    n, channels, t, height, width = x.shape
    frames = x.transpose(1, 2).reshape(n * t, channels, height, width)
    mean = F.avg_pool2d(frames, window, stride=1, padding=window // 2, count_include_pad=False)
    variance = F.avg_pool2d(frames.square(), window, stride=1, padding=window // 2, count_include_pad=False)
    spread = (variance - mean.square()).clamp_min(0) + floor**2
    evened = (frames - mean) * (floor / spread.sqrt())
    return evened.view(n, t, channels, height, width).transpose(1, 2)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero-mean ``x`` (N, C, T, H, W) over its per-channel root mean square (at least one grey level)."""
    return x / x.square().mean(dim=(2, 3, 4), keepdim=True).sqrt().clamp_min(1.0 / 255)


def _grow(frames: np.ndarray, side: int) -> np.ndarray:
    """Frames upscaled so that neither side is under ``side`` (a stored frame smaller than the crop)."""
    height, width = frames.shape[1:3]
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])


def _over(baselines: int) -> str:
    return "" if baselines == 1 else f" over 1..{baselines} clip steps"


def _on_local_contrast(evened: bool) -> str:
    return ", on frames of evened local contrast" if evened else ""


def _every(n: int, noun: str) -> str:
    return f"every {noun}" if n == 1 else f"every {ORDINALS.get(n, f'{n}th')} {noun}"


ORDINALS = {2: "2nd", 3: "3rd"}

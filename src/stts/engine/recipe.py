"""Every ``auto`` of a training recipe decided in one place, from the data, into a new config and clip spec.

``resolve_recipe`` reads the prepared data (frame counts, a sample of training clips) and returns
what was decided and why; it writes nothing and changes nothing it is given. ``stts train``,
``stts show-clips`` and ``stts.train`` all call it; a resumed run uses the spec saved in its
checkpoint instead, so that what the run was trained on cannot change under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..clip import ClipSpec
from .config import AUTO, TrainConfig

# --clip-stride auto spans the median training video, but never with clip frames further apart than this: on long
# untrimmed videos (a 60 s median gave stride 24, 3.8 s between clip frames) the temporal residual and the normal flow
# would compare frames that share nothing
MAX_CLIP_STEP_SECONDS = 0.5


@dataclass(frozen=True)
class Recipe:
    """A config with every AUTO decided, its clip spec, and one line per decision (for the run's start)."""

    config: TrainConfig
    spec: ClipSpec
    decisions: tuple[str, ...] = ()


def resolve_recipe(config: TrainConfig, root: str | Path) -> Recipe:
    """Decide ``config``'s AUTO values from the prepared data set at ``root``, in the order each needs the last:
    the clip's stride from the training videos' length, then the camera from clips of that stride."""
    from ..data import ClipDataset, read_spec

    stored = read_spec(root)
    decisions = []
    if config.clip_stride == AUTO:
        train = ClipDataset(root, "train", config.decided_stand_in().clip_spec(stored))
        entries = [train.store.entries[video] for video in train.videos]
        frames = float(np.median([len(e["sizes"]) for e in entries] or [1]))
        stored_seconds = float(np.median([e.get("step", 1) / (e.get("fps") or 25.0) for e in entries] or [0.04]))
        stride = ClipSpec.spanning_stride(config.clip_len, frames)
        most = max(1, int(MAX_CLIP_STEP_SECONDS / stored_seconds))
        capped = f"; at most {most}: {MAX_CLIP_STEP_SECONDS} s from one clip frame to the next" if stride > most else ""
        stride = min(stride, most)
        span = (config.clip_len - 1) * stride + 1
        config = config.replace(clip_stride=stride)
        decisions.append(f"--clip-stride auto: {stride} (a {config.clip_len}-frame clip spans {span} stored frames; "
                         f"the median training video has {frames:.0f}{capped})")
    if config.inputs.stabilise == AUTO:
        from .inspect import decide_stabilise

        sampled = config.replace(stabilise=False).clip_spec(stored)
        stabilise, reason = decide_stabilise(ClipDataset(root, "train", sampled))
        config = config.replace(stabilise=stabilise)
        decisions.append(f"--stabilise auto: {'on' if stabilise else 'off'} ({reason})")
    return Recipe(config, config.clip_spec(stored), tuple(decisions))

"""The presets of ``stts train --preset``: plain data, importable without torch (the CLI lists them in its help)."""

from __future__ import annotations

from typing import Any

from ..choices import AUTO

# Settings for a small network on a CPU, applied by --preset (and by the data sets whose registry entry
# names a preset); the options given on the command line win.
# until-plateau, at most 60 epochs: --lr until the smoothed val loss stops improving while train top-1 has stopped
# rising and train or val top-1 has reached 90 % (engine.stopping), then a linear cool-down to 0, so the last
# epochs' weights settle, as they did with the cosine over a fixed 18 epochs that it replaced. The motion suite,
# seeds 0 and 1, took 14-32 epochs and ended >= 95 % clip test top-1 on every shape family against 82.5-100 % for
# the cosine's 18 (docs/motion-suite.md, "The until-plateau schedule on the whole suite"); the demo's 6 epochs
# reached 100 % either way. At most 60 rather than 40 since pool_frames 2 (below): the shapes stop after 16-32,
# and body's 60 pooled epochs take the time of 36 unpooled ones. With ReduceLROnPlateau on a small val split the
# drop came at a random epoch and test top-1 swung by several points (issue 6's note).
# precision auto: bf16 where the CPU runs it natively; with the training layout of models.resnet a train
# step of this preset ran 1.49x faster than fp32 on an AMX CPU (benchmarks/bench_input.py) and learned the
# same (motion-crowd, 12 epochs: 84.2 % test top-1 at the last epoch either way), so the epochs below fit
# in the time 12 fp32 epochs took; CPUs without native bf16 train in fp32. Batch 8 and lr 3e-3: more
# updates per second of CPU, which is what ends the from-scratch plateau sooner; at 18 epochs lr 3e-3 took
# motion-crowd to 93.3 % test top-1 where 2e-3 reached 87.5 % (issue 10's note). normalisation clip and the
# temporal residual: without them a fresh network sat at chance on motion-polarity (scenes of
# random colours) and motion-clutter (static texture and noise); measured in issue 10's note.
# clip_stride auto: the clip spans the median training video, clip frames at most 0.5 s apart (engine.recipe);
# stabilise auto: on when the fitted camera moves and explains the change of most training clips
# (engine.inspect.decide_stabilise).
# normal flow: without it motion-slow needed 40 epochs for 92.5 % test top-1; with it 15 gave 97.5 % (issue 10's
# note, and the motion suite's table in the README).
# region frame: the view is the whole frame (training: 80-100 % of each side), squeezed to the square crop. The
# square of the short side never saw a 4:3 frame's sides: a third of the motion suite's training clips lost over a
# quarter of what moves (benchmarks/bench_crop_coverage.py; frame: 3-23 %), and side by side on the same data and
# seeds frame learned as well or better (docs/motion-suite.md, "The view's shape").
# pool_frames 2: the network runs on the input channels averaged over pairs of frames (8 time steps, each frame's
# residual and flow still in them): a train step 1.66x as fast as AVX2 fp32 (docs/speed.md, "Half the time steps").
# The motion suite side by side with the unpooled preset, seeds 0 and 1 (bf16): the shape families within two test videos
# a seed but crowd (+1.7 and -2.5; as AVX2, seed 0, -5.0: the one family that pays for it), and body reached 82.3 /
# 80.2 % in 60 epochs against 80.2 / 74.0 % in 40 (docs/motion-suite.md, "Pooled frames").
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"width": 16, "clip_len": 16, "clip_stride": AUTO, "crop_size": 48, "view": 1.0, "train_views": (0.8, 1.0),
              "region": "frame",
              "normalisation": "clip", "temporal_residual": True, "normal_flow": True, "stabilise": AUTO,
              "pool_frames": 2,
              "batch_size": 8, "lr": 3e-3, "lr_schedule": "until-plateau", "epochs": 60, "precision": AUTO},
}

"""stts: spatio-temporal networks for human action recognition in video.

The Python API in a few lines (see ``docs/api.md``)::

    import stts

    stts.prepare("synthetic-motion", out="data/synthetic-motion")
    run = stts.train(data="data/synthetic-motion", preset="small", epochs=6, out="runs/demo")
    model = stts.load(run.best)
    prediction = model.predict("video.mp4")
    print(prediction.label, prediction.probability, prediction.topk(3))
    for segment in prediction.segments:
        print(f"{segment.start_time:6.2f}-{segment.end_time:6.2f} s  {segment.label}")

Everything here is imported on first use (PEP 562), so ``import stts`` and the ``stts`` command's
start-up do not pay for torch or the network code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "load": "stts.api",
    "train": "stts.api",
    "prepare": "stts.api",
    "Model": "stts.api",
    "Prediction": "stts.api",
    "Stream": "stts.api",
    "Run": "stts.api",
    "WindowPrediction": "stts.inference.events",
    "Segment": "stts.inference.events",
    "SttsError": "stts.errors",
}

__all__ = ["Model", "Prediction", "Run", "Segment", "Stream", "SttsError", "WindowPrediction", "__version__",
           "load", "prepare", "train"]

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports on first use
    from .api import Model, Prediction, Run, Stream, load, prepare, train
    from .errors import SttsError
    from .inference.events import Segment, WindowPrediction


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Exports imported on first use (PEP 562): what lets ``import stts`` and ``stts infer`` skip modules they never use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public names (``exports``: name -> defining module)
    are imported when first looked up, then kept in the package's namespace."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups do not come back here
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__


def onnx_exporting() -> bool:
    """``torch.onnx.is_in_onnx_export()`` without importing ``torch.onnx`` (~55 ms of ``stts infer``'s start-up)
    in a process that never exports: one that has not imported it cannot be exporting."""
    onnx = sys.modules.get("torch.onnx")
    return onnx is not None and onnx.is_in_onnx_export()

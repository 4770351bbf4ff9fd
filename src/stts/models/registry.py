"""One name -> builder table for every network; the CLI, ``stts models`` and the tests read it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from ..errors import SttsError
from .c3d import C3D
from .resnet import r2plus1d, stts

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    return list(_BUILDERS)


def build_model(
    name: str,
    num_classes: int,
    width: int = 64,
    blocks: Sequence[int] = (2, 2, 2, 2),
    in_channels: int = 3,
) -> nn.Module:
    """Build network ``name`` for ``num_classes`` classes.

    ``width`` is the stem's channel count (64 reproduces the seed; 16 is a small
    CPU-sized network), ``blocks`` the residual blocks per stage (ignored by C3D,
    which has no stages), ``in_channels`` the input's channels.
    """
    if name not in _BUILDERS:
        raise SttsError(f"unknown model {name!r}; choose one of: {', '.join(_BUILDERS)}")
    if num_classes < 1:
        raise SttsError(f"num_classes must be at least 1, got {num_classes}")
    if width < 2 or width % 2:
        raise SttsError(f"width must be an even number of at least 2, got {width}")
    return _BUILDERS[name](num_classes=num_classes, width=width, blocks=tuple(blocks), in_channels=in_channels)


@register_model("stts-a")
def _stts_a(num_classes, width, blocks, in_channels):
    return stts(num_classes, width, blocks, in_channels, attention=True)


@register_model("stts")
def _stts(num_classes, width, blocks, in_channels):
    return stts(num_classes, width, blocks, in_channels, attention=False)


@register_model("r2plus1d")
def _r2plus1d(num_classes, width, blocks, in_channels):
    return r2plus1d(num_classes, width, blocks, in_channels)


@register_model("c3d")
def _c3d(num_classes, width, blocks, in_channels):
    return C3D(num_classes, width, in_channels)

"""Argument types shared by several subcommands."""

from __future__ import annotations

import argparse


def parse_clip(text: str) -> tuple[int, int, int]:
    """'32x112x112' -> (32, 112, 112): frames, height, width."""
    try:
        t, h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"clip must look like 32x112x112 (TxHxW), got {text!r}") from None
    if min(t, h, w) < 1:
        raise argparse.ArgumentTypeError(f"clip sizes must be positive, got {text!r}")
    return t, h, w

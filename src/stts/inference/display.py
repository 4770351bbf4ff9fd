"""``--show``: the seed's pop-up window playing the annotated frames, through OpenCV's highgui.

OpenCV comes from the ``gui`` extra (``pip install stts[gui]``); without it, or
without a display, :func:`display_problem` says why in one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import numpy as np

QUIT_KEYS = {ord("q"), 27}  # q or Esc closes the window


def display_problem() -> str | None:
    """None when a window can be opened, else the reason it cannot."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display ($DISPLAY and $WAYLAND_DISPLAY are unset)"
    try:
        import cv2
    except ImportError:
        return "OpenCV is not installed (pip install 'stts[gui]')"
    info = cv2.getBuildInformation()
    gui = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if "NONE" in gui.upper():
        return "this OpenCV has no GUI support (opencv-python-headless?); pip install 'stts[gui]'"
    return None


def show_frames(frames: Iterable[np.ndarray], fps: float, title: str) -> bool:
    """Play RGB frames in a window at ``fps``; returns False when the user quit (q or Esc)."""
    import cv2

    delay = max(1, round(1000 / fps)) if fps > 0 else 40
    try:
        for frame in frames:
            cv2.imshow(title, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(delay) & 0xFF in QUIT_KEYS:
                return False
        return True
    finally:
        cv2.destroyWindow(title)


class FrameWindow:
    """A window showing RGB frames as they come (live, or as fast as they are labelled); ``show`` returns False
    once the user closed it (q or Esc)."""

    def __init__(self, title: str):
        import cv2

        self.cv2, self.title, self.open = cv2, title, True

    def show(self, frame: np.ndarray) -> bool:
        if self.open:
            self.cv2.imshow(self.title, self.cv2.cvtColor(frame, self.cv2.COLOR_RGB2BGR))
            if self.cv2.waitKey(1) & 0xFF in QUIT_KEYS:
                self.close()
        return self.open

    def close(self) -> None:
        if self.open:
            self.open = False
            self.cv2.destroyWindow(self.title)

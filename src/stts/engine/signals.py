"""SIGINT/SIGTERM end a run cleanly: the loop stops at the next batch and leaves a resumable checkpoint."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopRequested(Exception):
    """Raised inside the loop once a stop signal has been seen (on any rank)."""


class StopFlag:
    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopFlag]:
    """Within the block, the first SIGINT/SIGTERM sets ``flag.requested``; a second SIGINT interrupts at once.

    A SIGINT that this process was started ignoring stays ignored, as Unix programs leave it: a background job of
    a non-interactive shell (and many job runners) starts so, and Ctrl-C in the terminal is not meant for it.
    SIGTERM always stops the run cleanly.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield flag
        return

    def handler(number, frame):
        if flag.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        flag.requested = True
        flag.signal_name = signal.Signals(number).name

    numbers = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {number: signal.signal(number, handler) for number in numbers}
    try:
        yield flag
    finally:
        for number, old in previous.items():
            signal.signal(number, old)

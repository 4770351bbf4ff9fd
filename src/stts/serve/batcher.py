"""Windows from concurrent requests share forward passes: a queue, one worker thread, a short wait for a fuller batch.

Nothing here knows what a window is: ``run(items) -> outputs`` is given, one output per item
in order. A request submits all its windows at once and gets one Future for all their outputs.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class _Job:
    items: list[Any]
    future: Future
    enqueued: float
    results: list[Any] = field(default_factory=list)
    remaining: int = 0


@dataclass
class BatchStats:
    submitted: int = 0  # windows
    batches: int = 0
    windows: int = 0
    shared_batches: int = 0  # batches holding windows of more than one request
    largest_batch: int = 0
    failed_batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "mean_batch": round(self.windows / self.batches, 2) if self.batches else 0.0}


class Batcher:
    """A worker thread that runs ``run`` on up to ``max_batch`` queued items at a time.

    When fewer are queued, it waits until the oldest has waited ``wait_s`` for others to
    arrive. The queue has no bound of its own: callers admit a bounded number of requests.
    ``lock``, shared by the batchers of several models, lets one forward pass at a time own
    the cores.
    """

    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], max_batch: int = 8, wait_s: float = 0.01,
                 lock: threading.Lock | None = None, name: str = "batcher"):
        if max_batch < 1 or wait_s < 0:
            raise ValueError(f"max_batch must be at least 1 and wait_s not negative, got {max_batch} and {wait_s}")
        self.run, self.max_batch, self.wait_s = run, max_batch, wait_s
        self.lock = lock or threading.Lock()
        self.stats = BatchStats()
        self._queue: collections.deque[tuple[_Job, int]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, items: list[Any]) -> Future:
        """Queue ``items``; the Future gives their outputs in order. Cancel it to drop those not yet run."""
        future: Future = Future()
        if not items:
            future.set_result([])
            return future
        with self._cond:
            if self._closed:
                raise RuntimeError("batcher is closed")
            job = _Job(items, future, time.monotonic(), [None] * len(items), len(items))
            self._queue.extend((job, index) for index in range(len(items)))
            self.stats.submitted += len(items)
            self._cond.notify()
        return future

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker; what is still queued fails with RuntimeError."""
        with self._cond:
            self._closed = True
            pending = {job for job, _ in self._queue}
            self._queue.clear()
            self._cond.notify()
        for job in pending:
            _settle(job.future, exception=RuntimeError("server shutting down"))
        self._thread.join(timeout)

    def _next_batch(self) -> list[tuple[_Job, int]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            # the oldest window waits at most wait_s for a fuller batch; one that already waited
            # behind a forward pass goes at once
            deadline = self._queue[0][0].enqueued + self.wait_s
            while len(self._queue) < self.max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = []
            while self._queue and len(batch) < self.max_batch:
                job, index = self._queue.popleft()
                if not job.future.done():  # a cancelled request's windows are dropped here
                    batch.append((job, index))
            return batch

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            jobs = {job for job, _ in batch}
            try:
                with self.lock:
                    outputs = self.run([job.items[index] for job, index in batch])
                if len(outputs) != len(batch):
                    raise RuntimeError(f"run gave {len(outputs)} outputs for {len(batch)} items")
            except Exception as error:  # the requests in this batch fail; the worker goes on
                self.stats.failed_batches += 1
                for job in jobs:
                    _settle(job.future, exception=error)
                continue
            self.stats.batches += 1
            self.stats.windows += len(batch)
            self.stats.shared_batches += len(jobs) > 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for (job, index), output in zip(batch, outputs, strict=True):
                job.results[index] = output
                job.remaining -= 1
                if job.remaining == 0:
                    _settle(job.future, result=job.results)
                    job.items = job.results = []  # the clips go as soon as their request is answered
            del batch, jobs, outputs


def _settle(future: Future, result: Any = None, exception: BaseException | None = None) -> None:
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled meanwhile by its request (timeout, disconnect)
        pass

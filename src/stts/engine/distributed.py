"""The DDP rules in one place: who runs where, who writes, how data is sharded.

- ``torchrun`` (one or many machines) sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; we join
  its process group.
- ``--gpu_ids 0,1`` on one machine: :func:`launch` starts one process per GPU itself.
- Otherwise one process, no process group.

Only rank 0 writes files (:attr:`Context.is_main`); seeds are offset by rank; training
data is sharded by :class:`~torch.utils.data.DistributedSampler` (``set_epoch`` every
epoch); evaluation by :class:`ShardSampler`, which never pads with duplicates, so the
reduced metrics equal a single process's.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.multiprocessing.spawn import ProcessException
from torch.utils.data import Sampler

from ..errors import SttsError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def parse_gpu_ids(text: str | None) -> list[torch.device]:
    """``--gpu_ids`` -> devices. None means every visible GPU; without CUDA, the CPU."""
    if not torch.cuda.is_available():
        return [torch.device("cpu")]
    count = torch.cuda.device_count()
    if text is None or text.strip() in ("", "all"):
        return [torch.device("cuda", i) for i in range(count)]
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SttsError(f"--gpu_ids {text!r}: expected comma-separated GPU numbers such as 0,1") from None
    bad = [i for i in ids if not 0 <= i < count]
    if bad or not ids or len(set(ids)) != len(ids):
        raise SttsError(f"--gpu_ids {text!r}: this machine has GPUs 0..{count - 1}; name each at most once")
    return [torch.device("cuda", i) for i in ids]


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def launch(fn: Callable[[Any, Context], Any], config: Any, devices: list[torch.device]) -> Any:
    """Run ``fn(config, context)`` in the right processes (see the module docstring); its result in this one."""
    if launched_by_torchrun():
        local_rank = int(os.environ["LOCAL_RANK"])
        device = torch.device("cuda", local_rank) if devices[0].type == "cuda" else torch.device("cpu")
        context = _init(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), device)
        try:
            result = fn(config, context)
            dist.barrier()  # nobody leaves while another rank still talks to it (gloo aborts otherwise)
            return result
        finally:
            teardown()
    if len(devices) == 1:
        return fn(config, Context(device=devices[0]))
    spawn(fn, config, devices)
    return None


def spawn(fn: Callable[[Any, Context], Any], config: Any, devices: list[torch.device]) -> None:
    """One process per device on this machine (gloo for CPU devices, NCCL for GPUs).

    An :class:`SttsError` in any process is raised here with its own message.
    """
    errors = mp.get_context("spawn").SimpleQueue()
    port = _free_port()
    try:
        mp.spawn(_worker, args=(fn, config, devices, port, errors), nprocs=len(devices), join=True)
    except ProcessException:
        # the failing rank's peers may die first (gloo: "connection closed by peer"): its message wins
        if not errors.empty():
            raise SttsError(errors.get()) from None
        raise


def _worker(rank: int, fn, config, devices: list[torch.device], port: int, errors) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    context = _init(rank, len(devices), devices[rank])
    try:
        fn(config, context)
        dist.barrier()
    except SttsError as error:
        errors.put(str(error))
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        teardown()


def _init(rank: int, world_size: int, device: torch.device) -> Context:
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world_size, device_id=device if device.type == "cuda" else None)
    return Context(rank=rank, world_size=world_size, device=device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broadcast_object(value: Any, context: Context) -> Any:
    """Rank 0's ``value`` on every rank (e.g. a run folder named after the time)."""
    if not context.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flags: list[bool], context: Context) -> list[bool]:
    """Element-wise OR over ranks, so every rank takes the same branch (stop, NaN)."""
    if not context.distributed:
        return flags
    tensor = torch.tensor(flags, dtype=torch.int32, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def sync_buffers(model: nn.Module, context: Context) -> None:
    """Give every rank rank 0's BatchNorm statistics, so that evaluation and the saved weights agree.

    DDP broadcasts buffers at the start of each forward, but the last forward of an epoch
    leaves each rank with its own running statistics.
    """
    if context.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every item exactly once over all ranks, no padding."""

    def __init__(self, length: int, context: Context):
        self.indices = range(context.rank, length, context.world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

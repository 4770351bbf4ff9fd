"""Print the kind of machine a benchmark measures, the folder name of its tables in benchmarks/results/.

A CPU's kind is its family, its fastest instruction set for the networks' convolutions and the cores this
process may use: ``intel-xeon-amx-2cores``, ``amd-epyc-avx512-bf16-2cores``, ``amd-epyc-avx2-2cores``.
The same table differs several times over between those (bf16 runs natively with AVX-512 BF16 or AMX only,
and AMX runs its matmuls ~4x faster than AVX-512 BF16), so ``make bench`` keeps each kind's tables apart.
Under ``ONEDNN_MAX_CPU_ISA=AVX2`` (and ``ATEN_CPU_CAPABILITY=avx2``), which run an AVX-512 CPU as an AVX2 one,
the kind says so: ``amd-epyc-avx512-bf16-as-avx2-2cores``.
With ``--gpu`` and a CUDA GPU present: the GPU's name (``nvidia-h100-80gb-hbm3``); without one, the CPU's kind.

    python benchmarks/device_kind.py [--gpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
from pathlib import Path

# the first flag present names the instruction set (Linux /proc/cpuinfo names), the fastest first
ISA_FLAGS = (("amx_bf16", "amx"), ("avx512_bf16", "avx512-bf16"), ("avx512f", "avx512"), ("avx2", "avx2"))
MARKS = re.compile(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$|\b\d+-core\b", re.IGNORECASE)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU listed; ('', empty) where there is no /proc/cpuinfo."""
    try:
        text = path.read_text()
    except OSError:
        return "", set()
    fields = dict(re.findall(r"^(model name|flags)\s*:\s*(.*)$", text, re.MULTILINE)[:2])
    return fields.get("model name", ""), set(fields.get("flags", "").split())


def cpu_kind(model: str, flags: set[str], cores: int) -> str:
    """``<vendor>-<family>-<isa>-<n>cores`` from a CPU's model name and flags: 'Intel(R) Xeon(R) Platinum 8488C' with
    amx_bf16 on 2 cores -> 'intel-xeon-amx-2cores'. The model number is left out: the VMs we are lent report it or
    not, and the instruction set and the cores decide the speed of what we measure."""
    family = "-".join(slug(MARKS.sub(" ", model)).split("-")[:2]) or slug(platform.machine()) or "unknown"
    isa = next((name for flag, name in ISA_FLAGS if flag in flags), slug(platform.machine()))
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    if cap and cap.upper() not in ("ALL", "DEFAULT"):  # oneDNN held below the CPU's instructions, e.g. to run as AVX2
        isa = f"{isa}-as-{slug(cap)}"
    return "-".join(part for part in dict.fromkeys((family, isa, f"{cores}cores")) if part)


def gpu_kind() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return slug(torch.cuda.get_device_name(0))


def device_kind(gpu: bool = False) -> str:
    """The kind of this machine's first GPU (``gpu`` and one is present), else of its CPU."""
    kind = gpu_kind() if gpu else None
    if kind:
        return kind
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    model, flags = cpu_info()
    return cpu_kind(model or platform.processor(), flags, cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="the GPU's kind when CUDA has one, else the CPU's")
    print(device_kind(parser.parse_args().gpu))


if __name__ == "__main__":
    main()

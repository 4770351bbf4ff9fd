"""benchmarks/bench_gpu.py on the CPU (its --tiny check; no GPU here) and benchmarks/device_kind.py."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stts.models import list_models

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
COLUMNS = ["network", "train clips/s, eager", "train clips/s, torch.compile", "compile s", "inference windows/s",
           "peak GPU MiB, train eager", "peak GPU MiB, train compiled", "peak GPU MiB, inference"]


def load_device_kind():
    spec = importlib.util.spec_from_file_location("device_kind", BENCHMARKS / "device_kind.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / "bench_gpu.py"), *args], capture_output=True, text=True,
                          timeout=600, cwd=BENCHMARKS.parent)


def table(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in output.splitlines()
            if line.startswith("|")]


@pytest.mark.slow
def test_tiny_run_has_a_row_per_network_and_every_column():
    result = run_bench("--tiny")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("CPU, --tiny: ") and load_device_kind().device_kind() in first
    assert "no GPU figure" in first
    header, rule, *rows = table(result.stdout)
    assert header[:len(COLUMNS)] == COLUMNS and header[-1].startswith("loader / train clips/s")
    assert set(rule) == {"---", "---:"} and len(rule) == len(header)
    assert [row[0] for row in rows] == list_models()
    for row in rows:
        assert len(row) == len(header)
        eager, inference = float(row[1]), float(row[4])  # measured, not failed
        assert eager > 0 and inference > 0 and float(row[-1]) > 0
        assert row[2:4] == ["-", "-"]  # --tiny does not compile unless asked
        assert row[5:8] == ["-", "-", "-"]  # no GPU memory on the CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: the run would measure it")
def test_without_a_gpu_it_says_so_and_prints_no_table():
    result = run_bench()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No CUDA GPU on this machine") and "|" not in result.stdout


@pytest.mark.parametrize(("model", "flags", "cores", "kind"), [
    ("Intel(R) Xeon(R) Platinum 8488C", {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, 2,
     "intel-xeon-amx-2cores"),
    ("AMD EPYC", {"avx2", "avx512f", "avx512_bf16"}, 2, "amd-epyc-avx512-bf16-2cores"),
    ("AMD EPYC 7B13 64-Core Processor", {"avx2", "fma"}, 2, "amd-epyc-avx2-2cores"),
    ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", {"avx2"}, 12, "intel-core-avx2-12cores"),
])
def test_cpu_kind_names_family_instruction_set_and_cores(model, flags, cores, kind):
    assert load_device_kind().cpu_kind(model, flags, cores) == kind


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: --gpu names it")
def test_without_a_gpu_the_gpu_kind_is_the_cpus():
    module = load_device_kind()
    assert module.device_kind().endswith("cores") and module.device_kind(gpu=True) == module.device_kind()


def test_a_onednn_isa_cap_is_part_of_the_kind(monkeypatch):
    # an AVX-512 BF16 machine run as an AVX2 one keeps its tables apart from both
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    kind = load_device_kind().cpu_kind("AMD EPYC 9B14", {"avx2", "avx512f", "avx512_bf16"}, 2)
    assert kind == "amd-epyc-avx512-bf16-as-avx2-2cores"

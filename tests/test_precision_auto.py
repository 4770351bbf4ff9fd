"""--precision auto picks bf16 only where the CPU has bf16 instructions, not merely AVX-512."""

from __future__ import annotations

import pytest
import torch

from stts import runtime

CPU = torch.device("cpu")


@pytest.mark.parametrize(("avx512_bf16", "amx", "native"), [(False, False, False), (True, False, True),
                                                            (False, True, True), (True, True, True)])
def test_an_x86_cpu_runs_bf16_natively_only_with_its_instructions(monkeypatch, avx512_bf16, amx, native):
    # a Skylake-SP or Cascade Lake: AVX-512 BW/VL/DQ, which oneDNN's own check takes for bf16, but no BF16
    monkeypatch.setattr(runtime.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert runtime.bf16_supported(CPU) is native
    assert runtime.resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    assert runtime.resolve_precision("auto", CPU, trained="bf16") == ("bf16" if native else "fp32")


def test_elsewhere_onednn_says(monkeypatch):
    monkeypatch.setattr(runtime.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    for answer in (True, False):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda answer=answer: answer, raising=False)
        assert runtime.bf16_supported(CPU) is answer


@pytest.mark.parametrize(("cap", "native"), [("AVX2", False), ("avx512_core", False),
                                             ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True), ("ALL", True),
                                             ("", True)])
def test_a_onednn_isa_cap_below_bf16_makes_auto_fp32(monkeypatch, cap, native):
    # ONEDNN_MAX_CPU_ISA=AVX2 (with ATEN_CPU_CAPABILITY=avx2) is how an AVX-512 BF16 machine runs as an AVX2 one
    monkeypatch.setattr(runtime.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert runtime.resolve_precision("auto", CPU) == ("bf16" if native else "fp32")

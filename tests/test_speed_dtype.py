"""dtype 'auto': bf16 only where the processor runs it natively."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from core.backends import dtype as dtype_module
from core.backends.dtype import cpu_flags, resolve_dtype
from core.config import Settings

EPYC_FLAGS = "fpu vme sse sse2 avx avx2 fma f16c"  # no bf16 instructions
SAPPHIRE_RAPIDS_FLAGS = "fpu sse avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile"


def test_auto_is_the_default_and_explicit_dtypes_pass_through():
    assert Settings().dtype == "auto"
    assert resolve_dtype("float16", "cpu", frozenset()) == "float16"
    assert resolve_dtype("float32", "cpu", frozenset({"avx512_bf16"})) == "float32"


def test_auto_picks_bf16_only_with_native_bf16_on_the_cpu(tmp_path):
    for flags, expected in ((EPYC_FLAGS, "float32"), (SAPPHIRE_RAPIDS_FLAGS, "bfloat16")):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\n")
        assert resolve_dtype("auto", "cpu", cpu_flags(cpuinfo)) == expected
    assert resolve_dtype("auto", "cpu", frozenset({"amx_bf16"})) == "bfloat16"
    assert resolve_dtype("auto", "cpu", frozenset({"avx512f", "avx512_fp16"})) == "float32"
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_arm_features_are_read_too(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 sve\n\n")
    assert cpu_flags(cpuinfo) == frozenset({"fp", "asimd", "bf16", "sve"})


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(EPYC_FLAGS, "float32"), (SAPPHIRE_RAPIDS_FLAGS, "bfloat16")],
)
def test_without_flags_auto_reads_the_cpus_own(monkeypatch, flags, expected):
    monkeypatch.setattr(dtype_module, "cpu_flags", lambda: frozenset(flags.split()))
    assert resolve_dtype("auto", "cpu") == expected


@pytest.mark.parametrize(("supported", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_on_cuda_auto_asks_the_gpu(monkeypatch, supported, expected):
    fake_torch = types.SimpleNamespace(
        cuda=types.SimpleNamespace(is_bf16_supported=lambda: supported)
    )
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert resolve_dtype("auto", "cuda:0", frozenset({"avx512_bf16"})) == expected


def test_other_devices_get_float32():
    assert resolve_dtype("auto", "mps", frozenset({"avx512_bf16", "amx_bf16"})) == "float32"


def test_auto_on_this_machine_follows_its_proc_cpuinfo():
    """The expected dtype from /proc/cpuinfo as the test reads it, apart from the
    code under test: bf16 iff a flags line names avx512_bf16 or amx_bf16."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    flag_lines = re.findall(r"^flags\s*:(.*)$", text, flags=re.MULTILINE)
    native = any(re.search(r"\b(avx512_bf16|amx_bf16)\b", line) for line in flag_lines)
    assert resolve_dtype("auto", "cpu") == ("bfloat16" if native else "float32")

"""dtype 'auto': bf16 only where the processor runs it natively."""

from __future__ import annotations

from core.backends.dtype import cpu_flags, resolve_dtype
from core.config import Settings

EPYC_FLAGS = "fpu vme sse sse2 avx avx2 fma f16c"  # this machine: no bf16 instructions
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
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_auto_on_this_machine_matches_its_cpuinfo():
    native = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    assert resolve_dtype("auto", "cpu") == ("bfloat16" if native else "float32")

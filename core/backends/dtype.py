"""Which torch dtype the transformers backend runs in when the settings say 'auto'.

bfloat16 halves the memory traffic of every matrix product, which is what
limits a small model on a CPU, but only processors with native bf16 dot
products (avx512_bf16, amx_bf16) run it faster than float32; elsewhere torch
emulates it and float32 is quicker. On CUDA, bf16 where the GPU supports it.
"""

from __future__ import annotations

from pathlib import Path

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The feature flags the CPU reports (Linux); empty where there is no cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def resolve_dtype(requested: str, device: str, flags: frozenset[str] | None = None) -> str:
    """`requested` unless it is 'auto': then 'bfloat16' where `device` runs it
    natively, else 'float32'."""
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device != "cpu":
        return "float32"
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if flags & BF16_CPU_FLAGS else "float32"

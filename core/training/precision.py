"""Where and in which precision every trainer (RFT, the meta RM, RL) trains: one rule.

    precision = training_precision(settings)
    SFTConfig(..., use_cpu=precision.use_cpu, bf16=precision.bf16)

The weights are loaded and kept in float32; the forward and backward passes run
in bfloat16 autocast (mixed precision) when the settings' `dtype` asks for it:
'bfloat16', or 'auto' where the device runs bf16 natively (the transformers
backend's rule for 'auto', `core.backends.dtype.resolve_dtype`: a GPU that
supports it, or a CPU with avx512_bf16 / amx_bf16, where one LoRA step of the
embedded model ran 1.8-3.5x faster than in float32 with the same loss to 3
digits). For 'float32' or 'float16' (no loss scaling here), float32 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.backends.dtype import resolve_dtype
from core.config import Settings


@dataclass(frozen=True)
class TrainingPrecision:
    """The device a trainer runs on and whether it trains in bfloat16 autocast."""

    device: str  # 'cpu', 'cuda', 'cuda:1', ...
    bf16: bool

    @property
    def use_cpu(self) -> bool:
        return self.device == "cpu"


def training_precision(settings: Settings) -> TrainingPrecision:
    """The training device (`settings.resolved_device()`, the CPU where CUDA is
    asked for but missing) and the bf16 rule of this module's docstring."""
    device = settings.resolved_device()
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            device = "cpu"
    return TrainingPrecision(device, bf16=resolve_dtype(settings.dtype, device) == "bfloat16")

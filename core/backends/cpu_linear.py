"""Matrix products for the decode step, with weights prepacked by oneDNN on a CPU.

A decode step multiplies a handful of rows (one per sample) by every weight
matrix of the model. PyTorch's default CPU matrix product handles that shape
poorly: measured here (2 AVX2 cores, float32, 8 rows) the 49,152 x 576 output
head took 22 ms with `F.linear` and 7 ms on a weight reordered once into
oneDNN's blocked layout; a 3,072 x 576 projection 0.59 ms against 0.29 ms.
This is the reorder PyTorch's own CPU compiler applies when it freezes a model
(`torch.ops.mkldnn._reorder_linear_weight` and `_linear_pointwise`), done here
once per loaded model, with no compilation step. Elsewhere (a GPU, a build
without oneDNN, float16) `Dense` is a plain `F.linear`.

`int8` trades exactness for speed: per-channel int8 weights, activations
quantised per call (fbgemm's dynamic linear, as `torch.ao` dynamic
quantisation runs it), a quarter of the float32 bytes to read per step. Each
product is off by about 1.5% of its largest output (measured on random
matrices), much as llama.cpp's Q8 activations are; `bench/dtype_agreement.py`
compares the judge's scores.
"""

from __future__ import annotations

import torch  # this module is imported only where a model is loaded

from core.config import DecodeKernel as Kernel

_ROWS_HINT = 8  # the batch size oneDNN tunes the layout for (any size works)


def can_pack(weight: torch.Tensor) -> bool:
    """True where PyTorch has oneDNN and `weight` is a CPU tensor in a dtype it packs."""
    if not torch.backends.mkldnn.is_available() or weight.device.type != "cpu":
        return False
    return weight.dtype == torch.float32 or (
        weight.dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def can_quantize(weight: torch.Tensor) -> bool:
    """True where fbgemm's int8 dynamic linear runs: a float32 CPU weight."""
    return (weight.device.type == "cpu" and weight.dtype == torch.float32
            and "fbgemm" in torch.backends.quantized.supported_engines)


class Dense:
    """`x @ weight.T + bias` for a fixed weight (a copy: fused or packed), no gradient."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
        kernel: Kernel = "packed",
    ) -> None:
        weight = weight.detach()
        self.bias = None if bias is None else bias.detach()
        if kernel == "int8" and can_quantize(weight):
            scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
            zeros = torch.zeros(weight.shape[0], dtype=torch.long)
            quantized = torch.quantize_per_channel(weight, scales, zeros, 0, torch.qint8)
            self.kernel: Kernel = "int8"
            self.weight = torch.ops.quantized.linear_prepack(quantized, self.bias)
        elif kernel != "plain" and can_pack(weight):
            self.kernel = "packed"
            self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, _ROWS_HINT)
        else:
            self.kernel, self.weight = "plain", weight

    @classmethod
    def fused(cls, linears: list[torch.nn.Linear], *, kernel: Kernel = "packed") -> Dense:
        """One product for several linear layers that read the same input: their
        outputs side by side."""
        weight = torch.cat([linear.weight.detach() for linear in linears])
        biases = [linear.bias for linear in linears]
        if all(b is None for b in biases):
            bias = None
        else:
            bias = torch.cat([
                b.detach() if b is not None else weight.new_zeros(linear.out_features)
                for b, linear in zip(biases, linears, strict=True)
            ])
        return cls(weight, bias, kernel=kernel)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel == "packed":
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        if self.kernel == "int8":  # reduce_range: no int16 overflow in AVX2's u8 x s8 products
            return torch.ops.quantized.linear_dynamic(x, self.weight, True)
        return torch.nn.functional.linear(x, self.weight, self.bias)

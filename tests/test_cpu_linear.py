"""The decode step's matrix products: prepacked, int8 and plain give x @ W.T + b."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from core.backends.cpu_linear import Dense, can_pack, can_quantize  # noqa: E402


def linears(*outs: int, bias: bool) -> list:
    torch.manual_seed(0)
    return [torch.nn.Linear(64, n, bias=bias) for n in outs]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rows", [1, 3, 8, 40])
def test_packed_and_plain_products_equal_the_linear_layers(rows, bias):
    layer = linears(96, bias=bias)[0]
    x = torch.randn(rows, 64)
    expected = layer(x).detach()
    for kernel in ("packed", "plain"):
        dense = Dense(layer.weight, layer.bias, kernel=kernel)
        assert torch.allclose(dense(x), expected, atol=1e-5), kernel
    assert Dense(layer.weight, kernel="packed").kernel == ("packed" if can_pack(layer.weight)
                                                          else "plain")


def test_fused_product_is_the_layers_side_by_side_with_missing_biases_as_zero():
    q, k = linears(32, 16, bias=True)
    v = torch.nn.Linear(64, 16, bias=False)
    x = torch.randn(5, 64)
    fused = Dense.fused([q, k, v])
    expected = torch.cat([q(x), k(x), v(x)], dim=-1).detach()
    assert torch.allclose(fused(x), expected, atol=1e-5)
    # a three-dimensional input (batch, 1, features), as the step feeds it
    assert torch.allclose(fused(x[:, None]), expected[:, None], atol=1e-5)


def test_int8_product_is_close_but_not_exact():
    layer = linears(256, bias=True)[0]
    dense = Dense(layer.weight, layer.bias, kernel="int8")
    if not can_quantize(layer.weight):
        assert dense.kernel != "int8"
        return
    assert dense.kernel == "int8"
    x = torch.randn(8, 64)
    expected = layer(x).detach()
    error = (dense(x) - expected).abs().max() / expected.abs().max()
    assert 0 < error < 0.05


def test_a_gpu_or_float16_weight_stays_plain():
    weight = torch.randn(8, 4, dtype=torch.float16)
    assert Dense(weight, kernel="packed").kernel == "plain"
    assert Dense(weight, kernel="int8").kernel == "plain"

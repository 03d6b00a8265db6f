"""Decoding k samples whose prompts repeat, each prompt's keys and values kept once.

The k samples of a judgement show the responses in a few orders, so the batch
has only a few distinct prompts (two for a pair). A plain batched decode keeps
a copy of the prompt's cache per sample and reads all k copies at every step
(and transformers' attention also repeats the grouped key/value heads to the
query heads); with a ~1,500-token prompt that is most of a step's memory
traffic. Here each distinct prompt's cache is stored once: at each step the
queries of all samples of one prompt attend to it together (one matrix product
per key/value head), and to their own generated tokens, under one softmax.

A decode step on a CPU is also bound by the number of small operations and by
PyTorch's matrix product on a few rows, so the step is written for the Llama
block layout (Llama, SmolLM, Qwen2; `supports_tree_decode`) with fused weights:
query/key/value in one product, gate/up in one, each prepacked for oneDNN (or
int8: `cpu_linear`, `Settings.decode_kernel`), and fused RMS norms. The
weights, norms' epsilons, rotary embedding and activation are the model's own;
its modules still run the prefill. Other models keep `shared_prefix`'s static-cache path.

torch is imported inside the functions, so that importing this module is cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import DecodeKernel as Kernel

if TYPE_CHECKING:
    import torch

    from core.backends.cpu_linear import Dense

_KV = list[tuple["torch.Tensor", "torch.Tensor"]]
_LLAMA_LAYOUT = frozenset({"llama", "qwen2"})


def supports_tree_decode(model: Any) -> bool:
    """True for a decoder-only model with the Llama block layout and global
    attention (no sliding window), whose decode step this module can run."""
    config = model.config
    if config.model_type not in _LLAMA_LAYOUT or getattr(config, "use_sliding_window", False):
        return False
    body = getattr(model, "model", None)
    if body is None or not all(
        hasattr(body, n) for n in ("embed_tokens", "layers", "norm", "rotary_emb")
    ):
        return False
    layer = body.layers[0]
    attention, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    return (
        hasattr(model, "lm_head")
        and all(hasattr(getattr(layer, n, None), "variance_epsilon")
                for n in ("input_layernorm", "post_attention_layernorm"))
        and all(hasattr(attention, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj", "scaling"))
        and all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj", "act_fn"))
    )


@dataclass(frozen=True)
class _Layer:
    input_norm: torch.Tensor
    input_eps: float
    qkv: Dense
    o: Dense
    post_norm: torch.Tensor
    post_eps: float
    gate_up: Dense
    down: Dense
    act: Any


@dataclass(frozen=True)
class DecodeWeights:
    """The model's weights as the decode step uses them (copies, fused)."""

    layers: tuple[_Layer, ...]
    norm: torch.Tensor
    norm_eps: float
    head: Dense
    heads: int
    kv_heads: int
    head_dim: int
    scaling: float
    intermediate: int

    @classmethod
    def of(cls, model: Any, *, kernel: Kernel = "packed") -> DecodeWeights:
        from core.backends.cpu_linear import Dense


        body = model.model
        layers = []
        for layer in body.layers:
            attention, mlp = layer.self_attn, layer.mlp
            layers.append(_Layer(
                input_norm=layer.input_layernorm.weight.detach(),
                input_eps=layer.input_layernorm.variance_epsilon,
                qkv=Dense.fused([attention.q_proj, attention.k_proj, attention.v_proj],
                                kernel=kernel),
                o=Dense(attention.o_proj.weight, attention.o_proj.bias, kernel=kernel),
                post_norm=layer.post_attention_layernorm.weight.detach(),
                post_eps=layer.post_attention_layernorm.variance_epsilon,
                gate_up=Dense.fused([mlp.gate_proj, mlp.up_proj], kernel=kernel),
                down=Dense(mlp.down_proj.weight, mlp.down_proj.bias, kernel=kernel),
                act=mlp.act_fn,
            ))
        first = body.layers[0].self_attn
        return cls(
            layers=tuple(layers),
            norm=body.norm.weight.detach(),
            norm_eps=body.norm.variance_epsilon,
            head=Dense(model.lm_head.weight, model.lm_head.bias, kernel=kernel),
            heads=first.q_proj.out_features // first.head_dim,
            kv_heads=first.k_proj.out_features // first.head_dim,
            head_dim=first.head_dim,
            scaling=first.scaling,
            intermediate=body.layers[0].mlp.gate_proj.out_features,
        )


class LazyDecodeWeights:
    """A model's `DecodeWeights`, built on first use (None where the model has
    no Llama layout); a backend keeps one per loaded model."""

    def __init__(self, model: Any, *, kernel: Kernel = "packed") -> None:
        self._model, self._kernel = model, kernel
        self._weights: DecodeWeights | None = None
        self._lock = threading.Lock()

    def get(self) -> DecodeWeights | None:
        if not supports_tree_decode(self._model):
            return None
        with self._lock:
            if self._weights is None:
                self._weights = DecodeWeights.of(self._model, kernel=self._kernel)
            return self._weights


class TreeDecoder:
    """The decode state of a batch of samples: each distinct prompt's cache once,
    each sample's generated keys and values in a preallocated buffer."""

    def __init__(
        self, model: Any, weights: DecodeWeights, prompts: Sequence[_KV],
        prompt_of: Sequence[int], lengths: Sequence[int], max_new_tokens: int,
    ) -> None:
        import torch

        self.model, self.w = model, weights
        keys = prompts[0][0][0]
        self.prompts = [[(k[0], v[0]) for k, v in kv] for kv in prompts]  # (kv_heads, L, dim)
        self.prompt_of = list(prompt_of)
        self.positions = torch.tensor(list(lengths), device=keys.device)
        shape = (len(prompt_of), weights.kv_heads, max_new_tokens, weights.head_dim)
        self.gen_keys = [keys.new_empty(shape) for _ in weights.layers]
        self.gen_values = [keys.new_empty(shape) for _ in weights.layers]
        self.steps = 0
        self._group()

    def _group(self) -> None:
        """The batch rows of each distinct prompt still decoding (None: all rows)."""
        import torch

        rows: dict[int, list[int]] = {}
        for row, prompt in enumerate(self.prompt_of):
            rows.setdefault(prompt, []).append(row)
        device = self.positions.device
        self.groups = [
            (p, None if len(rows) == 1 else torch.tensor(r, device=device), len(r))
            for p, r in rows.items()
        ]

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every batch row not in `rows` (finished samples)."""
        self.prompt_of = [self.prompt_of[r] for r in rows.tolist()]
        self.positions = self.positions[rows]
        self.gen_keys = [k.index_select(0, rows) for k in self.gen_keys]
        self.gen_values = [v.index_select(0, rows) for v in self.gen_values]
        self._group()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row; the logits of each row's next token."""
        import torch

        w = self.w
        body = self.model.model
        batch, t = tokens.shape[0], self.steps
        hidden = body.embed_tokens(tokens)  # (batch, hidden)
        cos, sin = body.rotary_emb(hidden[:, None], self.positions[:, None])  # (batch, 1, dim)
        half = w.head_dim // 2
        rotated = w.heads + w.kv_heads
        for index, layer in enumerate(w.layers):
            qkv = layer.qkv(_rms_norm(hidden, layer.input_norm, layer.input_eps))
            qkv = qkv.view(batch, -1, w.head_dim)
            qk = qkv[:, :rotated]
            turned = torch.cat([-qk[..., half:], qk[..., :half]], dim=-1)
            qk = qk * cos + turned * sin  # the rotary embedding of queries and keys at once
            self.gen_keys[index][:, :, t] = qk[:, w.heads:]
            self.gen_values[index][:, :, t] = qkv[:, rotated:]
            attended = self._attend(index, qk[:, : w.heads], t + 1)
            hidden = hidden + layer.o(attended.reshape(batch, -1))
            gate, up = layer.gate_up(
                _rms_norm(hidden, layer.post_norm, layer.post_eps)
            ).split(w.intermediate, dim=-1)
            hidden = hidden + layer.down(layer.act(gate) * up)
        self.steps += 1
        self.positions = self.positions + 1
        return w.head(_rms_norm(hidden, w.norm, w.norm_eps))

    def _attend(self, layer: int, queries: torch.Tensor, generated: int) -> torch.Tensor:
        """Attention of each row's query heads (batch, heads, dim) over its
        prompt's cache and its own first `generated` tokens; (batch, kv_heads,
        group, dim), the query heads grouped by the key/value head they read."""
        import torch

        w = self.w
        batch = queries.shape[0]
        grouped = (queries * w.scaling).view(batch, w.kv_heads, -1, w.head_dim)
        group = grouped.shape[2]
        own_keys = self.gen_keys[layer][:, :, :generated]
        own_values = self.gen_values[layer][:, :, :generated]
        own_scores = grouped @ own_keys.transpose(-1, -2)  # (batch, kv, group, generated)
        out = torch.empty_like(grouped) if len(self.groups) > 1 else None
        for prompt, rows, n in self.groups:
            keys, values = self.prompts[prompt][layer]  # (kv, L, dim)
            mine = grouped if rows is None else grouped[rows]
            own = own_scores if rows is None else own_scores[rows]
            # (kv, n * group, ...): every query of this prompt's rows, by key/value head
            mine = mine.transpose(0, 1).reshape(w.kv_heads, n * group, w.head_dim)
            own = own.transpose(0, 1).reshape(w.kv_heads, n * group, generated)
            weights = torch.cat([mine @ keys.transpose(-1, -2), own], dim=-1).softmax(
                dim=-1, dtype=torch.float32).to(queries.dtype)
            length = keys.shape[1]
            from_prompt = weights[..., :length] @ values  # (kv, n * group, dim)
            own_weights = weights[..., length:].reshape(w.kv_heads, n, group, generated)
            mine_values = own_values if rows is None else own_values[rows]
            result = (from_prompt.view(w.kv_heads, n, group, w.head_dim).transpose(0, 1)
                      + own_weights.transpose(0, 1) @ mine_values)  # (n, kv, group, dim)
            if out is None:
                return result
            out[rows] = result
        assert out is not None
        return out


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' Llama RMSNorm (computed in float32, scaled in the model's dtype), fused."""
    import torch

    normed = torch.nn.functional.rms_norm(x.float(), (x.shape[-1],), eps=eps)
    return weight * normed.to(x.dtype)

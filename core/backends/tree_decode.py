"""Decoding k samples whose prompts repeat, each prompt's keys and values kept once.

The k samples of a judgement show the responses in a few orders, so the batch
has only a few distinct prompts (two for a pair). A plain batched decode keeps
a copy of the prompt's cache per sample and reads all k copies at every step
(and transformers' attention also repeats the grouped key/value heads to the
query heads); with a ~1,500-token prompt that is most of a step's memory
traffic. Here each distinct prompt's cache is stored once, followed by the
tokens its samples generate, and one attention call per layer runs every
query of every sample, each masked to its own prompt and its own tokens
(`TreeDecoder`).

A decode step on a CPU is also bound by the number of small operations and by
PyTorch's matrix product on a few rows, so the step is written for the Llama
block layout (Llama, SmolLM, Qwen2; `supports_tree_decode`) with fused weights:
query/key/value in one product, gate/up in one, each prepacked for oneDNN (or
int8: `cpu_linear`, `Settings.decode_kernel`), and RMS norms written out
(`_rms_norm`). The weights, norms' epsilons, rotary embedding and activation
are the model's own; its modules still run the prefill. Other models keep
`shared_prefix`'s static-cache path.

torch is imported inside the functions, so that importing this module is cheap.
"""

from __future__ import annotations

import threading
from collections import Counter
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
    """The decode state of a batch of samples, laid out for one attention call
    per layer.

    The samples of each distinct prompt get consecutive slots (as many per
    prompt as the largest group has samples; a smaller group leaves some
    free). Per layer and prompt, one buffer holds the prompt's keys (values
    alike) once, then the tokens its slots generate, column block by column
    block: step t writes one column per slot, at `width + t * slots + slot`.
    A fixed mask lets each slot see its prompt and its own columns, so one
    `scaled_dot_product_attention` over the columns written so far serves
    every query of every sample. A finished sample's slot stays (its queries
    still run, their output unused), so dropping rows copies nothing.
    """

    def __init__(
        self, model: Any, weights: DecodeWeights, prompts: Sequence[_KV],
        prompt_of: Sequence[int], lengths: Sequence[int], max_new_tokens: int,
    ) -> None:
        import torch

        self.model, self.w = model, weights
        first_keys = prompts[0][0][0]
        device = first_keys.device
        widths = [kv[0][0].shape[2] for kv in prompts]
        self.width = width = max(widths)
        self.n_prompts = len(prompts)
        self.slots = max(Counter(prompt_of).values())
        taken: dict[int, int] = {}  # slots given to each prompt's rows so far
        slot_of_row = []
        for prompt in prompt_of:
            slot_of_row.append(prompt * self.slots + taken.get(prompt, 0))
            taken[prompt] = taken.get(prompt, 0) + 1
        self.slot_of_row = torch.tensor(slot_of_row, device=device)
        self.positions = torch.tensor(list(lengths), device=device)
        shape = (len(prompts), weights.kv_heads, width + self.slots * max_new_tokens,
                 weights.head_dim)
        self.keys, self.values = [], []
        for layer in range(len(weights.layers)):
            keys, values = first_keys.new_empty(shape), first_keys.new_empty(shape)
            for p, kv in enumerate(prompts):
                keys[p, :, : widths[p]] = kv[layer][0][0]
                values[p, :, : widths[p]] = kv[layer][1][0]
                keys[p, :, widths[p]:width] = 0  # padding, masked out: no stale NaN
                values[p, :, widths[p]:width] = 0
            self.keys.append(keys)
            self.values.append(values)
        self.mask = _mask(widths, self.slots, weights.heads // weights.kv_heads,
                          max_new_tokens, first_keys)
        self.steps = 0
        self._map_rows()

    def _map_rows(self) -> None:
        """Which row each slot reads (a free slot: any row) and whether rows
        and slots coincide (no gather needed)."""
        import torch

        slot_of_row, total = self.slot_of_row, self.n_prompts * self.slots
        device = slot_of_row.device
        self.identity = bool(len(slot_of_row) == total and torch.equal(
            slot_of_row, torch.arange(total, device=device)))
        self.row_of_slot = torch.zeros(total, dtype=torch.long, device=device)
        self.row_of_slot[slot_of_row] = torch.arange(len(slot_of_row), device=device)

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every batch row not in `rows` (finished samples)."""
        self.slot_of_row = self.slot_of_row[rows]
        self.positions = self.positions[rows]
        self._map_rows()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row; the logits of each row's next token."""
        import torch

        w = self.w
        body = self.model.model
        batch = tokens.shape[0]
        hidden = body.embed_tokens(tokens)  # (batch, hidden)
        cos, sin = body.rotary_emb(hidden[:, None], self.positions[:, None])  # (batch, 1, dim)
        half = w.head_dim // 2
        rotated = w.heads + w.kv_heads
        start = self.width + self.steps * self.slots
        columns = start + self.slots
        for index, layer in enumerate(w.layers):
            qkv = layer.qkv(_rms_norm(hidden, layer.input_norm, layer.input_eps))
            qkv = qkv.view(batch, -1, w.head_dim)
            qk = qkv[:, :rotated]
            turned = torch.cat([-qk[..., half:], qk[..., :half]], dim=-1)
            qkv[:, :rotated] = qk * cos + turned * sin  # rotary embedding of queries and keys
            attended = self._attend(index, qkv, start, columns)
            hidden = hidden + layer.o(attended)
            gate, up = layer.gate_up(
                _rms_norm(hidden, layer.post_norm, layer.post_eps)
            ).split(w.intermediate, dim=-1)
            hidden = hidden + layer.down(layer.act(gate) * up)
        self.steps += 1
        self.positions = self.positions + 1
        return w.head(_rms_norm(hidden, w.norm, w.norm_eps))

    def _attend(self, layer: int, qkv: torch.Tensor, start: int, columns: int) -> torch.Tensor:
        """Store this step's keys and values (columns start.., one per slot) and
        attend every row's query heads over its columns; (batch, hidden)."""
        import torch

        w = self.w
        prompts, slots = self.n_prompts, self.slots
        by_slot = qkv if self.identity else qkv.index_select(0, self.row_of_slot)
        by_slot = by_slot.view(prompts, slots, -1, w.head_dim)
        new = by_slot[:, :, w.heads:].transpose(1, 2)  # (prompts, 2 * kv, slots, dim)
        self.keys[layer][:, :, start:columns] = new[:, : w.kv_heads]
        self.values[layer][:, :, start:columns] = new[:, w.kv_heads:]
        group = w.heads // w.kv_heads
        queries = by_slot[:, :, : w.heads].reshape(prompts, slots, w.kv_heads, group, -1)
        queries = queries.transpose(1, 2).reshape(prompts, w.kv_heads, slots * group, -1)
        out = torch.nn.functional.scaled_dot_product_attention(
            queries, self.keys[layer][:, :, :columns], self.values[layer][:, :, :columns],
            attn_mask=None if self.mask is None else self.mask[..., :columns],
            scale=w.scaling,
        )  # (prompts, kv, slots * group, dim)
        out = out.view(prompts, w.kv_heads, slots, group, -1).transpose(1, 2)
        out = out.reshape(prompts * slots, -1)
        return out if self.identity else out.index_select(0, self.slot_of_row)


def _mask(
    widths: Sequence[int], slots: int, group: int, max_new_tokens: int, like: torch.Tensor,
) -> torch.Tensor | None:
    """The additive attention mask of `TreeDecoder`'s layout, (prompts, 1, slots
    * group, columns): query row `slot * group + head` of prompt p sees p's
    prompt and its slot's own generated columns. None where everything is
    visible (one slot per prompt, prompts of one width)."""
    import torch

    device, width = like.device, max(widths)
    slot = torch.arange(slots, device=device).repeat_interleave(group)  # of each query row
    in_prompt = torch.arange(width, device=device) < torch.tensor(widths, device=device)[:, None]
    own = torch.arange(slots * max_new_tokens, device=device) % slots == slot[:, None]
    visible = torch.cat([
        in_prompt[:, None, :].expand(-1, len(slot), -1),
        own[None].expand(len(widths), -1, -1),
    ], dim=-1)
    if visible.all():
        return None
    mask = torch.zeros(visible.shape, dtype=like.dtype, device=device)
    return mask.masked_fill(~visible, float("-inf"))[:, None]


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' Llama RMSNorm: computed in float32, scaled in the model's
    dtype. Written out because `F.rms_norm` squares by `pow`, ~40 us on 8 rows
    here against ~2 us for `x * x` (the same numbers)."""
    h = x.float()
    variance = (h * h).mean(-1, keepdim=True)
    return weight * (h * variance.add_(eps).rsqrt_()).to(x.dtype)

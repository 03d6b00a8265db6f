"""Decoding k samples whose prompts repeat, each prompt's keys and values kept once.

The k samples of a judgement show the responses in a few orders, so the batch
has only a few distinct prompts (two for a pair). A plain batched decode keeps
a copy of the prompt's cache per sample and reads all k copies at every step;
with a ~1,500-token prompt that is most of a step's memory traffic (and
transformers' attention also repeats the grouped key/value heads to the query
heads). Here each distinct prompt's cache is stored once: at each step the
queries of all samples of one prompt attend to it together (one matrix product
per key/value head), and to their own generated tokens, under one softmax.

The decode step runs the model's own modules (embedding, norms, projections,
rotary embedding, MLP, head), so the weights and the arithmetic outside
attention are transformers'. It applies to the Llama layout that Llama,
SmolLM and Qwen2 share; `supports_tree_decode` says when a model has it.
Everything else keeps `shared_prefix`'s static-cache path.

torch is imported inside the functions, so that importing this module is cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_KV = list[tuple["torch.Tensor", "torch.Tensor"]]
_LLAMA_LAYOUT = frozenset({"llama", "qwen2"})


def supports_tree_decode(model: Any) -> bool:
    """True for a decoder-only model with the Llama block layout and global
    attention (no sliding window), whose decode step this module can run."""
    config = model.config
    if config.model_type not in _LLAMA_LAYOUT or getattr(config, "use_sliding_window", False):
        return False
    body = getattr(model, "model", None)
    if body is None or not all(hasattr(body, n) for n in ("embed_tokens", "layers", "norm",
                                                          "rotary_emb")):
        return False
    layer = body.layers[0]
    attention = getattr(layer, "self_attn", None)
    return (
        hasattr(model, "lm_head")
        and all(hasattr(layer, n) for n in ("input_layernorm", "post_attention_layernorm", "mlp"))
        and attention is not None
        and all(hasattr(attention, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj", "scaling"))
        and hasattr(sys.modules[type(attention).__module__], "apply_rotary_pos_emb")
    )


class TreeDecoder:
    """The decode state of a batch of samples: each distinct prompt's cache once,
    each sample's generated keys and values in a preallocated buffer."""

    def __init__(
        self, model: Any, prompts: Sequence[_KV], prompt_of: Sequence[int],
        lengths: Sequence[int], max_new_tokens: int,
    ) -> None:
        import torch

        self.model = model
        body = model.model
        self.layers = list(body.layers)
        first = self.layers[0].self_attn
        self.rope = sys.modules[type(first).__module__].apply_rotary_pos_emb
        self.head_dim = first.head_dim
        self.scaling = first.scaling
        keys = prompts[0][0][0]
        self.kv_heads = keys.shape[1]
        self.prompts = [[(k[0], v[0]) for k, v in kv] for kv in prompts]  # (kv_heads, L, dim)
        self.prompt_of = torch.tensor(list(prompt_of))
        self.positions = torch.tensor(list(lengths), device=keys.device)
        shape = (len(prompt_of), self.kv_heads, max_new_tokens, self.head_dim)
        self.gen_keys = [keys.new_empty(shape) for _ in self.layers]
        self.gen_values = [keys.new_empty(shape) for _ in self.layers]
        self.steps = 0
        self._group()

    def _group(self) -> None:
        """The batch rows of each distinct prompt still decoding."""
        import torch

        rows: dict[int, list[int]] = {}
        for row, prompt in enumerate(self.prompt_of.tolist()):
            rows.setdefault(prompt, []).append(row)
        self.groups = [(p, torch.tensor(r, device=self.positions.device)) for p, r in rows.items()]

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every batch row not in `rows` (finished samples)."""
        self.prompt_of = self.prompt_of[rows.cpu()]
        self.positions = self.positions[rows]
        self.gen_keys = [k.index_select(0, rows) for k in self.gen_keys]
        self.gen_values = [v.index_select(0, rows) for v in self.gen_values]
        self._group()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row; the logits of each row's next token."""
        body = self.model.model
        batch = tokens.shape[0]
        hidden = body.embed_tokens(tokens[:, None])
        cos, sin = body.rotary_emb(hidden, self.positions[:, None])
        t = self.steps
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            normed = layer.input_layernorm(hidden)
            shape = (batch, 1, -1, self.head_dim)
            queries = attention.q_proj(normed).view(shape).transpose(1, 2)
            keys = attention.k_proj(normed).view(shape).transpose(1, 2)
            values = attention.v_proj(normed).view(shape).transpose(1, 2)
            queries, keys = self.rope(queries, keys, cos, sin)
            self.gen_keys[index][:, :, t] = keys[:, :, 0]
            self.gen_values[index][:, :, t] = values[:, :, 0]
            attended = self._attend(index, queries[:, :, 0], t + 1)
            hidden = hidden + attention.o_proj(attended.reshape(batch, 1, -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        self.steps += 1
        self.positions = self.positions + 1
        return self.model.lm_head(body.norm(hidden)[:, -1])

    def _attend(self, layer: int, queries: torch.Tensor, generated: int) -> torch.Tensor:
        """Attention of each row's query heads (batch, heads, dim) over its
        prompt's cache and its own first `generated` tokens; (batch, kv_heads,
        group, dim), the query heads grouped by the key/value head they read."""
        import torch

        batch, heads, dim = queries.shape
        grouped = queries.view(batch, self.kv_heads, heads // self.kv_heads, dim)
        own_keys = self.gen_keys[layer][:, :, :generated]
        own_values = self.gen_values[layer][:, :, :generated]
        own_scores = grouped @ own_keys.transpose(-1, -2)  # (batch, kv, group, generated)
        out = torch.empty_like(grouped)
        for prompt, rows in self.groups:
            keys, values = self.prompts[prompt][layer]  # (kv, L, dim)
            n = len(rows)
            # (kv, n * group, dim): every query of this prompt's rows, by key/value head
            mine = grouped[rows].transpose(0, 1).reshape(self.kv_heads, -1, dim)
            shared = mine @ keys.transpose(-1, -2)  # (kv, n * group, L)
            own = own_scores[rows].transpose(0, 1).reshape(self.kv_heads, n * grouped.shape[2],
                                                             generated)
            weights = (torch.cat([shared, own], dim=-1) * self.scaling).softmax(
                dim=-1, dtype=torch.float32).to(queries.dtype)
            length = keys.shape[1]
            from_prompt = weights[..., :length] @ values  # (kv, n * group, dim)
            own_weights = weights[..., length:].reshape(self.kv_heads, n, -1, generated)
            from_own = own_weights.transpose(0, 1) @ own_values[rows]  # (n, kv, group, dim)
            out[rows] = from_prompt.view(self.kv_heads, n, -1, dim).transpose(0, 1) + from_own
        return out

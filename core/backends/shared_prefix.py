"""Sampling many sequences whose prompts share prefixes, each shared token prefilled once.

The k samples of a judgement show the responses in a few orders: samples with
the same order have identical prompts, and all of them share the template's
header and the query. `model.generate(num_return_sequences=k)` prefills every
copy; here the distinct token rows are walked as a prefix tree: the longest
prefix common to a group of rows is run through the model once (batch 1), and
each branch continues from that cache. Each distinct row ends as a leaf with
its keys and values and the logits of its last token; then every sample is
decoded together, one token per step: for the Llama layout by `tree_decode`,
which keeps each distinct prompt's cache once (one attention call per layer
for all samples), otherwise in one preallocated static cache of all samples
(a row used by several samples copied into each), right-padded to the longest
row, the padding masked out and each row's position ids counted from its own
length.

With a `watch` (`core.progress`), every prefill chunk and every decode step is
reported, and a stop asked for ends the call there (JudgingStopped).

torch is imported inside the functions, so that importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from core.backends.tree_decode import DecodeWeights, TreeDecoder, supports_tree_decode
from core.progress import GenerationProgress, GenerationWatch

if TYPE_CHECKING:
    import torch

# (the sample of each batch row, the tokens each has generated, their logits) -> logits
Constraint = Callable[[list[int], list[list[int]], "torch.Tensor"], "torch.Tensor"]
_KV = list[tuple["torch.Tensor", "torch.Tensor"]]
S = TypeVar("S")  # what a prefill step leaves for the next (a cache)
L = TypeVar("L")  # what it leaves for decoding (the last token's logits)


@dataclass(frozen=True)
class Sampling:
    """How each next token is picked: greedy (arg max) or temperature / top-p."""

    greedy: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


def sample_shared(
    model: Any,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    sampling: Sampling,
    constraint: Constraint | None = None,
    decode_weights: DecodeWeights | None = None,
    watch: GenerationWatch | None = None,
) -> list[list[int]]:
    """The new tokens of each row (one sample per row; rows may repeat), each
    ending at its first stop token (kept) or after `max_new_tokens`. A model
    with the Llama layout decodes by `tree_decode` on `decode_weights` (built
    here when not given; a backend keeps its own). `watch` hears of every
    prefill chunk and decode step, and may stop the call there."""
    import torch

    if not rows:
        return []
    if not plain_static_cache(model):
        return _sample_padded(model, rows, max_new_tokens, stop_ids, sampling, constraint, watch)
    distinct = list(dict.fromkeys(tuple(r) for r in rows))
    if any(not r for r in distinct):
        raise ValueError("every row needs at least one token")
    index = {row: i for i, row in enumerate(distinct)}
    # the samples of each prompt side by side: tree decoding then needs no gathers
    order = sorted(range(len(rows)), key=lambda sample: index[tuple(rows[sample])])
    prompt_of = [index[tuple(rows[sample])] for sample in order]
    leaves: list[tuple[_KV, torch.Tensor] | None] = [None] * len(distinct)

    def place(leaf: int, kv: _KV, logits: torch.Tensor) -> None:
        leaves[leaf] = (kv, logits)

    with torch.inference_mode():
        run = _Prefill(model, watch, total=_prefill_tokens(distinct), samples=len(rows))
        _walk(distinct, list(range(len(distinct))), 0, None, run, place)
        logits = torch.stack([leaves[p][1] for p in prompt_of])  # type: ignore[index]
        lengths = [len(distinct[p]) for p in prompt_of]
        stepper: _Stepper
        if supports_tree_decode(model):
            weights = decode_weights or DecodeWeights.of(model)
            stepper = TreeDecoder(model, weights, [kv for kv, _ in leaves],  # type: ignore[misc]
                                  prompt_of, lengths, max_new_tokens)
        else:
            stepper = _BatchCache(model, [leaves[p][0] for p in prompt_of],  # type: ignore[index]
                                  lengths, max_new_tokens)
        leaves.clear()  # both steppers hold copies: the prefill caches can go
        ordered = None if constraint is None else _reordered(constraint, order)
        generated = _decode(
            stepper, logits, max_new_tokens=max_new_tokens, stop_ids=set(stop_ids),
            sampling=sampling, constraint=ordered, watch=watch,
        )
    by_sample: list[list[int]] = [[] for _ in rows]
    for position, sample in enumerate(order):
        by_sample[sample] = generated[position]
    return by_sample


def _reordered(constraint: Constraint, order: list[int]) -> Constraint:
    """`constraint` called with the caller's sample numbers, for rows decoded in `order`."""

    def constrain(
        active: list[int], generated: list[list[int]], logits: torch.Tensor,
    ) -> torch.Tensor:
        return constraint([order[a] for a in active], generated, logits)

    return constrain


def plain_static_cache(model: Any) -> bool:
    """True when every layer of the model's static cache is a plain full-attention
    layer, the only kind `_BatchCache` fills; sliding-window or hybrid models
    (Gemma 2, for one) take the padded `model.generate` path instead."""
    from transformers import StaticCache
    from transformers.cache_utils import StaticLayer

    layers = StaticCache(config=model.config, max_cache_len=1).layers
    return all(type(layer) is StaticLayer for layer in layers)


def _sample_padded(
    model: Any,
    rows: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: Sequence[int],
    sampling: Sampling,
    constraint: Constraint | None,
    watch: GenerationWatch | None = None,
) -> list[list[int]]:
    """Every row left-padded into one `model.generate` call: each copy prefilled."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

    width = max(map(len, rows))
    pad = stop_ids[0] if stop_ids else 0
    device = model.device
    ids = torch.tensor([[pad] * (width - len(r)) + list(r) for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    options: dict[str, Any] = (
        {"do_sample": False} if sampling.greedy
        else {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
    )
    if constraint is not None:
        everyone = list(range(len(rows)))

        def constrain(input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            return constraint(everyone, input_ids[:, width:].tolist(), scores)

        options["logits_processor"] = LogitsProcessorList([constrain])
    if watch is not None:
        prompts = sum(map(len, rows))  # every copy is prefilled here
        watch.report(GenerationProgress("prefill", 0, prompts, len(rows)))

        class Watched(StoppingCriteria):
            """Reports each decode step (and stops the call there when asked to)."""

            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor,
                         **kwargs: Any) -> torch.Tensor:
                if input_ids.shape[1] == width + 1:  # the first token: the prefill is done
                    watch.report(GenerationProgress("prefill", prompts, prompts, len(rows)))
                written = [_until_stop(row, stop_ids) for row in input_ids[:, width:].tolist()]
                watch.report(_decoded(written, max_new_tokens, stop_ids))
                return torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)

        options["stopping_criteria"] = StoppingCriteriaList([Watched()])
    with torch.inference_mode():
        torch.manual_seed(sampling.seed)
        output = model.generate(
            input_ids=ids, attention_mask=mask, top_k=None, max_new_tokens=max_new_tokens,
            pad_token_id=pad, eos_token_id=list(stop_ids) or None, **options,
        )
    return [_until_stop(row, stop_ids) for row in output[:, width:].tolist()]


def _until_stop(row: list[int], stop_ids: Sequence[int] | set[int]) -> list[int]:
    """`row` up to and with its first stop token."""
    stop = next((i for i, token in enumerate(row) if token in stop_ids), None)
    return row if stop is None else row[: stop + 1]


def _decoded(
    generated: Sequence[Sequence[int]], max_new_tokens: int, stop_ids: Sequence[int] | set[int],
) -> GenerationProgress:
    """The decode progress of samples that have written `generated` (each up to and
    with its stop token): a finished sample counts its whole budget."""
    ended = [bool(g) and (g[-1] in stop_ids or len(g) >= max_new_tokens) for g in generated]
    return GenerationProgress(
        "decode",
        done=sum(max_new_tokens if e else len(g) for g, e in zip(generated, ended, strict=True)),
        total=len(generated) * max_new_tokens,
        samples=len(generated),
        finished=sum(ended),
        generated=sum(map(len, generated)),
    )


# -- prefill: the prefix tree -------------------------------------------------


def _walk(
    rows: list[tuple[int, ...]],
    group: list[int],
    start: int,
    kv: S | None,
    run: Callable[[S | None, Sequence[int], int], tuple[S, L]],
    place: Callable[[int, S, L], None],
) -> None:
    """Prefill rows[group] (which share rows[..][:start], cached in `kv`), once
    per shared token, and `place` each row's cache and last-token logits;
    `run(kv, tokens, start)` runs tokens at positions start.. on top of kv."""
    if len(group) == 1:
        row = rows[group[0]]
        place(group[0], *run(kv, row[start:], start))
        return
    shortest = min(len(rows[i]) for i in group)
    end = min(_common_length(rows, group, start), shortest - 1)  # each row keeps >= 1 token
    if end > start:
        kv, _ = run(kv, rows[group[0]][start:end], start)
        start = end
    branches: dict[int, list[int]] = {}
    for i in group:
        branches.setdefault(rows[i][start], []).append(i)
    if len(branches) == 1:  # a row is a prefix of another: no further sharing
        for i in group:
            place(i, *run(kv, rows[i][start:], start))
        return
    for branch in branches.values():
        _walk(rows, branch, start, kv, run, place)


def _prefill_tokens(rows: list[tuple[int, ...]]) -> int:
    """The tokens `_walk` runs to prefill `rows` (a shared prefix once)."""
    tokens = 0

    def count(kv: None, chunk: Sequence[int], start: int) -> tuple[None, None]:
        nonlocal tokens
        tokens += len(chunk)
        return None, None

    _walk(rows, list(range(len(rows))), 0, None, count, lambda *_: None)
    return tokens


class _Prefill:
    """`_extend` on `model` as `_walk` runs it, each chunk reported to `watch`
    (which may stop the walk between two chunks)."""

    def __init__(self, model: Any, watch: GenerationWatch | None, *, total: int,
                 samples: int) -> None:
        self.model, self.watch, self.total, self.samples = model, watch, total, samples
        self.done = 0
        self._report()

    def __call__(self, kv: _KV | None, tokens: Sequence[int], start: int
                 ) -> tuple[_KV, torch.Tensor]:
        extended = _extend(self.model, kv, tokens, start)
        self.done += len(tokens)
        self._report()
        return extended

    def _report(self) -> None:
        if self.watch is not None:
            self.watch.report(GenerationProgress("prefill", self.done, self.total, self.samples))


def _common_length(rows: list[tuple[int, ...]], group: list[int], start: int) -> int:
    first = rows[group[0]]
    end = min(len(rows[i]) for i in group)
    for position in range(start, end):
        token = first[position]
        if any(rows[i][position] != token for i in group):
            return position
    return end


def _extend(
    model: Any, kv: _KV | None, tokens: Sequence[int], start: int
) -> tuple[_KV, torch.Tensor]:
    """Run `tokens` (at positions start..) on top of `kv`; the new cache (the
    old one is left as it was) and the logits after the last token."""
    import torch
    from transformers import DynamicCache

    device = model.device
    cache = DynamicCache(ddp_cache_data=kv) if kv else DynamicCache(config=model.config)
    out = model(
        input_ids=torch.tensor([list(tokens)], device=device),
        position_ids=torch.arange(start, start + len(tokens), device=device)[None],
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    layers = out.past_key_values.layers
    return [(layer.keys, layer.values) for layer in layers], out.logits[0, -1]


# -- decode: all samples together ---------------------------------------------


class _Stepper(Protocol):
    def step(self, tokens: torch.Tensor) -> torch.Tensor: ...

    def keep(self, rows: torch.Tensor) -> None: ...


class _BatchCache:
    """One static key/value cache of every sample, for models without the
    Llama layout: the prefilled rows are right-padded to the longest (a row
    used by several samples is copied into each); generated tokens go to the
    columns after it, the padding masked out and each row's position ids
    counted from its own length."""

    def __init__(
        self, model: Any, kvs: Sequence[_KV], lengths: Sequence[int], max_new_tokens: int
    ) -> None:
        import torch
        from transformers import StaticCache

        self.model = model
        self.width = width = max(lengths)
        self.cache = StaticCache(config=model.config, max_cache_len=width + max_new_tokens)
        device = model.device
        columns = torch.arange(width + max_new_tokens, device=device)
        self.positions = torch.tensor(list(lengths), device=device)
        self.mask = (columns[None, :] < self.positions[:, None]).long()
        self.steps = 0
        for layer, sample_layers in zip(self.cache.layers, zip(*kvs, strict=True), strict=True):
            keys, values = sample_layers[0]
            shape = (len(kvs), keys.shape[1], 0, keys.shape[3])
            layer.lazy_initialization(
                torch.empty(shape, dtype=keys.dtype, device=keys.device),
                torch.empty(shape, dtype=values.dtype, device=values.device),
            )
            layer.cumulative_length.fill_(width)
            for sample, (keys, values) in enumerate(sample_layers):
                layer.keys[sample, :, : keys.shape[2]] = keys[0]  # type: ignore[index]
                layer.values[sample, :, : values.shape[2]] = values[0]  # type: ignore[index]

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every batch row not in `rows` (finished samples)."""
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, rows)
            layer.values = layer.values.index_select(0, rows)
            layer.batch_size = len(rows)
        self.positions, self.mask = self.positions[rows], self.mask[rows]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.mask[:, self.width + self.steps] = 1
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=self.mask,
            position_ids=self.positions[:, None],
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.steps += 1
        self.positions = self.positions + 1
        return out.logits[:, -1]


def _decode(
    stepper: _Stepper,
    logits: torch.Tensor,
    *,
    max_new_tokens: int,
    stop_ids: set[int],
    sampling: Sampling,
    constraint: Constraint | None,
    watch: GenerationWatch | None = None,
) -> list[list[int]]:
    """Every sample one token per step from `logits` on, finished rows dropped;
    each step reported to `watch` (which may stop the decoding there)."""
    import torch

    generator = torch.Generator(device=logits.device).manual_seed(sampling.seed)
    active = list(range(logits.shape[0]))  # sample index of each batch row
    generated: list[list[int]] = [[] for _ in active]
    for step in range(max_new_tokens):
        if constraint is not None:
            logits = constraint(active, [generated[s] for s in active], logits)
        tokens = _pick(logits, sampling, generator)
        finished = []
        for row, (sample, token) in enumerate(zip(active, tokens.tolist(), strict=True)):
            generated[sample].append(token)
            if token in stop_ids:
                finished.append(row)
        if watch is not None:
            watch.report(_decoded(generated, max_new_tokens, stop_ids))
        if step == max_new_tokens - 1 or len(finished) == len(active):
            break
        if finished:
            done = set(finished)
            rows = torch.tensor([r for r in range(len(active)) if r not in done],
                                device=logits.device)
            stepper.keep(rows)
            active = [active[r] for r in rows.tolist()]
            tokens = tokens[rows]
        logits = stepper.step(tokens)
    return generated


def _pick(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> torch.Tensor:
    """The next token of each row: arg max, or a draw after temperature and top-p."""
    import torch

    if sampling.greedy:
        return logits.argmax(dim=-1)
    scores = logits.float() / sampling.temperature
    if sampling.top_p < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above
        ordered = ordered.masked_fill(before > sampling.top_p, float("-inf"))
        scores = torch.full_like(scores, float("-inf")).scatter(-1, order, ordered)
    # inverse-CDF draw: `torch.multinomial` draws an exponential per vocabulary
    # entry, ~12 ms a step for 8 rows of 49,152 here; this is one uniform per row
    cumulative = scores.softmax(dim=-1).double().cumsum(dim=-1)
    uniform = 1 - torch.rand(len(scores), 1, generator=generator, dtype=torch.float64,
                             device=scores.device)  # in (0, 1]
    # the first token whose cumulative mass reaches the draw: the draw is above 0
    # and at most the total, so never a token of mass 0, never past the end
    return torch.searchsorted(cumulative, uniform * cumulative[:, -1:])[:, 0]

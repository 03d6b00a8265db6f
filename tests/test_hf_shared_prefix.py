"""Shared-prefix sampling on the real embedded model: the same tokens as plain
per-prompt generation, each shared token prefilled once, rescue still works."""

from __future__ import annotations

import pytest

from core import Judge, JudgeInput, SamplingParams
from core.backends.score_grammar import ScoreGrammar
from core.backends.shared_prefix import Sampling, _sample_padded, plain_static_cache, sample_shared
from core.engine import shown_orders
from core.templates import default_template

pytestmark = pytest.mark.model

PAIR = JudgeInput(
    query="Which planet is closest to the Sun?",
    responses=(
        "Mercury.",
        "Venus is the closest planet to the Sun, because it is the brightest one in the sky.",
    ),
)


@pytest.fixture(scope="module")
def fp32_backend(embedded_backend):
    """The embedded model in float32, where greedy decoding is compared token by token."""
    import torch

    if embedded_backend.model.dtype == torch.float32:
        return embedded_backend
    from core.backends.embedded import embedded_gguf_path
    from core.backends.hf import TransformersBackend
    from core.config import Settings

    return TransformersBackend.load(
        embedded_gguf_path(), cache_dir=Settings().cache_dir, dtype="float32"
    )


def judge_prompts(k: int) -> list[str]:
    """The prompts of a k-sample judgement of PAIR: two orders, suffixes of different length."""
    template = default_template(2)
    return [template.render(PAIR, order, None) for order in shown_orders(2, k, seed=0)]


def plain_greedy(backend, ids: list[int], max_new_tokens: int) -> list[int]:
    """One prompt alone through `model.generate` (batch 1, no padding): the reference."""
    import torch

    output = backend.model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        do_sample=False,
        top_k=None,
        max_new_tokens=max_new_tokens,
        eos_token_id=backend._stop_ids,
        pad_token_id=backend.tokenizer.pad_token_id,
    )
    new = output[0, len(ids) :].tolist()
    stop = next((i for i, t in enumerate(new) if t in backend._stop_ids), None)
    return new if stop is None else new[: stop + 1]


def test_greedy_shared_prefix_equals_plain_per_prompt_generation(fp32_backend):
    prompts = judge_prompts(4)
    rows = [fp32_backend._chat_ids(p) for p in prompts]
    assert len(set(map(tuple, rows))) == 2  # two orders, each twice
    rows.append(fp32_backend._chat_ids(prompts[0][:400]))  # a third, much shorter suffix
    rows.append(fp32_backend._chat_ids(prompts[1] + " Be brief."))  # a longer one
    shared = sample_shared(
        fp32_backend.model, rows, max_new_tokens=12,
        stop_ids=fp32_backend._stop_ids, sampling=Sampling(greedy=True),
    )
    references = {tuple(row): plain_greedy(fp32_backend, row, 12) for row in rows}
    assert [references[tuple(row)] for row in rows] == shared


def test_samples_that_stop_early_leave_the_others_decoding_the_same_tokens(fp32_backend):
    # groups of 3, 1 and 1 rows; rows stop after different numbers of tokens
    prompts = ["Say hi.", "Count from 1 to 30 with commas.", "Say hi.",
               "What is 2+2? Answer with a number only.", "Say hi."]
    rows = [fp32_backend._chat_ids(p) for p in prompts]
    shared = sample_shared(
        fp32_backend.model, rows, max_new_tokens=30,
        stop_ids=fp32_backend._stop_ids, sampling=Sampling(greedy=True),
    )
    lengths = {len(tokens) for tokens in shared}
    assert len(lengths) == 3 and max(lengths) == 30, shared  # two stop early, one runs out
    assert shared == [plain_greedy(fp32_backend, row, 30) for row in rows]


def test_a_constraint_sees_the_callers_sample_numbers_whatever_the_decode_order(fp32_backend):
    import torch

    prompts = judge_prompts(4)  # orders 0, 1, 0, 1: decoded grouped by prompt
    rows = [fp32_backend._chat_ids(p) for p in prompts]
    forced = [11, 22, 33, 44]  # sample i must start with token forced[i]

    def force(samples, generated, logits):
        out = torch.full_like(logits, float("-inf"))
        for row, (sample, tokens) in enumerate(zip(samples, generated, strict=True)):
            out[row, forced[sample] if not tokens else 0] = 0.0
        return out

    shared = sample_shared(
        fp32_backend.model, rows, max_new_tokens=2, stop_ids=fp32_backend._stop_ids,
        sampling=Sampling(greedy=False, temperature=0.7), constraint=force,
    )
    assert shared == [[token, 0] for token in forced]


def test_backend_generate_matches_the_reference_text_and_counts(fp32_backend):
    prompts = judge_prompts(3)
    completions = fp32_backend.generate(
        prompts, SamplingParams(temperature=0.0, max_new_tokens=10)
    )
    for prompt, completion in zip(prompts, completions, strict=True):
        ids = fp32_backend._chat_ids(prompt)
        reference = plain_greedy(fp32_backend, ids, 10)
        stopped = reference[-1] in fp32_backend._stop_ids
        assert completion.text == fp32_backend.tokenizer.decode(
            reference[:-1] if stopped else reference, skip_special_tokens=True
        )
        assert completion.finish_reason == ("stop" if stopped else "length")
        assert (completion.prompt_tokens, completion.completion_tokens) == (
            len(ids), len(reference)
        )


def test_each_shared_token_is_prefilled_once(fp32_backend):
    prompts = judge_prompts(8)
    rows = [fp32_backend._chat_ids(p) for p in prompts]
    distinct = list(dict.fromkeys(map(tuple, rows)))
    shared = next(i for i, (a, b) in enumerate(zip(*distinct, strict=False)) if a != b)
    prefilled: list[int] = []

    def count(module, args, kwargs):
        width = kwargs["input_ids"].shape[1]
        if width > 1:
            prefilled.append(width)

    hook = fp32_backend.model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        fp32_backend.generate(prompts, SamplingParams(temperature=0.5, max_new_tokens=2))
    finally:
        hook.remove()
    assert len(distinct) == 2 and shared > 50
    assert sum(prefilled) == shared + sum(len(row) - shared for row in distinct)
    assert sum(prefilled) < 2 * len(rows[0]) < sum(map(len, rows)) / 3


def test_seeded_sampling_repeats_and_samples_of_one_prompt_differ(fp32_backend):
    prompts = [judge_prompts(1)[0]] * 4
    params = SamplingParams(temperature=0.8, max_new_tokens=16, seed=7)
    first = [c.text for c in fp32_backend.generate(prompts, params)]
    again = [c.text for c in fp32_backend.generate(prompts, params)]
    other = [c.text for c in fp32_backend.generate(prompts, params.model_copy(update={"seed": 8}))]
    assert first == again
    assert len(set(first)) > 1
    assert other != first


def test_rescue_shares_the_prompt_and_writes_scores(fp32_backend):
    result = Judge(fp32_backend, rescue=True).judge(
        PAIR, SamplingParams(k=4, max_new_tokens=6, temperature=0.5, seed=3)
    )
    for sample in result.samples:
        assert sample.rescue is not None
        assert sample.scores is not None, sample.rescue.continuation
        assert all(1 <= s <= 10 for s in sample.scores)


def test_models_without_a_plain_cache_fall_back_to_padded_generate_with_the_same_tokens(
    fp32_backend,
):
    assert plain_static_cache(fp32_backend.model)  # the embedded Llama takes the shared path
    rows = [fp32_backend._chat_ids(p) for p in judge_prompts(2)]
    padded = _sample_padded(
        fp32_backend.model, rows, 6, fp32_backend._stop_ids, Sampling(greedy=True), None
    )
    assert padded == [plain_greedy(fp32_backend, row, 6) for row in rows]


def test_the_embedded_llama_decodes_by_tree_and_the_static_cache_path_gives_the_same_tokens(
    fp32_backend, monkeypatch,
):
    from core.backends import shared_prefix
    from core.backends.tree_decode import supports_tree_decode

    assert supports_tree_decode(fp32_backend.model)
    rows = [fp32_backend._chat_ids(p) for p in judge_prompts(4)]
    rows.append(fp32_backend._chat_ids(judge_prompts(1)[0][:300]))  # a much shorter prompt
    run = {"max_new_tokens": 10, "stop_ids": fp32_backend._stop_ids,
           "sampling": Sampling(greedy=True)}
    tree = sample_shared(fp32_backend.model, rows, **run)
    monkeypatch.setattr(shared_prefix, "supports_tree_decode", lambda model: False)
    static = sample_shared(fp32_backend.model, rows, **run)
    assert tree == static == [plain_greedy(fp32_backend, row, 10) for row in rows]


def test_rescue_of_sampled_judgements_is_sampled_and_seeded_greedy_stays_arg_max(fp32_backend):
    from core.backends.base import RescueRequest

    request = RescueRequest(
        prompt=judge_prompts(1)[0], assistant_prefix="Analysis: both answer.\nScores: \\boxed{",
        n_responses=2, score_range=(1, 10),
    )
    greedy = fp32_backend.rescue_scores([request] * 3)
    assert greedy == fp32_backend.rescue_scores([request] * 3, SamplingParams(temperature=0.0))
    assert len(set(greedy)) == 1
    sampled = fp32_backend.rescue_scores([request] * 6, SamplingParams(temperature=1.0, seed=1))
    assert sampled == fp32_backend.rescue_scores([request] * 6,
                                                 SamplingParams(temperature=1.0, seed=1))
    assert len(set(sampled)) > 1
    assert all(ScoreGrammar(2, (1, 10)).complete(text) for text in sampled), sampled


def test_int8_decode_weights_give_close_logits_and_packed_ones_the_same(fp32_backend):
    import torch

    from core.backends.shared_prefix import _Prefill, _walk
    from core.backends.tree_decode import DecodeWeights, TreeDecoder

    rows = [tuple(fp32_backend._chat_ids(p)) for p in judge_prompts(2)]
    leaves: dict[int, tuple] = {}
    with torch.inference_mode():
        prefill = _Prefill(fp32_backend.model, None, total=sum(map(len, rows)), samples=2)
        _walk(rows, [0, 1], 0, None, prefill,
              lambda leaf, kv, logits: leaves.__setitem__(leaf, (kv, logits)))
        first = torch.stack([leaves[0][1], leaves[1][1]]).argmax(-1)
        logits = {}
        for kernel in ("plain", "packed", "int8"):
            weights = DecodeWeights.of(fp32_backend.model, kernel=kernel)
            decoder = TreeDecoder(fp32_backend.model, weights, [leaves[0][0], leaves[1][0]],
                                  [0, 1], [len(r) for r in rows], 4)
            logits[kernel] = decoder.step(first)
    assert torch.allclose(logits["packed"], logits["plain"], atol=1e-3)
    cosine = torch.nn.functional.cosine_similarity(logits["int8"], logits["plain"], dim=-1)
    assert (cosine > 0.98).all(), cosine
    assert not torch.equal(logits["int8"], logits["plain"])

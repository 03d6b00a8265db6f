"""The embedded SmolLM2-135M-Instruct model judging for real (CPU, ~1 min).

It is a weak judge: these tests assert structure and invariants, not taste."""

import pytest

from core import Judge, JudgeInput, SamplingParams, judge
from core.types import ParsedOutput, ParseFailure

pytestmark = pytest.mark.model

PAIR = JudgeInput(
    query="What is the capital of France?",
    responses=("The capital of France is Paris.", "The capital of France is Berlin."),
)


def test_embedded_model_judges_a_pair_with_k2(embedded_backend):
    result = judge(
        PAIR.query, PAIR.responses, k=2, max_new_tokens=48, seed=1, backend=embedded_backend
    )
    assert result.model.backend == "transformers"
    assert result.model.name == "SmolLM2-135M-Instruct.Q4_1"
    assert len(result.model.revision) == 64
    assert len(result.samples) == 2
    assert result.rescue_enabled  # on by default for the embedded model
    for sample in result.samples:
        assert sorted(sample.shown_order) == [0, 1]
        assert sample.raw_text  # the model wrote something, kept verbatim
        assert sample.completion_tokens > 0 and sample.prompt_tokens > 400
        assert isinstance(sample.parse, (ParsedOutput, ParseFailure))
        if sample.scores is not None:
            assert all(1 <= s <= 10 for s in sample.scores)
    vote = result.vote
    assert vote.valid_samples + vote.invalid_samples == 2
    if vote.valid_samples:
        assert vote.winner in (0, 1)
        assert sum(vote.totals) == sum(sum(s.scores) for s in result.samples if s.scores)


def test_rescue_writes_only_scores_in_range(embedded_backend):
    """Cut the model off after a few tokens: no scores, so rescue must produce them."""
    result = Judge(embedded_backend, rescue=True).judge(
        PAIR, SamplingParams(k=2, max_new_tokens=8, temperature=0.5, seed=2)
    )
    for sample in result.samples:
        assert sample.finish_reason == "length"
        assert sample.rescue is not None
        assert sample.rescue.original_failure.kind == "truncated"
        assert sample.scores is not None, sample.rescue.continuation
        assert all(1 <= s <= 10 for s in sample.scores)
        assert sample.rescue.continuation.rstrip().endswith("}")


def test_greedy_k1_is_deterministic(embedded_backend):
    params = SamplingParams(k=1, temperature=0.0, max_new_tokens=24, seed=0)
    engine = Judge(embedded_backend, rescue=False)
    first = engine.judge(PAIR, params)
    second = engine.judge(PAIR, params)
    assert first.samples[0].raw_text == second.samples[0].raw_text


def test_prefill_starts_the_reply_with_the_principles_header(embedded_backend):
    result = Judge(embedded_backend, rescue=False, prefill=True).judge(
        PAIR, SamplingParams(k=2, max_new_tokens=16, seed=3)
    )
    for sample in result.samples:
        assert sample.raw_text.startswith("Specific Criteria:")
        assert len(sample.raw_text) > len("Specific Criteria:")


def test_a_plain_model_directory_loads_and_judges(embedded_backend):
    """The GGUF file was converted into a transformers directory; load that
    directory as a user's own model and judge with it."""
    from core.backends.embedded import embedded_gguf_path
    from core.backends.gguf_cache import materialise_gguf
    from core.backends.hf import TransformersBackend
    from core.config import Settings

    gguf = embedded_gguf_path()
    directory = materialise_gguf(gguf, Settings().cache_dir, embedded_backend.info.revision)
    assert (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()
    backend = TransformersBackend.load(directory, cache_dir=directory.parent)
    assert backend.info.revision.startswith("dir-")
    assert backend.info.context_length == 8192
    result = Judge(backend).judge(PAIR, SamplingParams(k=1, temperature=0.0, max_new_tokens=8))
    assert result.model.source == str(directory)
    assert result.samples[0].scores is not None  # rescued: scores in range

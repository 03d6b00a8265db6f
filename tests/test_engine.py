"""The engine with replayed or rule-following backends: shuffles, mapping back,
rescue, bad input. No model is loaded here."""

import re
from collections.abc import Sequence

import pytest

from core import InputError, Judge, JudgeInput, PromptTooLongError, SamplingParams, ScriptedBackend
from core.backends.base import RescueRequest
from core.engine import shown_orders, to_original_order
from core.types import Completion, ModelInfo, ParsedOutput, ParseErrorKind, ParseFailure

ITEM = JudgeInput(query="Which planet is largest?", responses=("Jupiter.", "Mars.", "Venus."))
QUALITY = {"Jupiter.": 9, "Mars.": 2, "Venus.": 4}


class RuleJudge:
    """A backend that reads each prompt and scores the responses by a fixed
    table, in the order they are SHOWN. If the engine mapped scores back by
    position instead of identity, the original-order scores would vary."""

    supports_score_rescue = False
    info = ModelInfo(name="rule", backend="test", source="test")

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def count_prompt_tokens(self, prompt: str) -> int | None:
        return None

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = ""
    ) -> list[Completion]:
        self.prompts.extend(prompts)
        out = []
        for prompt in prompts:
            shown = re.findall(r"\[The Begin of Response \d+\]\n(.*?)\n", prompt)
            scores = ", ".join(str(QUALITY[s]) for s in shown)
            out.append(Completion(text=f"Specific Criteria: size\nAnalysis: ok\nScores: \\boxed{{{scores}}}", finish_reason="stop"))
        return out

    def rescue_scores(self, requests: Sequence[RescueRequest], params=None) -> list[str]:
        raise AssertionError("not used")


def test_scores_are_mapped_back_by_identity_under_every_shuffle():
    backend = RuleJudge()
    result = Judge(backend).judge(ITEM, SamplingParams(k=12, seed=5))
    orders = {s.shown_order for s in result.samples}
    assert len(orders) > 2  # the shuffles really differ
    for sample in result.samples:
        assert sample.scores == (9, 2, 4)
    assert result.vote.totals == (108, 24, 48)
    assert result.vote.winner == 0 and result.vote.margin == 60
    assert not result.vote.split


def test_shown_order_is_what_the_prompt_showed():
    backend = RuleJudge()
    result = Judge(backend).judge(ITEM, SamplingParams(k=6, seed=1))
    for sample, prompt in zip(result.samples, backend.prompts, strict=True):
        shown = re.findall(r"\[The Begin of Response \d+\]\n(.*?)\n", prompt)
        assert shown == [ITEM.responses[i] for i in sample.shown_order]
        assert sample.prompt == prompt


def test_shuffles_are_seeded_and_recorded():
    assert shown_orders(4, 8, seed=7) == shown_orders(4, 8, seed=7)
    assert shown_orders(4, 8, seed=7) != shown_orders(4, 8, seed=8)
    assert shown_orders(3, 2, seed=0, shuffle=False) == [(0, 1, 2), (0, 1, 2)]
    assert to_original_order([10, 20, 30], (2, 0, 1)) == (20, 30, 10)


def test_orders_of_few_responses_are_balanced():
    for seed in range(5):
        pair = shown_orders(2, 4, seed)
        assert sorted(pair) == [(0, 1), (0, 1), (1, 0), (1, 0)]
        triple = shown_orders(3, 6, seed)
        assert len(set(triple)) == 6  # all 3! orders once
    many = shown_orders(7, 8, seed=0)
    assert all(sorted(o) == list(range(7)) for o in many) and len(set(many)) > 1


def test_judgement_records_template_model_params():
    result = Judge(RuleJudge()).judge(ITEM, SamplingParams(k=2, temperature=0.7, seed=3))
    assert result.template.name == "grm-pointwise"
    assert len(result.template.sha256) == 64
    assert result.params.k == 2 and result.params.temperature == 0.7
    assert result.model.name == "rule"
    assert result.model_dump(mode="json")["vote"]["winner"] == 0  # JSON-serialisable


PAIR = JudgeInput(query="2+2?", responses=("4", "5"))
GOOD = "Specific Criteria: correctness\nAnalysis: fine\nScores: \\boxed{8, 3}"
BAD = "Specific Criteria: correctness\nAnalysis: the first one is right and I am sure"


def test_unparseable_sample_is_rescued_and_the_failure_recorded():
    backend = ScriptedBackend([GOOD, BAD], rescues=["9, 2}"])
    params = SamplingParams(k=2, temperature=0.7, seed=3)
    result = Judge(backend, shuffle=False).judge(PAIR, params)
    rescued = result.samples[1]
    assert rescued.rescue is not None
    assert rescued.rescue.original_failure.kind == ParseErrorKind.NO_SCORES
    assert rescued.rescue.prefix.endswith("Scores: \\boxed{")
    assert rescued.rescue.prefix.startswith(BAD)
    assert isinstance(rescued.parse, ParsedOutput) and rescued.parse.score_format == "rescue"
    assert rescued.parse.critique == "the first one is right and I am sure"
    assert rescued.scores == (9, 2)
    assert result.rescued_samples == 1 and result.failed_samples == 0
    assert result.vote.totals == (17, 5)
    assert backend.rescue_requests[0].n_responses == 2
    assert backend.rescue_params == [params]  # the rescue decodes like its sample


def test_without_rescue_a_failed_sample_is_excluded_and_counted():
    backend = ScriptedBackend([GOOD, BAD])
    result = Judge(backend, rescue=False, shuffle=False).judge(PAIR, SamplingParams(k=2))
    assert result.samples[1].scores is None
    assert isinstance(result.samples[1].parse, ParseFailure)
    assert result.samples[1].raw_text == BAD
    assert result.vote.valid_samples == 1 and result.vote.invalid_samples == 1
    assert result.vote.totals == (8, 3)


def test_a_rescue_that_fails_too_stays_a_failure():
    backend = ScriptedBackend([BAD], rescues=["7}"])
    result = Judge(backend).judge(PAIR, SamplingParams(k=1))
    sample = result.samples[0]
    assert sample.rescue is not None and sample.scores is None
    assert isinstance(sample.parse, ParseFailure)
    assert result.vote.winner is None


def test_truncated_output_is_a_truncation_failure():
    backend = ScriptedBackend([Completion(text="Specific Criteria: a lot of", finish_reason="length")])
    result = Judge(backend, rescue=False).judge(PAIR, SamplingParams(k=1))
    assert result.samples[0].parse.kind == ParseErrorKind.TRUNCATED
    assert result.samples[0].finish_reason == "length"


def test_hint_names_the_best_in_each_shown_order():
    backend = ScriptedBackend(["Scores: \\boxed{1, 2, 3}"] * 4)
    Judge(backend).judge(
        JudgeInput(query="q", responses=("a", "b", "c")), SamplingParams(k=4, seed=2), hint_best=2
    )
    for prompt in backend.prompts:
        position = int(re.search(r"Hint: the best response is Response (\d)", prompt).group(1))
        shown = re.findall(r"\[The Begin of Response \d+\]\n(.*?)\n", prompt)
        assert shown[position - 1] == "c"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (JudgeInput(query="  ", responses=("a", "b")), "query is empty"),
        (JudgeInput(query="q", responses=()), "no responses"),
        (JudgeInput(query="q", responses=("a", " \n")), "response 2 is empty"),
        (JudgeInput(query="q", responses=tuple("abcdefghij")), "1 to 9 response.*got 10"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_generation(item, message):
    backend = ScriptedBackend([])
    with pytest.raises(InputError, match=message):
        Judge(backend).judge(item, SamplingParams(k=1))
    assert backend.prompts == []


def test_prompt_longer_than_the_context_names_limit_and_size():
    backend = ScriptedBackend([GOOD], context_length=300)
    long_item = JudgeInput(query="word " * 400, responses=("a", "b"))
    with pytest.raises(PromptTooLongError, match=r"context is 300 tokens") as info:
        Judge(backend).judge(long_item, SamplingParams(k=1, max_new_tokens=50))
    assert info.value.prompt_tokens > 400
    assert backend.prompts == []


def test_prefill_starts_every_reply_and_is_kept_in_the_raw_text():
    backend = ScriptedBackend([" size matters\nAnalysis: ok\nScores: \\boxed{8, 3}"])
    result = Judge(backend, prefill=True).judge(PAIR, SamplingParams(k=1))
    assert backend.assistant_prefixes == ["Specific Criteria:"]
    sample = result.samples[0]
    assert sample.raw_text.startswith("Specific Criteria: size matters")
    assert sample.parse.principles == "size matters"
    assert result.reply_prefix == "Specific Criteria:"

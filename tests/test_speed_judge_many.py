"""Judging several items in one batched generation (`Judge.judge_many`): the
same judgements as one at a time, one backend call, bad items as values."""

from __future__ import annotations

from collections.abc import Sequence

from core import InputError, Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.types import Completion

GOOD = "Specific Criteria: c\nAnalysis: a\nScores: \\boxed{8, 3}"
PAIRS = [
    JudgeInput(query=f"question {i}?", responses=(f"answer {i}a", f"answer {i}b"))
    for i in range(3)
]


class CountingBackend(ScriptedBackend):
    """The scripted backend, counting its generate calls and their sizes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.generate_calls: list[int] = []
        self.rescue_calls: list[int] = []

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = ""
    ) -> list[Completion]:
        self.generate_calls.append(len(prompts))
        return super().generate(prompts, params, assistant_prefix=assistant_prefix)

    def rescue_scores(self, requests, params=None):
        self.rescue_calls.append(len(requests))
        return super().rescue_scores(requests, params)


def test_judge_many_sends_every_sample_in_one_call_and_matches_judge():
    params = SamplingParams(k=3, seed=4)
    texts = [GOOD, "no scores here", GOOD] * 3
    batched = CountingBackend(texts, rescues=["9, 1}"] * 3)
    many = Judge(batched).judge_many(PAIRS, params)
    assert batched.generate_calls == [9] and batched.rescue_calls == [3]

    single = CountingBackend(texts, rescues=["9, 1}"] * 3)
    one_by_one = [Judge(single).judge(item, params) for item in PAIRS]
    assert single.generate_calls == [3, 3, 3]
    assert batched.prompts == single.prompts
    for got, expected in zip(many, one_by_one, strict=True):
        assert not isinstance(got, InputError)
        assert got.input == expected.input
        assert [s.model_dump() for s in got.samples] == [s.model_dump() for s in expected.samples]
        assert got.vote == expected.vote


def test_a_bad_item_is_an_error_in_its_place_and_the_others_are_judged():
    backend = CountingBackend([GOOD] * 4)
    items = [PAIRS[0], JudgeInput(query=" ", responses=("a", "b")), PAIRS[1]]
    results = Judge(backend).judge_many(items, SamplingParams(k=2))
    assert isinstance(results[1], InputError) and "query is empty" in str(results[1])
    assert [r.input for r in (results[0], results[2])] == [PAIRS[0], PAIRS[1]]
    assert backend.generate_calls == [4]


def test_judge_many_of_nothing_valid_calls_no_backend():
    backend = CountingBackend([])
    results = Judge(backend).judge_many([JudgeInput(query="q", responses=())], SamplingParams())
    assert isinstance(results[0], InputError)
    assert backend.generate_calls == []

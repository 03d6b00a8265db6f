"""Self-consistency of the judge (`core.consistency`, `core.insights.self_consistency`):
alpha over samples × responses against the textbook formula, the winner share as
the confidence badge counts it, and the binning of accuracy against both."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.confidence import verdict_confidence
from core.consistency import (
    FEWER_THAN_TWO,
    JudgementConsistency,
    SampleAlpha,
    accuracy_bins,
    judgement_consistency,
    sample_alpha,
    self_consistency_of,
)
from core.engine import shown_orders
from core.errors import InputError
from core.insights import self_consistency
from tests.scripted_eval import evaluate, shown_text, toy_store


def textbook_alpha(rows: list[tuple[int, ...] | None]) -> float:
    """Krippendorff's interval alpha written out from its definition: 1 - D_o / D_e,
    with D_o the mean squared difference of pairs of values within a unit (a response)
    and D_e that of all pairs of values, every unit weighted by 1 / (m_u - 1)."""
    valid = [r for r in rows if r is not None]
    units = list(zip(*valid, strict=True))  # per response, its score in each sample
    values = [v for unit in units for v in unit]
    n = len(values)
    within = sum(sum((a - b) ** 2 for a, b in itertools.permutations(unit, 2)) / (len(unit) - 1)
                 for unit in units)
    between = sum((a - b) ** 2 for a, b in itertools.permutations(values, 2))
    return 1 - (within / n) / (between / (n * (n - 1)))


@pytest.mark.parametrize("rows", [
    [(8, 3), (8, 3), (8, 3)],
    [(8, 3), (3, 8)],
    [(9, 2), (7, 4), None, (8, 1), (3, 6)],
    [(1, 2, 9), (2, 9, 3), (5, 5, 5), (9, 9, 1)],
    [(10, 1, 5, 5), (9, 2, 6, 4), (10, 3, 5, 5)],
])
def test_alpha_over_samples_is_the_textbook_interval_alpha(rows):
    alpha = sample_alpha(rows)
    assert alpha.value == pytest.approx(textbook_alpha(rows))
    assert alpha.samples == sum(r is not None for r in rows) and alpha.note is None


def test_alpha_reads_the_samples_that_agree_as_1_and_the_ones_that_swap_as_below_0():
    assert sample_alpha([(8, 3)] * 4).value == pytest.approx(1.0)
    assert sample_alpha([(8, 3), (3, 8)]).value == pytest.approx(-0.5)


@pytest.mark.parametrize(("rows", "why"), [
    ([(8, 3)], FEWER_THAN_TWO),
    ([(8, 3), None, None], FEWER_THAN_TWO),
    ([None, None], FEWER_THAN_TWO),
    ([(5, 5), (5, 5), (5, 5)], "every sample gives every response the same score"),
])
def test_alpha_is_undefined_when_there_is_nothing_to_agree_on(rows, why):
    alpha = sample_alpha(rows)
    assert alpha.value is None and why in (alpha.note or "")


def _judged(rows: list[tuple[int, ...] | None], n: int = 2):
    order = shown_orders(n, len(rows), 0)
    texts = [shown_text(r, o) for r, o in zip(rows, order, strict=True)]
    judge = Judge(ScriptedBackend(texts), rescue=False)
    item = JudgeInput(query="q", responses=tuple(f"r{i}" for i in range(n)))
    return judge.judge(item, SamplingParams(k=len(rows)))


def test_a_judgements_consistency_shares_the_badges_agreement():
    judgement = _judged([(8, 3), (7, 2), (3, 8), None])
    consistency = judgement_consistency(judgement, judgement_id=7, item_id=3)
    assert (consistency.samples, consistency.valid, consistency.agreeing) == (4, 3, 2)
    assert consistency.winner_share == pytest.approx(2 / 3)
    assert consistency.agreeing == verdict_confidence(judgement).agreeing  # one count
    assert consistency.alpha.value == pytest.approx(textbook_alpha([(8, 3), (7, 2), (3, 8)]))
    tied = judgement_consistency(_judged([(8, 3), (3, 8)]), judgement_id=8)
    assert tied.agreeing is None and tied.winner_share is None


def test_accuracy_bins_put_each_point_in_its_half_open_bin_with_a_wilson_ci():
    points = [(0.2, False), (0.5, True), (0.5, False), (0.74, True), (0.75, True),
              (0.99, True), (1.0, True), (1.0, True), (1.0, False)]
    bins = accuracy_bins(points, (0.5, 0.75, 1.0), percent=True)
    assert [b.label for b in bins] == ["< 50%", "50–75%", "75–100%", "100%"]
    assert [(b.accuracy.n, b.accuracy.value) for b in bins] == [
        (1, 0.0), (3, pytest.approx(2 / 3)), (2, 1.0), (3, pytest.approx(2 / 3))]
    assert bins[2].accuracy.low == pytest.approx(0.342, abs=0.001)  # 2 of 2: Wilson 34%-100%
    assert (bins[0].low, bins[0].high, bins[-1].low, bins[-1].high) == (None, 0.5, 1.0, None)


def test_accuracy_bins_keep_empty_bins_and_refuse_bad_cuts():
    bins = accuracy_bins([(-0.3, True)], (0.0, 0.4, 0.667, 0.8))
    assert [b.label for b in bins] == ["< 0", "0–0.4", "0.4–0.67", "0.67–0.8", "≥ 0.8"]
    assert [b.accuracy.n for b in bins] == [1, 0, 0, 0, 0]
    assert bins[1].accuracy.value is None and bins[1].accuracy.note == "no items in this bin"
    for cuts in [(), (0.5, 0.5), (0.8, 0.4)]:
        with pytest.raises(ValueError, match="must increase"):
            accuracy_bins([], cuts)
    with pytest.raises(ValueError, match="NaN"):
        accuracy_bins([(float("nan"), True)], (0.5,))


def _consistency(valid: int, agreeing: int | None, alpha: float | None) -> JudgementConsistency:
    return JudgementConsistency(judgement_id=1, item_id=1, samples=4, valid=valid,
                                alpha=SampleAlpha(alpha, valid), agreeing=agreeing)


def test_a_dataset_counts_what_it_can_and_says_what_it_left_out():
    judged = [
        (_consistency(4, 4, 0.9), True), (_consistency(4, 4, 0.85), True),
        (_consistency(4, 2, 0.1), False), (_consistency(4, None, -0.2), False),  # a tied vote
        (_consistency(3, 3, None), None),  # no label: in the distribution, not the bins
        (_consistency(1, 1, None), True),  # one valid sample: left out
    ]
    result = self_consistency_of(judged, left_out=[("a greedy judgement", 2)])
    assert len(result.judgements) == 5
    assert dict(result.left_out) == {FEWER_THAN_TWO: 1, "a greedy judgement": 2}
    assert (result.tied, result.undefined_alpha, result.unanimous) == (1, 1, 3)
    assert result.median_alpha == pytest.approx(np.median([0.9, 0.85, 0.1, -0.2]))
    assert [b.accuracy.n for b in result.by_share] == [0, 1, 0, 2]
    assert result.by_share[-1].accuracy.value == 1.0 and result.by_share[1].accuracy.value == 0
    assert [b.accuracy.n for b in result.by_alpha] == [1, 1, 0, 0, 2]


def test_the_store_reads_each_items_latest_sampled_judgement(tmp_path):
    with toy_store(tmp_path) as engine:
        evaluate(engine)  # k=4 judgements, then greedy ones (k=1) made later
        result = self_consistency(engine, "toy")
        assert len(result.judgements) == 4 and result.left_out == ()
        assert {j.samples for j in result.judgements} == {4}
        d = result.judgements[-1]  # item D: (7, 1) four times, no label
        assert d.alpha.value == pytest.approx(1.0) and d.winner_share == 1.0
        assert sum(b.accuracy.n for b in result.by_share) + result.tied == 3  # labelled
        with pytest.raises(InputError, match="no dataset named 'nope'"):
            self_consistency(engine, "nope")

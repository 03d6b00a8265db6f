"""Self-consistency of the judge: how much one judgement's k samples agree, and
whether a consistent vote is more often right.

Two measures of one judgement, over its valid samples:

- **alpha**: Krippendorff's alpha at the interval level over samples × responses:
  each sample is a rater, each response a unit, its score the value. 1: every
  sample gives every response the same score; 0: no more agreement than scores
  drawn at random from the judgement's own; below 0: systematic disagreement.
  Interval, not nominal: a 9 against an 8 is a small disagreement, a 9 against a 1
  a large one (`core.agreement.krippendorff_alpha` is the nominal alpha of labels
  by raters; this one is of scores, from the same `krippendorff` package). It is
  undefined with fewer than two valid samples, or when every score given is the
  same.
- **winner share**: the share of valid samples whose own strict winner is the vote's
  winner, as the confidence badge counts it (`core.confidence`); undefined when
  the vote ties at the top.

Accuracy against self-consistency bins the items by either measure and gives each
bin's accuracy with its Wilson 95% CI (`core.estimates.proportion`). Pure
computation; `core.insights.self_consistency` reads the store.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import krippendorff
import numpy as np

from core.confidence import verdict_confidence
from core.estimates import Estimate, proportion
from core.types import Judgement

ALPHA_CUTS = (0.0, 0.4, 0.667, 0.8)  # 0.667 and 0.8: Krippendorff's tentative / reliable
SHARE_CUTS = (0.5, 0.75, 1.0)  # the confidence badge's weak / strong agreement, unanimous
FEWER_THAN_TWO = "fewer than two valid samples"
TIED_VOTE = "the vote ties at the top: no winner to agree with"


@dataclass(frozen=True)
class SampleAlpha:
    """Krippendorff's alpha over one judgement's samples × responses."""

    value: float | None  # None: undefined, `note` says why
    samples: int  # valid samples (the raters)
    note: str | None = None


@dataclass(frozen=True)
class JudgementConsistency:
    """How much one judgement's samples agree."""

    judgement_id: int
    item_id: int | None
    samples: int  # samples drawn (k)
    alpha: SampleAlpha
    agreeing: int | None  # valid samples that pick the vote's winner; None: a tied vote
    valid: int  # samples with usable scores

    @property
    def winner_share(self) -> float | None:
        """The share of valid samples that pick the vote's winner (None: a tied vote)."""
        return self.agreeing / self.valid if self.agreeing is not None and self.valid else None


@dataclass(frozen=True)
class ConsistencyBin:
    """The items whose measure falls in [low, high), and how often the judge was right
    (labelled '50–75%' for [0.5, 0.75))."""

    low: float | None  # None: no lower bound
    high: float | None  # None: no upper bound
    label: str
    accuracy: Estimate  # strict rule, Wilson 95% CI; n: labelled items in the bin


@dataclass(frozen=True)
class SelfConsistency:
    """Self-consistency over a dataset's judgements (each item's latest)."""

    dataset: str | None
    judgements: tuple[JudgementConsistency, ...]  # with two or more valid samples
    left_out: tuple[tuple[str, int], ...]  # (why, judgements) not counted at all
    by_alpha: tuple[ConsistencyBin, ...]  # accuracy of the labelled items by alpha
    by_share: tuple[ConsistencyBin, ...]  # ... and by winner share
    undefined_alpha: int  # judgements counted whose alpha is undefined
    tied: int  # judgements counted whose vote ties (no winner share)

    @property
    def median_alpha(self) -> float | None:
        values = [j.alpha.value for j in self.judgements if j.alpha.value is not None]
        return statistics.median(values) if values else None

    @property
    def unanimous(self) -> int:
        """Judgements whose every valid sample picks the vote's winner."""
        return sum(j.winner_share == 1.0 for j in self.judgements)


def sample_alpha(rows: Sequence[Sequence[int] | None]) -> SampleAlpha:
    """Interval Krippendorff's alpha over the valid `rows` (one per sample: its
    scores in original response order; None: an invalid sample)."""
    valid = [list(r) for r in rows if r is not None]
    if len(valid) < 2:
        return SampleAlpha(None, len(valid), f"alpha not defined: {FEWER_THAN_TWO}")
    data = np.array(valid, dtype=float)
    if np.unique(data).size < 2:
        return SampleAlpha(None, len(valid),
                           "alpha not defined: every sample gives every response the same score")
    return SampleAlpha(float(krippendorff.alpha(data, level_of_measurement="interval")),
                       len(valid))


def judgement_consistency(
    judgement: Judgement, judgement_id: int, item_id: int | None = None
) -> JudgementConsistency:
    """Alpha over `judgement`'s samples and the share that picks its vote's winner."""
    confidence = verdict_confidence(judgement)
    return JudgementConsistency(
        judgement_id=judgement_id, item_id=item_id, samples=len(judgement.samples),
        alpha=sample_alpha([s.scores for s in judgement.samples]),
        agreeing=confidence.agreeing, valid=confidence.valid,
    )


def _number(value: float, percent: bool) -> str:
    return f"{value * 100:g}" if percent else f"{value:.2g}"


def _bin_label(low: float | None, high: float | None, percent: bool) -> str:
    """'< 50%', '50–75%' (from 50% up to, not including, 75%), '≥ 0.8', '100%'."""
    unit = "%" if percent else ""
    if low is None:
        return f"< {_number(high or 0.0, percent)}{unit}"
    if high is None:
        return "100%" if percent and low == 1.0 else f"≥ {_number(low, percent)}{unit}"
    return f"{_number(low, percent)}–{_number(high, percent)}{unit}"


def accuracy_bins(
    points: Sequence[tuple[float, bool]], cuts: Sequence[float], *, percent: bool = False,
) -> tuple[ConsistencyBin, ...]:
    """Accuracy of (measure, right) points in the bins the increasing `cuts` make:
    below the first, [cut, next cut), and from the last up. Every bin is returned,
    empty or not (an empty one has no value and says so)."""
    edges = list(cuts)
    if not edges or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError(f"bin cuts must increase, got {tuple(cuts)}")
    lows: list[float | None] = [None, *edges]
    highs: list[float | None] = [*edges, None]
    counts: list[Counter[bool]] = [Counter() for _ in lows]
    for value, right in points:
        if math.isnan(value):
            raise ValueError("a measure to bin is NaN")
        counts[int(np.searchsorted(edges, value, side="right"))][right] += 1
    return tuple(
        ConsistencyBin(low, high, _bin_label(low, high, percent),
                       proportion(c[True], c[True] + c[False], empty="no items in this bin"))
        for low, high, c in zip(lows, highs, counts, strict=True)
    )


def self_consistency_of(
    judged: Sequence[tuple[JudgementConsistency, bool | None]],
    *, dataset: str | None = None, left_out: Sequence[tuple[str, int]] = (),
    alpha_cuts: Sequence[float] = ALPHA_CUTS, share_cuts: Sequence[float] = SHARE_CUTS,
) -> SelfConsistency:
    """Self-consistency over (a judgement's consistency, whether its vote is right by
    the item's label; None: no label). Judgements with fewer than two valid samples
    are left out (counted); `left_out` adds what the caller left out before."""
    skipped = Counter(dict(left_out))
    counted = []
    for consistency, right in judged:
        if consistency.valid < 2:
            skipped[FEWER_THAN_TWO] += 1
        else:
            counted.append((consistency, right))
    by_alpha = [(c.alpha.value, r) for c, r in counted
                if c.alpha.value is not None and r is not None]
    by_share = [(c.winner_share, r) for c, r in counted
                if c.winner_share is not None and r is not None]
    return SelfConsistency(
        dataset=dataset, judgements=tuple(c for c, _ in counted),
        left_out=tuple(sorted(skipped.items())),
        by_alpha=accuracy_bins(by_alpha, alpha_cuts),
        by_share=accuracy_bins(by_share, share_cuts, percent=True),
        undefined_alpha=sum(c.alpha.value is None for c, _ in counted),
        tied=sum(c.agreeing is None for c, _ in counted),
    )

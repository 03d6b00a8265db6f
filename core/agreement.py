"""Agreement statistics: judge accuracy, Cohen's kappa, Krippendorff's alpha.

Pure functions over plain Python data. A label is the index of the best
response, or None for a tie; a tie is a category of its own everywhere.
Accuracy (the strict rule, `strict_outcome`, the one place it is written) also
reads a best-of-n label (`core.labels.Accepted`: several correct responses),
and `pairwise_counts` reads a label as its correct-against-incorrect pairs.
Accuracy is a proportion with a Wilson 95% CI; kappa and alpha carry a
percentile bootstrap 95% CI that resamples items (units), from
`MIN_BOOTSTRAP_ITEMS` items up (`core.estimates` makes every interval). The
bootstrap statistics are computed with numpy from weighted confusion /
coincidence matrices (the point values come from scikit-learn and the
`krippendorff` package; the tests check the two paths agree).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Literal, TypeVar

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

from core.estimates import (  # Estimate: also imported from here by its older users
    MIN_BOOTSTRAP_ITEMS,
    Estimate,
    bootstrap_interval,
    clustered_proportion,
    proportion,
    too_few_items,
)
from core.labels import Accepted, LabelValue, correct_of
from core.vote import strict_winner

Label = int | None
Outcome = Literal["correct", "wrong", "tie"]
TIE = -1  # the category a tie (None) is given before encoding
_MISSING = object()  # an unlabelled (rater, item) cell
_Item = TypeVar("_Item", bound=Hashable)  # how raters name an item


def judge_label(scores: Sequence[int | float]) -> Label:
    """The judge's verdict as a label: the strict arg max, None when the top is shared."""
    if len(scores) < 2:
        raise ValueError("a preference item needs at least two scores")
    return strict_winner(scores)


def strict_outcome(scores: Sequence[int | float], best: LabelValue) -> Outcome:
    """The strict rule (the paper's, grm-method.md §2), the one place it is written:
    how the judge's `scores` (original order) fare against the label `best`.

    - A best response (an index): "correct" iff it scores strictly above every
      other; "tie" iff it shares the top score; else "wrong".
    - A best-of-n label (`Accepted`, RewardBench 2's rule for its Ties subset):
      "correct" iff every correct response scores strictly above every incorrect
      one (the lowest correct above the highest incorrect); "tie" iff the lowest
      correct equals the highest incorrect; else "wrong". Correct responses may
      tie among themselves. With one correct response this is the rule above.
    - A tie label (None): "correct" iff the top score is shared (the judge calls
      a tie too), else "wrong".

    Only "correct" counts as right: a tie is wrong (`strict_correct`).
    """
    if len(scores) < 2:
        raise ValueError("a preference item needs at least two scores")
    if best is None:
        return "correct" if strict_winner(scores) is None else "wrong"
    correct = correct_of(best)
    if not 0 <= correct[0] <= correct[-1] < len(scores):
        raise ValueError(f"best={best} is not an index into {len(scores)} scores")
    if len(correct) >= len(scores):
        raise ValueError(f"best={best} leaves none of the {len(scores)} responses incorrect")
    lowest_correct = min(scores[i] for i in correct)
    highest_incorrect = max(s for i, s in enumerate(scores) if i not in correct)
    if lowest_correct > highest_incorrect:
        return "correct"
    return "tie" if lowest_correct == highest_incorrect else "wrong"


def strict_correct(scores: Sequence[int | float], best: LabelValue) -> bool:
    """Right by the strict rule (`strict_outcome`): a tie is wrong. For a best response
    or a tie label this is `judge_label(scores) == best`."""
    return strict_outcome(scores, best) == "correct"


def pairwise_counts(scores: Sequence[int | float], best: int | Accepted) -> tuple[int, int]:
    """(pairs right, pairs) over every (correct, incorrect) pair of responses the label
    names: a pair is right iff the correct response scores strictly above the incorrect
    one (a tie is wrong). A best response of n gives n-1 pairs; an accepted set of c
    correct responses of n gives c * (n-c)."""
    strict_outcome(scores, best)  # the same checks of the label against the scores
    correct = correct_of(best)
    incorrect = [i for i in range(len(scores)) if i not in correct]
    right = sum(scores[c] > scores[i] for c in correct for i in incorrect)
    return right, len(correct) * len(incorrect)


def judge_accuracy(pairs: Sequence[tuple[Sequence[float], LabelValue]]) -> Estimate:
    """Accuracy of (scores, label) pairs by the strict rule, with its Wilson 95% CI."""
    return proportion(sum(strict_correct(s, b) for s, b in pairs), len(pairs))


def pairwise_accuracy(items: Sequence[tuple[Sequence[float], int | Accepted]], *,
                      seed: int = 0, n_boot: int = 1000) -> Estimate:
    """The share of (correct, incorrect) response pairs the scores order right, over
    all `items`' pairs (`pairwise_counts`); n is the number of pairs. Its 95% CI is
    Wilson's when every item gives one pair, else a bootstrap that resamples items
    (their pairs are not independent): `core.estimates.clustered_proportion`."""
    return clustered_proportion([pairwise_counts(s, b) for s, b in items], seed=seed,
                                n_boot=n_boot)


def cohen_kappa(
    a: Sequence[Label], b: Sequence[Label], *, seed: int = 0, n_boot: int = 1000
) -> Estimate:
    """Cohen's kappa between two raters on the same items (ties a category of their own)."""
    if len(a) != len(b):
        raise ValueError(f"the raters label different numbers of items ({len(a)}, {len(b)})")
    if not a:
        return Estimate(None, None, None, 0, "no items")
    (ca, cb), k = _encode(a, b)
    if np.isnan(_kappas(np.ones((1, ca.size)), ca, cb, k)[0]):
        note = "kappa not defined: both raters gave every item the same label"
        return Estimate(None, None, None, ca.size, note)
    value = float(cohen_kappa_score(ca, cb, labels=list(range(k))))
    return _bootstrapped(value, ca.size, lambda w: _kappas(w, ca, cb, k), seed, n_boot,
                         "kappa", "both raters gave every drawn item the same label")


def judge_human_kappa(
    judge_scores: Sequence[Sequence[float]],
    human: Sequence[Label],
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> Estimate:
    """Cohen's kappa between the judge's verdicts (see `judge_label`) and human labels."""
    return cohen_kappa([judge_label(s) for s in judge_scores], human, seed=seed, n_boot=n_boot)


def krippendorff_alpha(
    ratings: Mapping[str, Mapping[_Item, Label]], *, seed: int = 0, n_boot: int = 1000
) -> Estimate:
    """Nominal Krippendorff's alpha over rater -> {item: label}; raters may skip items.

    Only items labelled by at least two raters count (n is their number), and
    the bootstrap resamples those items.
    """
    raters = [r for r in ratings.values() if r]
    if len(raters) < 2:
        return Estimate(None, None, None, 0, "alpha not defined: fewer than two raters have labels")
    units = list(dict.fromkeys(item for r in raters for item in r))
    codes, k = _encode(*([r.get(u, _MISSING) for u in units] for r in raters))
    data = np.stack(codes).astype(float)
    data[data < 0] = np.nan  # not labelled by that rater
    counts = np.stack([(data == v).sum(axis=0) for v in range(k)], axis=1)
    pairable = counts.sum(axis=1) >= 2
    if not pairable.any():
        note = "alpha not defined: no item is labelled by two or more raters"
        return Estimate(None, None, None, 0, note)
    counts = counts[pairable]
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        note = "alpha not defined: every rater gave the same label on these items"
        return Estimate(None, None, None, len(counts), note)
    value = float(krippendorff.alpha(data[:, pairable], level_of_measurement="nominal"))
    return _bootstrapped(value, len(counts), lambda w: _alphas(w, counts), seed, n_boot,
                         "alpha", "every drawn item got the same label")


def _encode(*columns: Sequence[object]) -> tuple[list[np.ndarray], int]:
    """Labels to category codes 0..k-1 (None, a tie, is its own); missing cells to -1."""
    def category(label: object) -> int:
        if label is None:
            return TIE
        if isinstance(label, bool) or not isinstance(label, int | np.integer) or label < 0:
            raise ValueError(f"a label is a response index >= 0 or None, not {label!r}")
        return int(label)

    cats = sorted({category(x) for col in columns for x in col if x is not _MISSING})
    index = {c: i for i, c in enumerate(cats)}
    encoded = [
        np.array([-1 if x is _MISSING else index[category(x)] for x in col], dtype=int)
        for col in columns
    ]
    return encoded, len(cats)


def _weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n): how many times each item is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    flat = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _kappas(weights: np.ndarray, a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Cohen's kappa for each row of item weights; NaN where chance agreement is 1."""
    onehot = np.zeros((a.size, k * k))
    onehot[np.arange(a.size), a * k + b] = 1.0
    conf = (weights @ onehot).reshape(-1, k, k)
    total = conf.sum(axis=(1, 2))
    observed = np.trace(conf, axis1=1, axis2=2) / total
    chance = (conf.sum(axis=2) * conf.sum(axis=1)).sum(axis=1) / total**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(chance < 1, (observed - chance) / (1 - chance), np.nan)


def _alphas(weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Nominal alpha for each row of unit weights, from per-unit coincidences.

    `counts` is (units, k): how many raters gave each category; every unit has
    at least two. NaN where the expected disagreement is 0 (one category).
    """
    units, k = counts.shape
    pairs = counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(k)
    per_unit = pairs / (counts.sum(axis=1) - 1)[:, None, None]
    o = (weights @ per_unit.reshape(units, k * k)).reshape(-1, k, k)
    n_v = o.sum(axis=1)
    n = n_v.sum(axis=1)
    observed = n - np.trace(o, axis1=1, axis2=2)
    expected = (n**2 - (n_v**2).sum(axis=1)) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1 - observed / expected, np.nan)


def _bootstrapped(
    value: float, n: int, statistic: Callable[[np.ndarray], np.ndarray], seed: int,
    n_boot: int, name: str, undefined_when: str,
) -> Estimate:
    """`value` with the percentile bootstrap CI of `statistic` (of an (n_boot, n) matrix
    of item weights), or with the "too few items" note below `MIN_BOOTSTRAP_ITEMS`."""
    if n < MIN_BOOTSTRAP_ITEMS:
        return Estimate(value, None, None, n, too_few_items(n))
    return bootstrap_interval(value, statistic(_weights(n, n_boot, seed)), n,
                              statistic=name, undefined_when=undefined_when)

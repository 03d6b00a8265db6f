"""A statistic with its 95% interval, and the one place that says how such an interval is made.

Two kinds of interval, chosen so that they behave at small n:

- A proportion (judge accuracy, an agreement rate, the rate at which the
  response shown first wins, a tie rate) gets the Wilson score interval
  (`proportion`). It is never [100%, 100%] on a handful of items: 2 of 2
  correct gives 34% to 100%. A proportion of trials grouped in items (the
  response pairs of best-of-n items) resamples items instead
  (`clustered_proportion`).
- A statistic with no closed-form interval (Cohen's kappa, Krippendorff's
  alpha, the paired difference of two judges' accuracy: `paired_difference`)
  gets a percentile bootstrap over items (`bootstrap_interval`), but only from
  `MIN_BOOTSTRAP_ITEMS` items up. Below that the value is given with the
  note "too few items ..." in place of a CI: n = 2 items have 3 distinct
  resamples, and their percentiles read as a precise interval they are not.

Notes are written for a researcher reading a table: what is undefined and why,
never how many resamples a loop skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile
MIN_BOOTSTRAP_ITEMS = 10
"""Fewest items a bootstrap CI is given for (kappa, alpha); fewer say `too_few_items`."""


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95% CI; value None (and why, in `note`) if undefined."""

    value: float | None  # the statistic on all items; None when it is not defined
    low: float | None  # the CI's lower end; None when there is no CI (`note` says why)
    high: float | None  # the CI's upper end; None when there is no CI
    n: int  # the items (or samples) the statistic is computed over
    note: str | None = None  # why there is no value or no CI, or a caveat about the CI


def proportion(successes: int, trials: int, *, empty: str = "no items") -> Estimate:
    """`successes` / `trials` with its Wilson score 95% interval; `empty` is the
    note when there are no trials."""
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes in {trials} trials")
    if trials == 0:
        return Estimate(None, None, None, 0, empty)
    p = successes / trials
    z2 = Z_95 * Z_95
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z_95 / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), trials)


def too_few_items(n: int) -> str:
    """The note that stands in for a bootstrap CI on fewer than `MIN_BOOTSTRAP_ITEMS`."""
    return f"too few items for a 95% CI (n = {n}; needs ≥ {MIN_BOOTSTRAP_ITEMS})"


def bootstrap_interval(
    value: float, stats: np.ndarray, n: int, *, statistic: str, undefined_when: str
) -> Estimate:
    """The percentile 95% CI of the bootstrap `stats` (NaN where the statistic is not
    defined on a resample) around `value`. The note names the `statistic` and says
    `undefined_when` it is not defined, if a resample hit that case."""
    ok = stats[np.isfinite(stats)]
    missing = stats.size - ok.size
    if not ok.size:
        return Estimate(value, None, None, n, (
            f"no 95% CI: {statistic} is not defined on any resample of the items "
            f"({undefined_when})"))
    note = None
    if missing:
        note = (f"{statistic} is not defined on {missing / stats.size:.0%} of the resampled "
                f"item sets ({undefined_when}); the 95% CI comes from the others and may "
                "be too narrow")
    low, high = np.percentile(ok, [2.5, 97.5])
    return Estimate(value, float(low), float(high), n, note)


def paired_difference(
    a: Sequence[bool], b: Sequence[bool], *, seed: int = 0, n_boot: int = 1000
) -> Estimate:
    """The difference of two rates on the same items, mean(a) - mean(b) (e.g. two
    judges' accuracy), with a percentile bootstrap 95% CI that resamples items, each
    item keeping its pair; from `MIN_BOOTSTRAP_ITEMS` items up (fewer say
    `too_few_items`). With no item on which a and b differ there is no CI: every
    resample would differ by exactly 0, which is no evidence of a precise 0."""
    if len(a) != len(b):
        raise ValueError(f"paired rates need the same items ({len(a)} and {len(b)} given)")
    n = len(a)
    if n == 0:
        return Estimate(None, None, None, 0, "no items")
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    value = (only_a - only_b) / n
    if n < MIN_BOOTSTRAP_ITEMS:
        return Estimate(value, None, None, n, too_few_items(n))
    if only_a + only_b == 0:
        return Estimate(value, None, None, n, "no 95% CI: no item is counted for one and "
                        "not the other, so every resample differs by 0")
    # Each item's difference is +1, -1 or 0, so a resample of n items is a multinomial
    # draw of how many of each: exact, and O(n_boot) whatever n is.
    draws = np.random.default_rng(seed).multinomial(
        n, [only_a / n, only_b / n, max(0.0, 1 - (only_a + only_b) / n)], size=n_boot)
    stats = (draws[:, 0] - draws[:, 1]) / n
    return bootstrap_interval(value, stats, n, statistic="the difference",
                              undefined_when="never")


def clustered_proportion(
    counts: Sequence[tuple[int, int]], *, seed: int = 0, n_boot: int = 1000
) -> Estimate:
    """A proportion pooled over items that each give several trials (successes,
    trials), such as the response pairs of best-of-n items; n is the number of
    trials. When every item gives one trial the trials are independent and this is
    `proportion` (Wilson). Otherwise an item's trials are not independent, so the
    95% CI is a percentile bootstrap that resamples items (keeping each one's
    trials), from `MIN_BOOTSTRAP_ITEMS` items up (fewer say `too_few_items`)."""
    if any(not 0 <= s <= t for s, t in counts):
        raise ValueError(f"successes must lie between 0 and the trials: {list(counts)}")
    used = [(s, t) for s, t in counts if t > 0]
    successes, trials = sum(s for s, _ in used), sum(t for _, t in used)
    if all(t == 1 for _, t in used):
        return proportion(successes, trials, empty="no pairs")
    value = successes / trials
    if len(used) < MIN_BOOTSTRAP_ITEMS:
        return Estimate(value, None, None, trials, too_few_items(len(used)))
    hits = np.array([s for s, _ in used], dtype=float)
    sizes = np.array([t for _, t in used], dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(used), size=(n_boot, len(used)))
    stats = hits[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    estimate = bootstrap_interval(value, stats, trials, statistic="the proportion",
                                  undefined_when="never")
    return Estimate(estimate.value, estimate.low, estimate.high, trials,
                    f"95% CI: bootstrap over the {len(used)} items (their pairs are not "
                    "independent)")

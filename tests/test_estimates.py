"""The one place intervals are made (`core.estimates`): Wilson for proportions, the
bootstrap percentile interval and its notes, and the small-n threshold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from core.estimates import (
    MIN_BOOTSTRAP_ITEMS,
    Estimate,
    bootstrap_interval,
    proportion,
    too_few_items,
)


@pytest.mark.parametrize(("successes", "trials"),
                         [(0, 1), (1, 1), (2, 2), (1, 2), (0, 5), (7, 9), (18, 20), (50, 400)])
def test_wilson_matches_scipy(successes, trials):
    ours = proportion(successes, trials)
    theirs = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours.value == successes / trials and ours.n == trials and ours.note is None
    assert ours.low == pytest.approx(theirs.low, abs=1e-12)
    assert ours.high == pytest.approx(theirs.high, abs=1e-12)


def test_wilson_never_collapses_on_a_handful_of_items():
    for trials in range(1, 6):
        for est in (proportion(trials, trials), proportion(0, trials)):
            assert est.high - est.low > 0.4  # 5 of 5 still reads 57% to 100%


def test_no_trials_is_undefined_with_the_callers_reason():
    assert proportion(0, 0, empty="no decisive samples") == Estimate(
        None, None, None, 0, "no decisive samples")
    with pytest.raises(ValueError, match="3 successes in 2 trials"):
        proportion(3, 2)


def test_too_few_items_names_n_and_the_threshold():
    assert MIN_BOOTSTRAP_ITEMS == 10
    assert too_few_items(2) == "too few items for a 95% CI (n = 2; needs ≥ 10)"


def test_bootstrap_interval_notes_read_as_sentences():
    stats = np.array([0.1, 0.2, np.nan, 0.3, np.nan] * 40)
    est = bootstrap_interval(0.2, stats, 12, statistic="kappa",
                             undefined_when="every drawn item got one label")
    assert est.low is not None and est.low <= 0.2 <= est.high and est.n == 12
    assert est.note == ("kappa is not defined on 40% of the resampled item sets (every drawn "
                        "item got one label); the 95% CI comes from the others and may be "
                        "too narrow")
    clean = bootstrap_interval(0.2, np.array([0.1, 0.2, 0.3]), 12, statistic="kappa",
                               undefined_when="-")
    assert clean.note is None
    nothing = bootstrap_interval(0.5, np.full(10, np.nan), 12, statistic="alpha",
                                 undefined_when="one label")
    assert (nothing.value, nothing.low, nothing.high) == (0.5, None, None)
    assert nothing.note == "no 95% CI: alpha is not defined on any resample of the items (one label)"

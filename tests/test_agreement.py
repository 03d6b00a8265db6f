"""Agreement statistics: known values, the strict rule, Wilson and bootstrap CIs, too few
items for a bootstrap, degenerate inputs and the notes that explain them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from core.agreement import (
    _alphas,
    _kappas,
    cohen_kappa,
    judge_accuracy,
    judge_human_kappa,
    judge_label,
    krippendorff_alpha,
    strict_correct,
)
from core.estimates import MIN_BOOTSTRAP_ITEMS, Estimate

PREFERENCES = Path(__file__).resolve().parents[2] / "shared" / "data" / "preferences"

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", p. 8:
# 4 coders, 12 units, missing values; nominal alpha = 0.743.
KRIPPENDORFF_2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
# The `krippendorff` package's docstring example: nominal alpha = 0.691358.
PACKAGE_DOCS = {
    "1": [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
    "2": [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
    "3": [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
}


def _ratings(table: dict[str, list[int | None]]) -> dict[str, dict[int, int | None]]:
    """A coders-by-units table (None = not coded) as rater -> {unit: label}."""
    return {r: {u: v for u, v in enumerate(row) if v is not None} for r, row in table.items()}


def _table(counts: dict[tuple[int | None, int | None], int]) -> tuple[list, list]:
    """Two raters' labels from a confusion table {(label a, label b): count}."""
    pairs = [pair for pair, c in counts.items() for _ in range(c)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# --- the strict rule ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "best", "expected"),
    [
        ([8, 3], 0, True),
        ([3, 8], 0, False),
        ([5, 5], 0, False),  # a tie in the scores is wrong
        ([5, 5], 1, False),
        ([9, 9, 1], 0, False),  # n = 3, tie at the top
        ([2, 9, 7], 1, True),
        ([2, 9, 9], 1, False),
        ([9, 2, 9], 2, False),
        ([1.5, 1.25, 1.0], 0, True),
        ([4, 4, 1], None, True),  # tie label: correct iff the top is shared
        ([4, 3, 1], None, False),
        ([1, 4, 4], None, True),
    ],
)
def test_strict_correct(scores, best, expected):
    assert strict_correct(scores, best) is expected


def test_strict_correct_rejects_bad_input():
    with pytest.raises(ValueError, match="not an index"):
        strict_correct([1, 2], 2)
    with pytest.raises(ValueError, match="not an index"):
        strict_correct([1, 2], -1)
    with pytest.raises(ValueError, match="at least two scores"):
        strict_correct([1], 0)


def test_judge_label_is_strict_arg_max():
    assert judge_label([1, 7, 3]) == 1
    assert judge_label([7, 7, 3]) is None
    assert judge_label([0.5, 0.25]) == 0


# --- accuracy -----------------------------------------------------------------


def test_judge_accuracy_value_and_ci():
    pairs = [([9, 1], 0), ([1, 9], 1), ([5, 5], 0), ([2, 8], 0)] * 25
    est = judge_accuracy(pairs)
    assert est.value == pytest.approx(0.5) and est.n == 100 and est.note is None
    assert est.low < est.value < est.high
    assert est.low > 0.35 and est.high < 0.65


def test_judge_accuracy_ci_narrows_as_n_grows():
    item = [([9, 1], 0), ([9, 1], 0), ([9, 1], 0), ([1, 9], 0)]
    small, large = judge_accuracy(item * 10), judge_accuracy(item * 250)
    assert small.value == large.value == 0.75
    assert large.high - large.low < (small.high - small.low) / 3


def test_two_items_both_right_are_not_100_to_100_percent():
    """The walk's "100%, 95% CI 100% to 100%" on n = 2: accuracy is a proportion, and
    its Wilson interval on 2 of 2 runs from 2 / (2 + 1.96²) = 34% up to 100%."""
    est = judge_accuracy([([9, 1], 0), ([2, 8], 1)])
    assert (est.value, est.n, est.note) == (1.0, 2, None)
    assert est.low == pytest.approx(0.3424, abs=1e-4) and est.high == 1.0
    none_right = judge_accuracy([([9, 1], 1), ([5, 5], 0)])
    assert none_right.low == 0.0 and none_right.high == pytest.approx(0.6576, abs=1e-4)


def test_kappa_and_alpha_on_too_few_items_say_so_instead_of_a_ci():
    """The walk's "κ 0.00 [0.00, 0.00]" on n = 2: the value stays, the CI does not."""
    est = cohen_kappa([0, 1], [0, 0])
    assert (est.value, est.low, est.high, est.n) == (0.0, None, None, 2)
    assert est.note == "too few items for a 95% CI (n = 2; needs ≥ 10)"
    labels = [0, 1, None, 1, 0, 1, 0, 0, 1, 1, 0, 1]
    other = [0, 1, None, 0, 0, 1, 0, 1, 1, 1, 0, 0]
    below, at = MIN_BOOTSTRAP_ITEMS - 1, MIN_BOOTSTRAP_ITEMS
    short = cohen_kappa(labels[:below], other[:below])
    assert short.low is None and f"n = {below}; needs ≥ {at}" in short.note
    enough = cohen_kappa(labels[:at], other[:at])
    assert enough.low is not None and enough.low <= enough.value <= enough.high
    alpha = krippendorff_alpha({"a": {1: 0, 2: 1, 3: 1}, "b": {1: 0, 2: 1, 3: 0}})
    assert alpha.value is not None and alpha.low is None and "too few items" in alpha.note


def test_bootstrap_is_reproducible_for_a_seed():
    a, b = [0, 1, None, 1, 0, 2, 2] * 10, [0, 1, 1, None, 0, 2, 1] * 10
    assert cohen_kappa(a, b, seed=3) == cohen_kappa(a, b, seed=3)
    assert cohen_kappa(a, b, seed=3) != cohen_kappa(a, b, seed=4)


def test_empty_inputs_are_undefined_not_nan():
    assert judge_accuracy([]) == Estimate(None, None, None, 0, "no items")
    assert cohen_kappa([], []).value is None
    one = judge_accuracy([([1, 2], 1)])  # one item still gets a (wide) interval
    assert one.value == 1.0 and one.low == pytest.approx(0.2065, abs=1e-4) and one.high == 1.0


# --- Cohen's kappa --------------------------------------------------------------


def test_cohen_kappa_textbook_table():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    a, b = _table({(0, 0): 20, (0, 1): 5, (1, 0): 10, (1, 1): 15})
    observed = (20 + 15) / 50
    chance = (25 / 50) * (30 / 50) + (25 / 50) * (20 / 50)
    est = cohen_kappa(a, b)
    assert est.value == pytest.approx((observed - chance) / (1 - chance))
    assert est.value == pytest.approx(0.4)
    assert est.low < 0.4 < est.high and est.n == 50


def test_cohen_kappa_perfect_and_chance_level():
    labels = [0, 1, None, 2, 1, 0, None] * 5
    assert cohen_kappa(labels, labels).value == pytest.approx(1.0)
    a, b = _table({(0, 0): 10, (0, 1): 10, (1, 0): 10, (1, 1): 10})
    assert cohen_kappa(a, b).value == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 3, 5000).tolist(), rng.integers(0, 3, 5000).tolist()
    assert abs(cohen_kappa(a, b, n_boot=100).value) < 0.03


def test_tie_is_its_own_category():
    a = [None, 0, 1, None, 1, 0, 0, None]
    b = [None, 0, 0, 1, 1, None, 0, None]
    expected = cohen_kappa_score(["tie" if x is None else x for x in a],
                                 ["tie" if x is None else x for x in b])
    assert cohen_kappa(a, b).value == pytest.approx(expected)
    assert cohen_kappa(a, b).value != pytest.approx(cohen_kappa([x or 0 for x in a],
                                                                [x or 0 for x in b]).value)


def test_cohen_kappa_rejects_bad_input():
    with pytest.raises(ValueError, match="different numbers of items"):
        cohen_kappa([0, 1], [0])
    for bad in (-1, "1", True):
        with pytest.raises(ValueError, match="a label is a response index"):
            cohen_kappa([0, bad], [0, 1])


def test_cohen_kappa_degenerate():
    est = cohen_kappa([1, 1, 1], [1, 1, 1])
    assert est.value is None and est.n == 3
    assert est.note == "kappa not defined: both raters gave every item the same label"
    # About a third of the resamples of nine 0s and one 1 never draw the 1: kappa is
    # not defined there, and the note says so in words, not as a count of skipped loops.
    labels = [0] * 9 + [1]
    est = cohen_kappa(labels, labels, n_boot=200)
    assert est.value == 1.0 and est.low == est.high == 1.0
    assert est.note.startswith("kappa is not defined on ")
    assert est.note.endswith("of the resampled item sets (both raters gave every drawn item "
                             "the same label); the 95% CI comes from the others and may be "
                             "too narrow")
    assert "skipped" not in est.note


def test_judge_human_kappa():
    scores = [[9, 1], [1, 9], [5, 5], [2, 8], [7, 3], [4, 4], [1, 2]]
    human = [0, 1, None, 0, 0, 1, 1]
    est = judge_human_kappa(scores, human)
    assert est.value == pytest.approx(cohen_kappa([0, 1, None, 1, 0, None, 1], human).value)
    assert judge_human_kappa(scores, [judge_label(s) for s in scores]).value == 1.0


def test_bootstrap_kappa_matches_scikit_learn():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    b[:30] = a[:30]
    weights = rng.integers(0, 3, size=(20, 60)).astype(float)
    fast = _kappas(weights, a, b, 3)
    for row, value in zip(weights.astype(int), fast, strict=True):
        ra, rb = np.repeat(a, row), np.repeat(b, row)
        assert value == pytest.approx(cohen_kappa_score(ra, rb, labels=[0, 1, 2]))


# --- Krippendorff's alpha -------------------------------------------------------


def test_krippendorff_published_values():
    assert krippendorff_alpha(_ratings(KRIPPENDORFF_2011)).value == pytest.approx(0.743, abs=5e-4)
    est = krippendorff_alpha(_ratings(PACKAGE_DOCS))
    assert est.value == pytest.approx(0.691358, abs=1e-6)
    assert est.n == 12  # units coded by two or more coders
    assert est.low < est.value < est.high


def test_krippendorff_ties_and_unpaired_items():
    base = krippendorff_alpha(_ratings(KRIPPENDORFF_2011)).value
    ratings = {r: {u: None if v == 5 else v for u, v in row.items()}  # 5 becomes a tie
               for r, row in _ratings(KRIPPENDORFF_2011).items()}
    assert [r.get(9, "missing") for r in ratings.values()] == ["missing", None, None, None]
    assert krippendorff_alpha(ratings).value == pytest.approx(base)
    ratings["A"]["only-A"] = 2  # an item no one else labels changes nothing
    ratings["E"] = {"only-E": 0}
    assert krippendorff_alpha(ratings).value == pytest.approx(base)


def test_krippendorff_agrees_with_cohen_style_perfect_agreement():
    ratings = {"x": {i: i % 3 for i in range(30)}, "y": {i: i % 3 for i in range(30)}}
    assert krippendorff_alpha(ratings).value == pytest.approx(1.0)


def test_krippendorff_degenerate():
    assert krippendorff_alpha({"a": {1: 0, 2: 1}}).note == (
        "alpha not defined: fewer than two raters have labels")
    assert krippendorff_alpha({}).value is None
    est = krippendorff_alpha({"a": {1: 0, 2: 1}, "b": {3: 0, 4: 1}})
    assert est.value is None and "two or more raters" in est.note
    est = krippendorff_alpha({"a": {1: 0, 2: 0, 3: 1}, "b": {1: 0, 2: 0}})
    assert est.value is None and est.n == 2
    assert est.note == "alpha not defined: every rater gave the same label on these items"


def test_bootstrap_alpha_matches_krippendorff_package():
    rng = np.random.default_rng(2)
    data = rng.integers(0, 3, size=(4, 40)).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    data[1, :20] = data[0, :20]
    keep = (~np.isnan(data)).sum(axis=0) >= 2
    data = data[:, keep]
    counts = np.stack([(data == v).sum(axis=0) for v in range(3)], axis=1)
    weights = rng.integers(0, 3, size=(20, data.shape[1])).astype(float)
    for row, value in zip(weights.astype(int), _alphas(weights, counts), strict=True):
        expected = krippendorff.alpha(np.repeat(data, row, axis=1), level_of_measurement="nominal",
                                      value_domain=[0, 1, 2])
        assert value == pytest.approx(expected)


def test_bootstrap_is_fast_on_a_thousand_items():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, 1000).tolist(), rng.integers(0, 3, 1000).tolist()
    pairs = [(rng.integers(0, 10, 3).tolist(), int(x)) for x in a]
    ratings = {"a": dict(enumerate(a)), "b": dict(enumerate(b)), "c": dict(enumerate(a[::-1]))}
    for run in (lambda: judge_accuracy(pairs), lambda: cohen_kappa(a, b),
                lambda: krippendorff_alpha(ratings)):
        start = time.perf_counter()
        run()
        assert time.perf_counter() - start < 2.0


# --- real data: PandaLM test set, three human annotators ------------------------


def _pandalm_label(value: int) -> int | None:
    return None if value == 0 else value - 1


def test_pandalm_inter_annotator_agreement():
    path = PREFERENCES / "pandalm" / "testset-v1.json"
    if not path.exists():
        pytest.skip(f"PandaLM test set not found at {path}")
    records = json.loads(path.read_text())
    # annotatorN: 0 = tie, 1 = response1 better, 2 = response2 better.
    labels = {f"annotator{i}": {r["idx"]: _pandalm_label(r[f"annotator{i}"]) for r in records}
              for i in (1, 2, 3)}
    names = sorted(labels)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            items = sorted(labels[x])
            est = cohen_kappa([labels[x][k] for k in items], [labels[y][k] for k in items])
            print(f"PandaLM kappa {x}/{y}: {est.value:.3f} [{est.low:.3f}, {est.high:.3f}]")
            assert est.n == len(records) and 0.80 < est.low < est.value < est.high < 0.92
    alpha = krippendorff_alpha(labels)
    print(f"PandaLM alpha: {alpha.value:.3f} [{alpha.low:.3f}, {alpha.high:.3f}] n={alpha.n}")
    assert alpha.n == len(records) and 0.82 < alpha.low < alpha.value < alpha.high < 0.91

"""The Insights numbers on small stores with known answers (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.errors import InputError
from core.insights import (
    accuracy_by_dataset,
    agreement_matrix,
    margin_vs_accuracy,
    position_bias,
    principle_diversity,
    score_distributions,
)
from core.store.importing import import_file
from core.store.judgements import save_judgement
from core.store.labels import add_label
from core.store.schema import Dataset, GroundTruth, Item


def scores_text(*scores: int, principles: str = "c") -> str:
    boxed = ", ".join(map(str, scores))
    return f"Specific Criteria: {principles}\nAnalysis: a\nScores: \\boxed{{{boxed}}}"


def import_records(store, tmp_path: Path, dataset: str, records: list[dict]) -> list[int]:
    """Import `records` as `dataset`; the ids of its items in file order."""
    path = tmp_path / f"{dataset}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    import_file(store, path, dataset)
    with Session(store) as session:
        query = select(Item.id).join(Dataset).where(Dataset.name == dataset).order_by(Item.id)
        return list(session.scalars(query))


def pair(i: int, best: int | str | None = 0, *, category: str | None = None, n: int = 2) -> dict:
    record = {"prompt": f"question {i}?", "responses": [f"answer {i}.{j}" for j in range(n)]}
    if best != "absent":
        record["best"] = best
    if category:
        record["category"] = category
    return record


def judge_items(store, items: list[int | None], completions: list[str], *, k: int = 2,
                shuffle: bool = False) -> None:
    """Judge each item (None: an item-less playground judgement of a pair) with k samples."""
    judge = Judge(ScriptedBackend(completions), rescue=False, shuffle=shuffle)
    with Session(store) as session, session.begin():
        for item_id in items:
            item = session.get(Item, item_id) if item_id is not None else None
            judge_input = JudgeInput(
                query=item.query if item else "q?",
                responses=tuple(item.responses) if item else ("x", "y"),
            )
            save_judgement(session, judge.judge(judge_input, SamplingParams(k=k)), item_id=item_id)


def nonzero(values, counts) -> dict[int, int]:
    return {v: c for v, c in zip(values, counts, strict=True) if c}


@pytest.fixture
def judged_store(store, tmp_path):
    """alpha: 4 math + 2 code items with a ground truth, 1 with none; beta: never judged."""
    records = [pair(i, 0, category="math") for i in range(4)]
    records += [pair(i, 1, category="code") for i in range(4, 6)] + [pair(6, "absent")]
    alpha = import_records(store, tmp_path, "alpha", records)
    import_records(store, tmp_path, "beta", [pair(7), pair(8, category="poetry")])
    judge_items(store, [*alpha, alpha[1], None], [
        scores_text(9, 2), scores_text(8, 3),   # 1 math: right, margin 12
        scores_text(2, 9), scores_text(3, 8),   # 2 math: wrong ... (superseded below)
        scores_text(5, 5), scores_text(6, 6),   # 3 math: tie, wrong, margin 0
        scores_text(6, 5), scores_text(6, 5),   # 4 math: right, margin 2
        scores_text(2, 9), scores_text(2, 9),   # 5 code: right, margin 14
        scores_text(9, 1), scores_text(9, 1),   # 6 code: wrong, margin 16
        scores_text(9, 2), scores_text(9, 2),   # 7: no ground truth
        scores_text(9, 2), scores_text(9, 2),   # 2 again, latest: right, margin 14
        "no scores here", scores_text(4, 4),    # playground: one invalid sample
    ])
    return store


def test_accuracy_by_dataset_and_category_uses_the_latest_judgement(judged_store):
    alpha, beta = accuracy_by_dataset(judged_store)
    assert (alpha.dataset, alpha.judged) == ("alpha", 7)
    assert (alpha.accuracy.value, alpha.accuracy.n) == (4 / 6, 6)  # item 2's latest is right
    assert alpha.accuracy.low <= 4 / 6 <= alpha.accuracy.high
    by_category = {c.category: c for c in alpha.by_category}
    assert list(by_category) == ["code", "math", None]
    assert (by_category["math"].accuracy.value, by_category["math"].accuracy.n) == (0.75, 4)
    assert (by_category["code"].accuracy.value, by_category["code"].judged) == (0.5, 2)
    uncategorised = by_category[None]
    assert (uncategorised.judged, uncategorised.accuracy.n) == (1, 0)
    assert uncategorised.accuracy.value is None
    assert uncategorised.accuracy.note == "no judged item has a label"
    assert (beta.judged, beta.accuracy.n, beta.accuracy.value, beta.accuracy.note) == (
        0, 0, None, "no judged items")
    assert [(c.category, c.judged, c.accuracy.n) for c in beta.by_category] == [
        ("poetry", 0, 0), (None, 0, 0)]


def test_margin_bins_show_accuracy_by_vote_margin(judged_store):
    bins = margin_vs_accuracy(judged_store, "alpha")
    got = {b.label: (b.accuracy.n, b.accuracy.value) for b in bins}
    assert got == {
        "tie (0)": (1, 0.0), "1": (0, None), "2-3": (1, 1.0), "4-7": (0, None),
        "8-15": (3, 1.0), "16-31": (1, 0.0), "32+": (0, None),
    }
    assert [(b.low, b.high) for b in bins][-2:] == [(16, 32), (32, None)]
    assert bins[1].accuracy.note == "no items in this margin bin"
    wide = margin_vs_accuracy(judged_store, bins=(1, 13))
    assert [(b.label, b.accuracy.n, b.accuracy.value) for b in wide] == [
        ("tie (0)", 1, 0.0), ("1-12", 2, 1.0), ("13+", 3, 2 / 3)]
    assert all(b.accuracy.n == 0 for b in margin_vs_accuracy(judged_store, "beta"))


def test_score_histogram_splits_the_labelled_best_from_the_rest(judged_store):
    everything = score_distributions(judged_store)
    assert everything.samples == 17  # 8 item judgements of 2 samples + 1 valid playground one
    assert everything.values == (1, 2, 3, 4, 5, 6, 8, 9)
    assert nonzero(everything.values, everything.best) == {1: 2, 2: 1, 3: 1, 5: 1, 6: 3, 8: 1, 9: 5}
    assert nonzero(everything.values, everything.other) == {2: 5, 3: 1, 5: 3, 6: 1, 8: 1, 9: 3}
    assert nonzero(everything.values, everything.unknown) == {2: 2, 4: 2, 9: 2}
    alpha = score_distributions(judged_store, "alpha")
    assert alpha.samples == 16 and nonzero(alpha.values, alpha.unknown) == {2: 2, 9: 2}
    beta = score_distributions(judged_store, "beta")
    assert (beta.samples, beta.values, beta.best, beta.note) == (0, (), (), "no valid samples")


def test_agreement_matrix_pairs_annotators_judge_and_the_dataset(store, tmp_path):
    truths = [0, 1, 0, 1, None]
    items = import_records(store, tmp_path, "toy", [pair(i, b) for i, b in enumerate(truths)])
    judge_items(store, items, [scores_text(9, 2), scores_text(2, 9), scores_text(9, 2),
                               scores_text(2, 9), "unparseable"], k=1)
    for item, best in zip(items, [0, 1, 1, 0, None], strict=True):
        add_label(store, item, "alice", best)
    add_label(store, items[0], "carol", 1)
    add_label(store, items[0], "carol", 0)  # a correction: only the current label counts
    add_label(store, items[1], "carol", 1)
    add_label(store, items[0], "judge", 0)  # an annotator who happens to be called "judge"
    with Session(store) as session, session.begin():  # a second source that disagrees:
        session.add(GroundTruth(item_id=items[0], best=1, source="other"))  # no dataset label
    result = agreement_matrix(store, "toy")
    assert result.raters == ("alice", "carol", "judge (annotator)", "judge", "dataset")
    kappa = {(a, b): result.kappa[i][j] for i, a in enumerate(result.raters)
             for j, b in enumerate(result.raters)}
    value = {pair_: (k.value, k.n) if k else None for pair_, k in kappa.items()}
    # items 2-4; the unparseable item 5 gives no verdict, item 1 no dataset label
    assert value["judge", "dataset"] == (1.0, 3)
    # items 2-5: alice 1, 1, 0, tie against 1, 0, 1, tie: agreement 1/2, by chance 6/16
    assert value["alice", "dataset"] == (pytest.approx(0.2), 4)  # ties are a category
    assert value["alice", "judge"] == (0.0, 4)
    assert value["carol", "alice"] == (1.0, 2)
    assert value["carol", "dataset"] is None  # one shared item only
    assert value["judge (annotator)", "alice"] is None
    assert all(kappa[a, b] == kappa[b, a] for a, b in kappa)
    assert all(result.kappa[i][i] is None for i in range(5))
    assert [result.shared[i][i] for i in range(5)] == [5, 2, 1, 4, 4]
    assert result.shared[2][0] == 1 and result.note is None


def test_position_bias_when_the_first_shown_response_always_or_never_wins(store, tmp_path):
    first = import_records(store, tmp_path, "first", [pair(0), pair(1), pair(2, n=3)])
    second = import_records(store, tmp_path, "second", [pair(3), pair(4)])
    judge_items(store, first[:2], [scores_text(9, 2)] * 4, shuffle=True)
    judge_items(store, first[2:], [scores_text(9, 2, 1)] * 2, shuffle=True)
    judge_items(store, second, [scores_text(2, 9), scores_text(5, 5)] * 2, shuffle=True)
    always = position_bias(store, "first")
    assert (always.samples, always.decisive, always.first_wins) == (6, 6, 6)
    assert always.first_win_rate.value == 1.0 and always.wins_by_shown_position == (6, 0, 0)
    assert 0.5 < always.first_win_rate.low < 1.0  # Wilson interval
    assert always.first_win_rate.high == pytest.approx(1.0)
    assert always.expected == pytest.approx((4 / 2 + 2 / 3) / 6)
    assert (always.tie_rate.value, always.tie_rate.n) == (0.0, 6)
    never = position_bias(store, "second")
    assert (never.samples, never.decisive, never.first_win_rate.value) == (4, 2, 0.0)
    assert never.wins_by_shown_position == (0, 2) and never.tie_rate.value == 0.5
    both = position_bias(store)
    assert (both.samples, both.first_wins, both.first_win_rate.value) == (10, 6, 0.75)


def test_an_empty_store_gives_empty_results_not_errors(store):
    assert accuracy_by_dataset(store) == []
    matrix = agreement_matrix(store)
    assert (matrix.raters, matrix.kappa) == ((), ())
    assert matrix.note == "fewer than two raters have labels"
    histogram = score_distributions(store)
    assert (histogram.samples, histogram.values, histogram.note) == (0, (), "no valid samples")
    assert [b.accuracy.n for b in margin_vs_accuracy(store)] == [0] * 7
    bias = position_bias(store)
    assert (bias.samples, bias.first_win_rate.value, bias.expected) == (0, None, None)
    assert bias.first_win_rate.note == "no valid sample has a strict winner"
    assert bias.wins_by_shown_position == () and bias.tie_rate.n == 0
    with pytest.raises(InputError, match="no dataset named 'nope'"):
        position_bias(store, "nope")


@pytest.mark.parametrize("bins", [(), (0, 1), (2, 4), (1, 4, 4)])
def test_margin_bins_must_start_at_1_and_increase(bins, tmp_path):
    with pytest.raises(InputError, match="must start at 1"):
        margin_vs_accuracy(None, bins=bins)  # type: ignore[arg-type]


def judged(*completions: str):
    backend = ScriptedBackend(completions)
    item = JudgeInput(query="q?", responses=("a", "b"))
    return Judge(backend, rescue=False).judge(item, SamplingParams(k=len(completions)))


def test_identical_principles_are_all_alike():
    text = "Accuracy of the facts. Clarity of the explanation."
    result = principle_diversity(judged(*[scores_text(7, 3, principles=text)] * 3))
    assert result.samples == (0, 1, 2) and result.missing == ()
    assert result.mean_similarity == pytest.approx(1.0)
    assert all(x == pytest.approx(1.0) for row in result.similarity for x in row)
    assert [(t.term, t.samples) for t in result.shared_terms] == [
        ("accuracy", 3), ("clarity", 3), ("explanation", 3), ("facts", 3)]
    assert result.distinct_terms == ()


def test_disjoint_principles_share_nothing_and_missing_ones_are_listed():
    result = principle_diversity(judged(
        scores_text(7, 3, principles="Accuracy and correctness."),
        "Analysis: none\nScores: \\boxed{4, 5}",  # no principles section
        scores_text(2, 8, principles="Brevity; tone."),
        scores_text(2, 8, principles="Tone, safety."),
    ))
    assert result.samples == (0, 2, 3) and result.missing == (1,)
    assert result.similarity[0][1] == result.similarity[0][2] == 0.0
    assert 0.0 < result.similarity[1][2] < 1.0 and result.similarity[1][1] == pytest.approx(1.0)
    assert result.mean_similarity == pytest.approx(result.similarity[1][2] / 3)
    assert [(t.term, t.samples) for t in result.shared_terms] == [("tone", 2)]
    assert [t.term for t in result.distinct_terms] == [
        "accuracy", "brevity", "correctness", "safety", "tone"]


def test_principle_diversity_of_too_few_texts_says_why():
    none = principle_diversity(judged("Scores: \\boxed{4, 5}"))
    assert (none.samples, none.missing, none.mean_similarity, none.note) == (
        (), (0,), None, "no sample has principles")
    one = principle_diversity(judged(scores_text(4, 5, principles="Safety first."), "garbage"))
    assert (one.samples, one.missing, one.similarity) == ((0,), (1,), ((1.0,),))
    assert one.mean_similarity is None
    assert one.note == "only one sample has principles"
    stop_words = principle_diversity(judged(scores_text(4, 5, principles="It is the one."),
                                             scores_text(4, 5, principles="And so on.")))
    assert stop_words.mean_similarity is None and stop_words.note == "the principles hold no terms"

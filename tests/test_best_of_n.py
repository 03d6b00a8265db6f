"""Best-of-n items (issues 18 and 20): the label rule's accepted set, the strict rule
and its pairs, importing RewardBench 2's lists (and ratings), the migration, and every
consumer of a label seeing the same accepted set."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend
from core.agreement import pairwise_counts, strict_correct, strict_outcome
from core.datasets import FieldMap, Skipped, SourceItem, read_dataset
from core.engine import shown_orders
from core.estimates import clustered_proportion, proportion
from core.insights import accuracy_by_dataset, agreement_matrix, score_distributions
from core.labels import (
    LABELLED_BEST_OF_N,
    Accepted,
    ItemLabel,
    LabelVotes,
    Settled,
    best_of_n,
    item_label,
    label_words,
    value_short,
)
from core.store.db import make_engine, upgrade
from core.store.export_formats import export_preferences
from core.store.importing import import_file
from core.store.judgements import store_judgement
from core.store.labels import add_label, item_labels
from core.store.queues import Queue, item_view, queue_items
from core.store.schema import GroundTruth, Item
from core.store.verdicts import paired_verdicts
from core.training import RFTConfig, build_rft, labelled_items
from core.training.meta_data import meta_training_set
from core.training.rft_data import item_seed
from core.training.rl import RLConfig, rl_prompts
from tests.scripted_best_of_n import ROWS, stored_responses, write_rb2
from tests.scripted_eval import shown_text

# --- the label rule -------------------------------------------------------------------


def test_best_of_n_makes_one_correct_response_a_best_and_several_an_accepted_set():
    assert best_of_n([2], 4) == 2
    assert best_of_n([3, 0, 3], 4) == Accepted((0, 3))
    for correct, n, why in (([], 4, "must be indices"), ([0, 1], 2, "all 2 responses"),
                            ([0, 4], 4, "must be indices"), ([-1], 3, "must be indices")):
        with pytest.raises(ValueError, match=why):
            best_of_n(correct, n)
    for indices in ((1,), (2, 1), (1, 1), (-1, 2)):
        with pytest.raises(ValueError, match="two or more distinct"):
            Accepted(indices)


def test_the_rule_reads_an_accepted_set_as_the_datasets_label():
    ties = Accepted((0, 2))
    label = item_label(LabelVotes(dataset=(ties,)))
    assert label == ItemLabel(best=ties, source="dataset", votes=1, total=1)
    assert label.is_best_of_n and not label.is_tie
    # a human's label, or an adjudication, decides over it as over any dataset label
    assert item_label(LabelVotes(human=(1,), dataset=(ties,))) == ItemLabel(1, "human", 1, 1)
    assert item_label(LabelVotes(adjudicated=Settled(None), dataset=(ties,))).is_tie
    assert label_words(label) == "best-of-n: Responses 1 and 3 correct (dataset majority, 1 of 1)"
    assert label_words(ItemLabel(Accepted((0, 1, 3)), "dataset", 2, 3)) == (
        "best-of-n: Responses 1, 2 and 4 correct (dataset majority, 2 of 3)")
    assert [value_short(v) for v in (None, 1, ties)] == ["tie", "R2", "R1+R3"]


# --- the strict rule and its pairs -----------------------------------------------------

TIES = Accepted((0, 1))  # responses 1 and 2 correct, 3 and 4 not
STRICT = [  # (scores, label, outcome)
    ([9, 8, 3, 2], TIES, "correct"),
    ([9, 9, 3, 2], TIES, "correct"),  # the correct ones may tie among themselves
    ([9, 3, 3, 2], TIES, "tie"),  # the lowest correct ties the highest incorrect
    ([9, 2, 3, 1], TIES, "wrong"),  # one correct response below an incorrect one
    ([1, 2, 9, 9], TIES, "wrong"),
    ([9, 3, 2], 0, "correct"),  # one best response: strictly above every other
    ([9, 9, 2], 0, "tie"),
    ([5, 9, 9], 0, "wrong"),  # the top ties between two others: the best lost, no tie
    ([4, 4, 1], None, "correct"),  # a tie label: right when the top is shared
    ([4, 3, 1], None, "wrong"),
]


@pytest.mark.parametrize(("scores", "best", "outcome"), STRICT)
def test_the_strict_rule_on_best_of_n_labels(scores, best, outcome):
    assert strict_outcome(scores, best) == outcome
    assert strict_correct(scores, best) is (outcome == "correct")


def test_one_correct_response_is_the_same_rule_as_a_best_response():
    for scores in ([9, 3, 2, 1], [3, 9, 2, 1], [9, 9, 2, 1], [1, 1, 1, 1], [2, 1, 5, 5]):
        for best in range(4):
            assert strict_correct(scores, best) is (
                scores[best] > max(s for i, s in enumerate(scores) if i != best))


def test_pairs_are_each_correct_response_against_each_incorrect_one():
    assert pairwise_counts([9, 3, 3, 2], TIES) == (3, 4)  # 3 vs 3 ties: wrong
    assert pairwise_counts([5, 7, 2], 0) == (1, 2)
    assert pairwise_counts([1, 2, 9, 9, 0], Accepted((2, 3, 4))) == (4, 6)
    with pytest.raises(ValueError, match="not an index"):
        strict_outcome([1, 2, 3], Accepted((1, 3)))
    with pytest.raises(ValueError, match="none of the 3 responses incorrect"):
        strict_outcome([1, 2, 3], Accepted((0, 1, 2)))


def test_pairs_of_one_item_each_are_wilsons_proportion_else_a_bootstrap_over_items():
    single = [(1, 1), (0, 1), (1, 1)]
    assert clustered_proportion(single) == proportion(2, 3)
    few = clustered_proportion([(3, 4), (1, 2)])
    assert (few.value, few.n, few.low) == (pytest.approx(4 / 6), 6, None)
    assert "too few items" in (few.note or "")
    many = clustered_proportion([(3, 4), (1, 4), (4, 4), (2, 4)] * 3)
    assert many.value == pytest.approx(0.625) and many.n == 48
    assert many.low is not None and many.high is not None
    assert many.low < 0.625 < many.high and "bootstrap over the 12 items" in (many.note or "")
    assert clustered_proportion([]).note == "no pairs"


# --- import ----------------------------------------------------------------------------


def texts_of(item: SourceItem | Item, label) -> list[str]:
    indices = label.indices if isinstance(label, Accepted) else (label,)
    return sorted(item.responses[i] for i in indices)


def test_a_rewardbench2_parquet_keeps_every_response_and_every_correct_one(tmp_path):
    path = write_rb2(tmp_path / "rb2.parquet")
    for shape in (None, "rewardbench2"):
        items = [e for e in read_dataset(path, shape) if isinstance(e, SourceItem)]
        assert [len(i.responses) for i in items] == [4, 4, 5]
        labels = [i.labels[0].best for i in items]
        assert isinstance(labels[0], int) and isinstance(labels[1], Accepted)
        assert [texts_of(i, b) for i, b in zip(items, labels, strict=True)] == [
            ["Paris."], ["2", "3"], ["Blue.", "Red.", "Yellow."]]
        assert [i.category for i in items] == ["Factuality", "Ties", "Ties"]
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    assert import_file(engine, path, "rb2", shape="rewardbench2").imported == 3
    with Session(engine) as session:
        stored = list(session.scalars(select(Item).order_by(Item.id)))
        truths = list(session.scalars(select(GroundTruth).order_by(GroundTruth.id)))
        labels = item_labels(session, [i.id for i in stored])
    assert [(t.best is None, t.accepted is None) for t in truths] == [
        (False, True), (True, False), (True, False)]  # a pair-like best stays a best
    assert [texts_of(i, labels[i.id].best) for i in stored] == [
        ["Paris."], ["2", "3"], ["Blue.", "Red.", "Yellow."]]
    engine.dispose()


def test_a_labellers_label_cannot_name_several_correct_responses(tmp_path):
    record = {**ROWS[1], "judge": "expert"}
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n")
    fmap = FieldMap(query="prompt", chosen="chosen", rejected="rejected", labeller="judge")
    (skipped,) = read_dataset(path, mapping=fmap)
    assert isinstance(skipped, Skipped) and "names several correct responses" in skipped.reason


def test_a_best_field_may_list_the_correct_responses(tmp_path):
    path = tmp_path / "listed.jsonl"
    records = [{"prompt": "q", "responses": ["a", "b", "c"], "best": [2, 0]},
               {"prompt": "r", "responses": ["a", "b", "c"], "best": "[1]"},
               {"prompt": "s", "responses": ["a", "b"], "best": [0, 1]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    first, second, third = read_dataset(path)
    assert isinstance(first, SourceItem) and first.labels[0].best == Accepted((0, 2))
    assert isinstance(second, SourceItem) and second.labels[0].best == 1
    assert isinstance(third, Skipped) and "at least one response that is not" in third.reason


def test_ratings_are_stored_with_the_item_and_give_the_best_or_a_tie(tmp_path):
    path = tmp_path / "rated.jsonl"
    records = [{"instruction": "q1", "completions": [
                   {"response": "a", "fine-grained_score": 4.5},
                   {"response": "b", "fine-grained_score": 2.0}]},
               {"instruction": "q2", "completions": [
                   {"response": "c", "fine-grained_score": 3.0},
                   {"response": "d", "fine-grained_score": 3.0}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    import_file(engine, path, "uf")
    with Session(engine) as session:
        items = list(session.scalars(select(Item).order_by(Item.id)))
        labels = item_labels(session, [i.id for i in items])
    assert [i.ratings for i in items] == [[4.5, 2.0], [3.0, 3.0]]
    assert [labels[i.id].best for i in items] == [0, None]  # the top rating; shared: a tie
    engine.dispose()


# --- the migration ---------------------------------------------------------------------


def test_the_migration_from_0014_keeps_every_row_and_adds_nullable_columns(store_url):
    from alembic import command

    from core.store.db import alembic_config, current_revision, head_revision
    from core.store.evals import load_evaluation

    engine = make_engine(store_url)
    upgrade(engine, "0014")
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO dataset (id, name, created_at) VALUES (1, 'old', "
                          "'2026-01-01')")
        c.exec_driver_sql(
            "INSERT INTO item (id, dataset_id, query, context, responses, n_responses, "
            "content_hash, created_at) VALUES (1, 1, 'q', '[]', '[\"a\", \"b\"]', 2, 'h', "
            "'2026-01-01')")
        c.exec_driver_sql("INSERT INTO ground_truth (item_id, best, source) VALUES (1, 1, "
                          "'dataset')")
        c.exec_driver_sql("INSERT INTO judge_model (id, name, backend, source, created_at) "
                          "VALUES (1, 'j', 'scripted', 's', '2026-01-01')")
        c.exec_driver_sql(
            "INSERT INTO eval_run (id, dataset_id, judge_model_id, params, status, considered, "
            "evaluated, excluded, created_at) VALUES (1, 1, 1, '{\"ks\": [1]}', 'finished', 1, "
            "1, '{}', '2026-01-01')")
        c.exec_driver_sql(
            "INSERT INTO eval_result (run_id, method, k, n, correct, accuracy, samples) "
            "VALUES (1, 'single', 1, 1, 1, 1.0, 1)")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with Session(engine) as session:
        (truth,) = session.scalars(select(GroundTruth))
        assert (truth.best, truth.accepted) == (1, None)
        assert session.get_one(Item, 1).ratings is None
        assert item_labels(session, [1]) == {1: ItemLabel(1, "dataset", 1, 1)}
    (result,) = load_evaluation(engine, 1).results  # a run stored before: no pairs recorded
    assert (result.correct, result.pairwise.value, result.unscored_rate) == (1, None, None)
    assert "not recorded" in (result.pairwise.note or "")
    command.downgrade(alembic_config(engine), "0014")
    assert "accepted" not in {c["name"] for c in inspect(engine).get_columns("ground_truth")}
    assert "ratings" not in {c["name"] for c in inspect(engine).get_columns("item")}
    assert "pairwise" not in {c["name"] for c in inspect(engine).get_columns("eval_result")}
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT best FROM ground_truth").scalar() == 1
    engine.dispose()


# --- every consumer sees the accepted set -----------------------------------------------

PARAMS = SamplingParams(k=2, temperature=0.5, max_new_tokens=64)


def judged_store(tmp_path, scores: dict[str, list[dict[str, int]]]):
    """The RewardBench 2 rows in a store, item 'id' judged with `scores` (per sample)."""
    path = write_rb2(tmp_path / "rb2.parquet")
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    import_file(engine, path, "rb2", shape="rewardbench2")
    responses = stored_responses(path)
    with Session(engine) as session:
        ids = {i.external_id: i.id for i in session.scalars(select(Item))}
    for rid, samples in scores.items():
        orders = shown_orders(len(responses[rid]), len(samples), PARAMS.seed)
        texts = [shown_text([s[r] for r in responses[rid]], o)
                 for s, o in zip(samples, orders, strict=True)]
        with Session(engine) as session:
            judge_input = session.get_one(Item, ids[rid]).judge_input()
        judgement = Judge(ScriptedBackend(texts), rescue=False).judge(judge_input, PARAMS)
        store_judgement(engine, judgement, item_id=ids[rid])
    return engine, ids, responses


def test_every_consumer_of_a_label_sees_the_accepted_set(tmp_path):
    right = {"2": 9, "3": 8, "4": 2, "1": 1}
    wrong = {"2": 9, "3": 1, "4": 5, "1": 2}  # "3" below "4": wrong by the strict rule
    blue_below_green = {"Red.": 9, "Blue.": 2, "Yellow.": 8, "Green.": 5, "Purple.": 1}
    engine, ids, responses = judged_store(tmp_path, {"t-1": [right, wrong],
                                                      "t-2": [blue_below_green] * 2})
    correct = Accepted(tuple(sorted(responses["t-1"].index(t) for t in ("2", "3"))))
    with Session(engine) as session:
        assert item_labels(session, [ids["t-1"]])[ids["t-1"]].best == correct
        # t-1's vote is right (its correct ones 18 and 9, the others 7 and 3); t-2's has a
        # correct answer below a wrong one (4 against 10): the judge disagrees there
        assert queue_items(session, Queue.JUDGE_DISAGREES, limit=None) == [ids["t-2"]]
        view = item_view(session, ids["t-1"])
    assert view.dataset_label == ItemLabel(correct, "dataset", 1, 1)
    # the meta RM learns from each sample by the same rule
    meta = sorted(meta_training_set(engine, "rb2").examples,
                  key=lambda e: (e.judgement_id, e.sample_index))
    assert [e.correct for e in meta] == [True, False, False, False]
    # RFT trains towards it: a trajectory is accepted by the same rule, no hint names one
    rft = {i.item_id: i for i in labelled_items(engine, "rb2").items}
    assert rft[ids["t-1"]].best == correct
    # Insights: accuracy by the same rule; the kappa matrix has no category for a set
    (rb2,) = accuracy_by_dataset(engine)
    assert (rb2.accuracy.value, rb2.accuracy.n) == (0.5, 2)
    matrix = agreement_matrix(engine, "rb2")
    assert matrix.raters == ("judge", "dataset") and matrix.shared[1][1] == 1  # f-1 alone
    distribution = score_distributions(engine, "rb2")
    assert sum(distribution.best) == 2 * 2 + 2 * 3  # the correct responses' scores
    # RL's trainer column holds one best response or a tie: best-of-n items are left out
    prompts = rl_prompts(engine, "rb2", ChatFree(), RLConfig(orders_per_item=1))
    assert {p.item_id for p in prompts} == {ids["f-1"]}
    # pairs between judges need one best response: left out, and said why
    _, excluded = paired_verdicts(engine, "rb2", *_sides(engine))
    assert dict(excluded)[LABELLED_BEST_OF_N] == 2
    engine.dispose()


class ChatFree:
    """A tokenizer stand-in with no chat format."""

    chat_template = None


def _sides(engine):
    from core.compare import parse_side
    from core.store.verdicts import resolve_side

    side = resolve_side(engine, parse_side("judge:scripted"))
    return side, side


def test_rft_accepts_by_the_accepted_set_and_hints_no_best_of_n_item(tmp_path):
    path = write_rb2(tmp_path / "rb2.parquet", [ROWS[1]])
    engine = make_engine(f"sqlite:///{tmp_path / 'rft.db'}")
    upgrade(engine)
    import_file(engine, path, "rb2")
    (item,) = labelled_items(engine, "rb2").items
    config = RFTConfig(validation_fraction=0.0, n_rft=2)
    responses = stored_responses(path)["t-1"]
    orders = shown_orders(4, 2, item_seed(item.content_hash, config))
    plans = {"mixed": [{"2": 7, "3": 9, "4": 3, "1": 1}, {"2": 5, "3": 9, "4": 5, "1": 1}],
             "all wrong": [{"2": 1, "3": 9, "4": 5, "1": 2}] * 2}
    counts = {}
    for name, plan in plans.items():
        texts = [shown_text([s[r] for r in responses], o) for s, o in zip(plan, orders,
                                                                          strict=True)]
        backend = ScriptedBackend(texts)  # a hinted sample would ask for more: none left
        build = build_rft(Judge(backend, rescue=False), [item], config, PARAMS)
        counts[name] = build.counts
        assert all(t.best == item.best.indices for t in build.trajectories)
    assert (counts["mixed"]["accepted"], counts["mixed"]["wrong"]) == (1, 1)
    assert counts["all wrong"]["items_not_hinted_best_of_n"] == 1
    assert counts["all wrong"]["items_hinted"] == 0
    engine.dispose()


def test_exports_write_each_correct_against_each_incorrect_and_read_back(tmp_path):
    path = write_rb2(tmp_path / "rb2.parquet")
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    import_file(engine, path, "rb2", shape="rewardbench2")
    trl = export_preferences(engine, "trl", tmp_path / "out.jsonl", "rb2")
    assert trl.written == 3 + 2 * 2 + 3 * 2  # best-of-4: 3 pairs; 2 of 4: 4; 3 of 5: 6
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {(r["chosen"], r["rejected"]) for r in rows if r["id"] == "t-1"} == {
        ("2", "4"), ("2", "1"), ("3", "4"), ("3", "1")}
    export_preferences(engine, "parquet", tmp_path / "out.parquet", "rb2")
    import_file(engine, tmp_path / "out.parquet", "back")
    with Session(engine) as session:
        def labels(name: str) -> list[object]:
            ids = list(session.scalars(select(Item.id).join(Item.dataset)
                                       .where(Item.dataset.has(name=name)).order_by(Item.id)))
            return [label.best for label in item_labels(session, ids).values()]

        assert labels("back") == labels("rb2")  # the accepted sets read back as they were
    engine.dispose()


def test_the_annotate_view_says_a_best_of_n_label_in_words(tmp_path):
    from webapp.annotate_tab import others_html

    path = write_rb2(tmp_path / "rb2.parquet", [ROWS[2]])
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(engine)
    import_file(engine, path, "rb2")
    with Session(engine) as session:
        (item_id,) = session.scalars(select(Item.id))
    add_label(engine, item_id, "ann", 0)  # a human picks one response: the human decides
    with Session(engine) as session:
        view = item_view(session, item_id)
        assert item_labels(session, [item_id])[item_id] == ItemLabel(0, "human", 1, 1)
    correct = sorted(stored_responses(path)["t-2"].index(t) + 1
                     for t in ("Red.", "Blue.", "Yellow."))
    expected = f"best-of-n: Responses {correct[0]}, {correct[1]} and {correct[2]} correct"
    assert f"<li>dataset label: {expected}</li>" in others_html(view, "ann")
    engine.dispose()

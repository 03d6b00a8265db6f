"""The SQL store on SQLite and on a real PostgreSQL server (see conftest.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.errors import InputError
from core.labels import ItemLabel
from core.store.browse import browse_items
from core.store.export import export_frame, export_jsonl
from core.store.importing import import_file
from core.store.judgements import load_judgement, save_judgement
from core.store.labels import add_label, current_labels, label_history
from core.store.queues import Queue, item_view, queue_items
from core.store.schema import Annotation, GroundTruth, Item
from core.store.stats import agreement, dataset_counts

PAIRS = [
    {"prompt": f"question {i}?", "responses": [f"good answer {i}", f"bad answer {i}"], "best": 0}
    for i in range(6)
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def scores_text(a: int, b: int) -> str:
    return f"Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{a}, {b}}}"


def item_ids(engine) -> list[int]:
    with Session(engine) as session:
        return list(session.scalars(select(Item.id).order_by(Item.id)))


def count(engine, column) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count(column)))


def test_judgement_round_trips_through_the_store(store):
    backend = ScriptedBackend(
        [scores_text(8, 3), "no scores here", scores_text(2, 9)], rescues=["7, 7}"]
    )
    original = Judge(backend).judge(
        JudgeInput(query="q?", responses=("a", "b")), SamplingParams(k=3, seed=4)
    )
    with Session(store) as session, session.begin():
        judgement_id = save_judgement(session, original)
    with Session(store) as session:
        loaded = load_judgement(session, judgement_id)
    assert loaded.samples == original.samples
    assert loaded.vote == original.vote
    assert loaded.input == original.input
    assert loaded.template == original.template
    with Session(store) as session, pytest.raises(InputError, match="no judgement with id 999"):
        load_judgement(session, 999)


def test_import_report_and_idempotent_reimport(store, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    report = import_file(store, path, "toy")
    assert (report.imported, report.duplicates, report.skipped) == (6, 0, ())
    again = import_file(store, path, "toy")
    assert again.already_imported and again.imported == 0
    bigger = write_jsonl(tmp_path / "more.jsonl", [*PAIRS, {**PAIRS[0], "prompt": "new?"}])
    more = import_file(store, bigger, "toy")
    assert (more.imported, more.duplicates) == (1, 6)
    assert count(store, Item.id) == 7
    assert count(store, GroundTruth.id) == 7


def test_bad_lines_are_skipped_with_line_numbers(store, tmp_path):
    path = tmp_path / "broken.jsonl"
    lines = [json.dumps(PAIRS[0]), "{not json", json.dumps({"prompt": "q"}),
             json.dumps({**PAIRS[1], "responses": "not a list"}), json.dumps(PAIRS[2])]
    path.write_text("\n".join(lines) + "\n")
    report = import_file(store, path, "broken", shape="responses_best")
    assert report.imported == 2
    assert [s.line for s in report.skipped] == [2, 3, 4]
    assert "invalid JSON" in report.skipped[0].reason


def test_a_missing_file_is_a_clear_error(store, tmp_path):
    with pytest.raises(InputError, match=r"cannot read .*nope\.jsonl"):
        import_file(store, tmp_path / "nope.jsonl", "toy")


def test_an_empty_file_is_an_error_and_stores_nothing(store, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        import_file(store, empty, "nothing")
    assert count(store, Item.id) == 0


def test_an_interrupted_import_leaves_nothing_half_imported(store, tmp_path, monkeypatch):
    from core.store import importing

    monkeypatch.setattr(importing, "CHUNK", 2)
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)

    def interrupt(done: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(store, path, "toy", progress=interrupt)
    assert count(store, Item.id) == 0
    assert import_file(store, path, "toy").imported == 6  # and it can be done again


def test_labels_are_append_only_with_readable_history(store, tmp_path):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:1]), "toy")
    (item,) = item_ids(store)
    first = add_label(store, item, "alice", 0)
    add_label(store, item, "bob", 1, note="b is better")
    correction = add_label(store, item, "alice", None, corrected_scores=[5, 5], note="a tie")
    assert correction.supersedes_id == first.id
    with Session(store) as session:
        current = {label.annotator: label.best for label in current_labels(session, item)}
        history = label_history(session, item)
    assert current == {"alice": None, "bob": 1}
    assert [(h.annotator, h.best) for h in history] == [("alice", 0), ("bob", 1), ("alice", None)]


def test_undo_is_append_only_and_restores_or_withdraws(store, tmp_path):
    from core.store.labels import undo_label

    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:2]), "toy")
    one, two = item_ids(store)
    first = add_label(store, one, "alice", 0)
    second = add_label(store, one, "alice", 1, note="changed my mind")
    third = add_label(store, two, "alice", 1)
    with pytest.raises(InputError, match="not bob's to undo"):
        undo_label(store, third.id, annotator="bob")
    assert undo_label(store, third.id, annotator="alice") is None  # item two had no label before: withdrawn
    (counts,) = dataset_counts(store)
    assert (counts.labelled, counts.labels) == (1, 1)  # undone and superseded rows don't count
    restored = undo_label(store, second.id)  # item one: back to the first label
    assert restored is not None and restored.best == 0 and restored.note is None
    with pytest.raises(InputError, match="changed since"):
        undo_label(store, first.id)  # superseded: undoing it would lose the restore
    with pytest.raises(InputError, match="no label with id"):
        undo_label(store, 9999)
    with Session(store) as session:
        assert [lab.best for lab in current_labels(session, one)] == [0]
        assert current_labels(session, two) == []
        assert len(label_history(session, one)) == 3 and len(label_history(session, two)) == 2
        assert set(queue_items(session, Queue.UNLABELLED)) == {two}
    add_label(store, two, "alice", 0)  # labelling again continues the same chain
    with Session(store) as session:
        assert [lab.best for lab in current_labels(session, two)] == [0]


def test_two_first_labels_at_once_make_one_chain(store, tmp_path):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:1]), "toy")
    (item,) = item_ids(store)
    start = threading.Barrier(2)
    errors = []

    def label(best: int) -> None:
        try:
            start.wait()
            add_label(store, item, "alice", best)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=label, args=(b,)) for b in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(store) as session:
        assert len(current_labels(session, item)) == 1
        chain = label_history(session, item)
    assert [lab.supersedes_id for lab in chain] == [None, chain[0].id]


@pytest.mark.parametrize(
    ("best", "scores", "message"),
    [(2, None, "best must name one of the 2"), (0, [5], "one integer per response")],
)
def test_bad_labels_are_refused_and_store_nothing(store, tmp_path, best, scores, message):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:1]), "toy")
    (item,) = item_ids(store)
    with pytest.raises(InputError, match=message):
        add_label(store, item, "alice", best, corrected_scores=scores)
    with pytest.raises(InputError, match="no item with id"):
        add_label(store, 12345, "alice", 0)
    assert count(store, Annotation.id) == 0


def test_eight_threads_writing_labels_lose_and_duplicate_nothing(store, tmp_path):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS), "toy")
    items = item_ids(store)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def annotate(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(3):  # each round corrects the worker's previous labels
                for item in items:
                    add_label(store, item, f"annotator-{worker}", (worker + round_) % 2)
                add_label(store, items[0], "shared", worker % 2)  # all race on one chain
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=annotate, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(store, Annotation.id) == 8 * 3 * len(items) + 8 * 3
    with Session(store) as session:
        for item in items:
            current = [lab for lab in current_labels(session, item) if lab.annotator != "shared"]
            assert len(current) == 8  # one current label per annotator, none lost
        chain = [lab for lab in label_history(session, items[0]) if lab.annotator == "shared"]
    superseded = [lab.supersedes_id for lab in chain if lab.supersedes_id]
    assert len(superseded) == len(set(superseded)) == len(chain) - 1  # one unbroken chain


def _judge_items(store, backend: ScriptedBackend) -> list[int]:
    judge = Judge(backend, rescue=False, shuffle=False)
    ids = item_ids(store)
    with Session(store) as session, session.begin():
        for item_id in ids:
            item = session.get(Item, item_id)
            judgement = judge.judge(
                JudgeInput(query=item.query, responses=tuple(item.responses)), SamplingParams(k=2)
            )
            save_judgement(session, judgement, item_id=item_id)
    return ids


def test_queues_find_the_right_items(store, tmp_path):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:5]), "toy")
    # Ground truth is response 0 everywhere. Item 1: judge right by a wide margin;
    # 2: judge wrong; 3: tie; 4: samples split; 5: one sample unparseable.
    completions = [scores_text(9, 2), scores_text(8, 3),
                   scores_text(2, 9), scores_text(3, 8),
                   scores_text(5, 5), scores_text(6, 6),
                   scores_text(9, 2), scores_text(2, 4),
                   scores_text(9, 2), "nothing"]
    one, two, three, four, five = _judge_items(store, ScriptedBackend(completions))
    add_label(store, one, "alice", 0)
    add_label(store, one, "bob", 1)
    add_label(store, two, "alice", 1)
    with Session(store) as session:
        def members(queue, **kw):
            return set(queue_items(session, queue, **kw))

        assert members(Queue.UNLABELLED) == {three, four, five}
        # Against the item's label: one has none (alice and bob disagree); two's is
        # alice's 1, the judge's pick, over the dataset's 0; three's vote ties.
        assert members(Queue.JUDGE_DISAGREES) == {three}
        assert members(Queue.ANNOTATORS_DISAGREE) == {one}
        assert members(Queue.LOW_MARGIN, margin_threshold=2) == {three}
        assert members(Queue.LOW_MARGIN, margin_threshold=6) == {three, four}
        assert members(Queue.SPLIT_VOTE) == {four}
        assert members(Queue.PARSE_FAILURES) == {five}
        assert members(Queue.JUDGE_DISAGREES, annotator="alice") == {three}
        with pytest.raises(InputError, match="unknown queue"):
            queue_items(session, "nope")
        seen = item_view(session, one, annotator="alice")
        blind = item_view(session, one, annotator="alice", blind=True)
    assert {lab.annotator for lab in seen.labels} == {"alice", "bob"}
    assert seen.judgement is not None and seen.judgement.vote.winner == 0
    assert [lab.annotator for lab in blind.labels] == ["alice"]
    assert seen.dataset_label == ItemLabel(best=0, source="dataset", votes=1, total=1)
    assert blind.judgement is None and blind.dataset_label is None


def pandalm_record(idx: int, votes: tuple[int, int, int]) -> dict:
    """A record as PandaLM's test set has it: its three annotators' votes (0 is a tie)."""
    return {"idx": idx, "motivation_app": "Grammarly", "instruction": f"Rewrite sentence {idx}.",
            "input": "", "response1": f"first {idx}", "response2": f"second {idx}",
            **{f"annotator{i}": vote for i, vote in enumerate(votes, start=1)}}


def test_imported_annotators_are_the_dataset_in_the_queues_and_counts(store, tmp_path):
    """PandaLM's three annotators came with the file: their labels are the dataset's
    votes, so its items wait in "unlabelled" until this studio's annotators label them,
    and only a split among those puts an item in "annotators disagree"."""
    path = tmp_path / "pandalm.json"
    path.write_text(json.dumps([pandalm_record(0, (1, 1, 2)), pandalm_record(1, (1, 2, 0))]))
    import_file(store, path, "pandalm")
    agreed, split = item_ids(store)

    def members(queue):
        with Session(store) as session:
            return queue_items(session, queue)

    with Session(store) as session:
        assert [len(current_labels(session, i)) for i in (agreed, split)] == [3, 3]
    assert members(Queue.UNLABELLED) == [agreed, split]
    assert members(Queue.ANNOTATORS_DISAGREE) == []  # the imported three split on item 2
    assert browse_items(store, labelled=False).total == 2
    assert browse_items(store, labelled=True).total == 0
    assert [r.labels for r in browse_items(store).rows] == [0, 0]
    (counts,) = dataset_counts(store)
    assert (counts.labelled, counts.labels, counts.imported_labels) == (0, 0, 6)

    add_label(store, agreed, "alice", 0)
    add_label(store, agreed, "bob", 1)  # two humans, one each: no label
    assert members(Queue.UNLABELLED) == [split]
    assert members(Queue.ANNOTATORS_DISAGREE) == [agreed]
    page = browse_items(store, queue=Queue.ANNOTATORS_DISAGREE)
    assert (page.total, [r.item_id for r in page.rows], page.rows[0].labels) == (1, [agreed], 2)
    assert [r.item_id for r in browse_items(store, labelled=True).rows] == [agreed]
    (counts,) = dataset_counts(store)
    assert (counts.labelled, counts.labels, counts.imported_labels) == (1, 2, 6)

    add_label(store, agreed, "carol", 1)  # a majority: the item has a label again
    assert members(Queue.ANNOTATORS_DISAGREE) == []


def test_export_jsonl_and_dataframe(store, tmp_path):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:2]), "toy")
    first, second = _judge_items(store, ScriptedBackend([scores_text(9, 2)] * 4))
    add_label(store, first, "alice", 0, note="clear")
    out = tmp_path / "out" / "labels.jsonl"
    assert export_jsonl(store, "labels", out) == 1
    (label,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert label["annotator"] == "alice" and label["note"] == "clear" and label["item_id"] == first
    items = export_frame(store, "items", dataset="toy")
    assert list(items["item_id"]) == [first, second]
    assert items.loc[0, "labels"] == {"alice": 0}
    judgements = export_frame(store, "judgements")
    assert list(judgements["winner"]) == [0, 0]
    assert len(judgements.loc[0, "samples"]) == 2
    assert not list(out.parent.glob(".*partial"))
    with pytest.raises(InputError, match="unknown export"):
        export_jsonl(store, "everything", tmp_path / "x.jsonl")
    with pytest.raises(InputError, match="no dataset 'nope'"):
        export_jsonl(store, "judgements", tmp_path / "x.jsonl", dataset="nope")
    assert not (tmp_path / "x.jsonl").exists()


def test_stats_count_and_score_the_judge(store, tmp_path):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:4]), "toy")
    completions = [scores_text(9, 2)] * 4 + [scores_text(2, 9)] * 2 + [scores_text(5, 5)] * 2
    ids = _judge_items(store, ScriptedBackend(completions))
    for item in ids:
        add_label(store, item, "alice", 0)
        add_label(store, item, "bob", 0 if item != ids[2] else 1)
    (counts,) = dataset_counts(store)
    assert (counts.items, counts.with_ground_truth, counts.labelled, counts.judged, counts.labels,
            counts.imported_labels) == (4, 4, 4, 4, 8, 0)
    result = agreement(store, "toy")
    # Against the items' labels: 1 and 2 right; 3 has none (alice and bob split, so the
    # dataset's 0 is not asked); 4's tied vote counts wrong.
    assert result.accuracy_vs_label.value == pytest.approx(2 / 3)
    assert result.accuracy_vs_label.n == 3
    low, high = result.accuracy_vs_label.low, result.accuracy_vs_label.high
    assert low <= 2 / 3 <= high
    assert result.accuracy_vs_humans.n == 8
    (pair,) = result.annotator_kappas
    assert pair[:2] == ("alice", "bob")


def test_migrations_from_empty_and_from_the_first_revision(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store.db import current_revision, head_revision, make_engine, upgrade
    from core.store.schema import Base

    engine = make_engine(store_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    tables = set(inspect(engine).get_table_names())
    assert {"dataset", "item", "judgement", "sample"} <= tables
    assert not {"annotation", "annotator"} & tables
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO dataset (name, created_at) VALUES ('kept', '2026-01-01')")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    inspector = inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("annotation")}
    assert columns == {
        "id", "item_id", "annotator_id", "best", "corrected_scores", "corrected_principles",
        "corrected_critique", "note", "judgement_id", "supersedes_id", "created_at", "retracted",
    }
    sample_columns = {c["name"] for c in inspector.get_columns("sample")}
    assert {"shown_order", "scores", "parse_status", "parse_reason", "rescue_used", "meta_score"} <= sample_columns
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT name FROM dataset").scalar() == "kept"
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "preferences"
REAL_FILES = {  # file -> (imported, duplicates of an item already there, skipped records)
    "llmbar/LLMBar_Natural.json": (100, 0, 0),
    "judgebench/gpt-4o-2024-05-13.jsonl": (350, 0, 0),
    "judgebench/claude-3-5-sonnet-20240620.jsonl": (269, 0, 1),
    "hh-rlhf/harmless-base_test.jsonl.gz": (2303, 0, 9),
    # 71 records repeat an earlier pair verbatim, labels too; record 581 repeats one with
    # other labels, and an annotator labels an item once: skipped with that reason
    "pandalm/testset-v1.json": (867, 71, 61),
}


def test_the_real_preference_sets_import_into_the_store(tmp_path):
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    from core.store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'real.db'}")
    upgrade(engine)
    for name, expected in REAL_FILES.items():
        report = import_file(engine, SHARED / name, name.split("/")[0])
        assert (report.imported, report.duplicates, len(report.skipped)) == expected, name
    with Session(engine) as session:
        pandalm = session.scalar(select(func.count(Annotation.id)))
        ties = session.scalar(select(func.count(Annotation.id)).where(Annotation.best.is_(None)))
        truths = session.scalar(select(func.count(GroundTruth.id)))
    assert pandalm == 3 * 867 and 0 < ties < pandalm  # three annotators, ties kept
    assert truths == 100 + 350 + 269 + 2303  # PandaLM has no single ground truth
    result = agreement(engine, "pandalm")
    assert 0.8 < result.annotator_alpha.value < 0.92
    assert len(result.annotator_kappas) == 3


def test_upgrade_of_an_empty_database_matches_the_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store.schema import Base

    with store.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert {"dataset", "item", "ground_truth", "judge_model", "judgement", "sample",
            "annotator", "annotation", "import_run", "web_session", "alembic_version"} <= set(
        inspect(store).get_table_names()
    )  # the rest: compare_metadata above finds any table the models and migrations disagree on


def test_the_demo_dataset_loads_once_into_an_empty_store(store):
    from core.config import Settings
    from core.store.demo import DEMO_DATASET, ensure_demo_dataset

    path = Settings().demo_file
    report = ensure_demo_dataset(store, path)
    assert report is not None and report.dataset == DEMO_DATASET and report.imported == 100
    assert ensure_demo_dataset(store, path) is None  # not again, and not over other data
    assert (path.parent / "SOURCE.md").read_text().count("MIT") >= 1


def test_an_over_long_annotator_name_is_refused_on_every_database(store, tmp_path):
    import_file(store, write_jsonl(tmp_path / "p.jsonl", PAIRS[:1]), "toy")
    (one,) = item_ids(store)
    with pytest.raises(InputError, match="at most 200 characters"):
        add_label(store, one, "x" * 201, 0)
    assert add_label(store, one, "x" * 200, 0).annotator == "x" * 200

"""Exports for other tools (issue 18 step 5): TRL JSONL (standard and
conversational), Hugging Face parquet and LLM Comparator JSON, each read back
by the importer as the same items and labels."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import app
from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.store.db import make_engine, upgrade
from core.store.export import item_records
from core.store.export_formats import export_preferences
from core.store.importing import import_file
from core.store.judgements import save_judgement
from core.store.labels import add_label
from core.store.schema import Item
from tests.scripted_backends import scores_text

TURNS = [{"role": "user", "content": "Let's do sums."}, {"role": "assistant", "content": "OK."}]
RECORDS = [
    {"id": "p1", "prompt": "2+2?", "responses": ["4", "5"], "best": 0, "category": "math"},
    {"id": "p2", "prompt": "Capital of Peru?", "responses": ["Quito", "Lima"], "best": 1},
    {"prompt": "3+3?", "context": TURNS, "responses": ["6", "7"], "best": 0, "category": "math"},
    {"prompt": "Say hi", "responses": ["hi", "hello"], "best": "tie"},
    {"prompt": "Say bye", "responses": ["bye", "ciao"]},  # unlabelled
    {"id": "b4", "prompt": "Best of four?", "responses": ["w", "x", "y", "z"], "best": 2},
]


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    source = tmp_path / "source.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    assert import_file(engine, source, "src").imported == len(RECORDS)
    yield engine
    engine.dispose()


def judge_all(engine, replies: list[str]) -> None:
    """Judge every item of 'src' with one scripted sample each (no shuffling)."""
    judge = Judge(ScriptedBackend(replies), rescue=False, shuffle=False)
    with Session(engine) as session, session.begin():
        for item in session.query(Item).order_by(Item.id):
            judge_input = JudgeInput(query=item.query, responses=tuple(item.responses))
            save_judgement(session, judge.judge(judge_input, SamplingParams(k=1)), item.id)


def items(engine, dataset: str) -> dict[tuple, tuple]:
    """(query, context, sorted responses) -> (label as the best response's text or 'tie'
    or None, external id, category), order-free."""
    found = {}
    for r in item_records(engine, dataset):
        truth = r["ground_truth"]
        label = None if not truth else "tie" if truth[0] is None else r["responses"][truth[0]]
        context = tuple((t["role"], t["content"]) for t in r["context"])
        found[(r["query"], context, tuple(sorted(r["responses"])))] = (
            label, r["external_id"], r["category"])
    return found


def test_parquet_round_trip_keeps_every_item_label_and_order(engine, tmp_path):
    judge_all(engine, [scores_text(9, 2)] * 6)
    path = tmp_path / "out.parquet"
    report = export_preferences(engine, "parquet", path, "src")
    assert (report.items, report.written, report.left_out) == (6, 6, ())
    assert import_file(engine, path, "back").imported == 6
    assert items(engine, "back") == items(engine, "src")
    original = [r["responses"] for r in item_records(engine, "src")]
    assert [r["responses"] for r in item_records(engine, "back")] == original
    row = pq.read_table(path).to_pylist()[0]
    assert (row["best"], row["label_source"], row["judge_winner"], row["judge_tie"],
            row["judge_scores"]) == ("0", "dataset", 0, False, [[9, 2]])


def test_parquet_loads_with_hugging_face_datasets(engine, tmp_path):
    from datasets import Dataset

    path = tmp_path / "out.parquet"
    export_preferences(engine, "parquet", path, "src")
    loaded = Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 6 and loaded[3]["best"] == "tie" and loaded[4]["best"] == ""


def test_trl_round_trip_of_labelled_pairs(engine, tmp_path):
    path = tmp_path / "out.jsonl"
    report = export_preferences(engine, "trl", path, "src")
    assert report.left_out == (("earlier turns (export as trl-conversational)", 1),
                               ("labelled a tie", 1), ("no label", 1))
    assert report.written == 2 + 3  # two pairs, and best-of-4 as three pairs
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(rows[0]) == {"prompt", "chosen", "rejected", "id", "category", "judge_prefers"}
    assert rows[0]["prompt"] == "2+2?" and (rows[0]["chosen"], rows[0]["rejected"]) == ("4", "5")
    assert import_file(engine, path, "back").imported == 5
    back = items(engine, "back")
    source = items(engine, "src")
    for key in [("2+2?", (), ("4", "5")), ("Capital of Peru?", (), ("Lima", "Quito"))]:
        assert back[key] == source[key]
    assert {key[2]: value[0] for key, value in back.items() if key[0] == "Best of four?"} == {
        ("w", "y"): "y", ("x", "y"): "y", ("y", "z"): "y"}


def test_trl_conversational_round_trip_keeps_earlier_turns(engine, tmp_path):
    judge_all(engine, [scores_text(2, 9)] * 6)
    path = tmp_path / "out.jsonl"
    report = export_preferences(engine, "trl-conversational", path, "src")
    assert report.left_out == (("labelled a tie", 1), ("no label", 1))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    with_turns = next(r for r in rows if r["prompt"][-1]["content"] == "3+3?")
    assert with_turns["prompt"] == [*TURNS, {"role": "user", "content": "3+3?"}]
    assert with_turns["chosen"] == [{"role": "assistant", "content": "6"}]
    assert with_turns["judge_prefers"] == "rejected"  # the judge scored 2 vs 9
    import_file(engine, path, "back")
    key = ("3+3?", (("user", "Let's do sums."), ("assistant", "OK.")), ("6", "7"))
    assert items(engine, "back")[key] == items(engine, "src")[key] == ("6", None, "math")


def test_an_item_label_is_the_one_rule_s_label_humans_first(engine, tmp_path):
    with Session(engine) as session:
        first = session.query(Item).order_by(Item.id).first()
        assert first is not None
    add_label(engine, first.id, "alice", 1)  # a human label overrides the dataset's
    path = tmp_path / "out.jsonl"
    export_preferences(engine, "trl", path, "src")
    row = json.loads(path.read_text().splitlines()[0])
    assert (row["chosen"], row["rejected"]) == ("5", "4")


def test_comparator_round_trip_of_judged_pairs(engine, tmp_path):
    judge_all(engine, [scores_text(9, 2), scores_text(3, 8), scores_text(5, 5),
                       scores_text(9, 2), scores_text(9, 2), "no scores at all"])
    path = tmp_path / "comparator.json"
    report = export_preferences(engine, "comparator", path, "src")
    assert report.left_out == (("not two responses", 1),)
    document = json.loads(path.read_text())
    assert set(document) == {"metadata", "models", "examples"}
    assert [m["name"] for m in document["models"]] == ["Response A", "Response B"]
    examples = document["examples"]
    assert [e["score"] for e in examples] == [1.5, -1.5, 0.0, 1.5, 1.5]
    assert [e["custom_fields"]["label"] for e in examples] == ["A", "B", "A", "tie", ""]
    assert examples[2]["custom_fields"]["context"] == "user: Let's do sums.\n\nassistant: OK."
    first = examples[0]
    assert first["tags"] == ["math"] and first["individual_rater_scores"][0]["is_flipped"] is False
    assert "Analysis" not in first["individual_rater_scores"][0]["rationale"]
    assert import_file(engine, path, "back").imported == 5
    back, source = items(engine, "back"), items(engine, "src")
    for (query, _context, responses), value in source.items():
        if len(responses) == 2:  # earlier turns are shown in Comparator, not read back
            assert back[(query, (), responses)] == value


def test_export_from_the_command_line(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", str(engine.url))
    runner = CliRunner()
    out = tmp_path / "trl.jsonl"
    result = runner.invoke(app, ["export", "trl", str(out), "--dataset", "src"])
    assert result.exit_code == 0, result.output
    assert "wrote 5 trl record(s) from 6 item(s)" in result.output
    assert "labelled a tie: 1" in result.output
    missing = runner.invoke(app, ["export", "parquet", str(tmp_path / "x.parquet")])
    assert missing.exit_code == 2 and "--dataset is needed" in missing.output
    unknown = runner.invoke(app, ["export", "csv", str(out)])
    assert unknown.exit_code == 2 and "one of items, labels, judgements, trl" in unknown.output
    nothing = runner.invoke(app, ["export", "trl", str(out), "--dataset", "nope"])
    assert nothing.exit_code == 2 and "there is no dataset 'nope'" in nothing.output


def test_a_failed_export_leaves_no_file(engine, tmp_path):
    path = tmp_path / "never.parquet"
    with pytest.raises(Exception, match="no dataset"):
        export_preferences(engine, "parquet", path, "nope")
    assert not path.exists() and not list(tmp_path.glob(".never*"))
    assert Path(tmp_path).exists()


def test_a_reference_answer_is_imported_stored_and_exported(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
    upgrade(engine)
    source = tmp_path / "ref.jsonl"
    source.write_text(json.dumps({"question": "2+2?", "a": "4", "b": "5", "gold": "4",
                                  "pick": 0}) + "\n", encoding="utf-8")
    from core.datasets import parse_roles

    fmap = parse_roles(["query=question", "responses=a,b", "best=pick", "reference=gold"])
    import_file(engine, source, "ref", mapping=fmap)
    (record,) = item_records(engine, "ref")
    assert record["reference"] == "4"
    path = tmp_path / "ref.parquet"
    export_preferences(engine, "parquet", path, "ref")
    import_file(engine, path, "back")  # the parquet's reference column is read back
    (back,) = item_records(engine, "back")
    assert (back["reference"], back["ground_truth"]) == ("4", [0])
    engine.dispose()

"""The RFT dataset builder and its export, with a scripted judge whose every
trajectory is chosen, so that each rule (accept, reject, too easy, hinted,
capped, human) is checked exactly; one real-model run at the end."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.service import export_rft
from core.store.judgements import store_judgement
from core.store.labels import add_label
from core.store.schema import RFTExport
from core.training import (
    ExportError,
    RFTConfig,
    build_rft,
    find_export,
    labelled_items,
    read_export,
    split_of,
)
from tests.scripted_rft import (
    PARAMS,
    answer,
    import_pairs,
    scripted_run,
)


def test_accept_reject_too_easy_and_hinted(store, tmp_path):
    items = import_pairs(store, tmp_path, 4)
    config = RFTConfig(validation_fraction=0.0)
    right, wrong, tie = (9, 2), (2, 9), (5, 5)
    plan = {
        0: [right, right, right],                 # too easy: dropped
        1: [right, wrong, "no scores at all"],    # one accepted, one wrong, one invalid
        2: [wrong, tie, wrong, right],            # none correct: hinted, accepted
        3: [wrong, wrong, wrong, wrong],          # none correct: hinted, wrong again
    }
    backend, judge = scripted_run(items, config, plan)
    labelled = labelled_items(store, "toy")
    build = build_rft(judge, labelled.items, config, PARAMS)

    c = build.counts
    assert (c["items_train"], c["items_too_easy"], c["items_without_accepted"]) == (4, 1, 2)
    assert (c["accepted"], c["wrong"], c["invalid"], c["too_easy"]) == (1, 7, 1, 3)
    assert (c["hinted"], c["hinted_wrong"], c["items_hinted"]) == (1, 1, 2)
    assert (c["records_train"], c["records_hinted"]) == (1, 1)
    assert sum("Hint: the best response is" in p for p in backend.prompts) == 2
    accepted = [t for t in build.trajectories if t.accepted]
    assert {(t.item_id, t.source) for t in accepted} == {(items[1].id, "sampled"),
                                                          (items[2].id, "hinted")}
    for t in build.trajectories:
        assert "Hint" not in t.prompt  # the hint is never in the training input
        assert t.messages()[0]["content"] == t.prompt


def test_keeping_easy_items_and_the_hint_cap(store, tmp_path):
    items = import_pairs(store, tmp_path, 3)
    config = RFTConfig(validation_fraction=0.0, drop_too_easy=False, max_hinted=1)
    right, wrong = (8, 3), (3, 8)
    plan = {0: [right] * 3, 1: [wrong] * 3 + [right], 2: [wrong] * 3}  # item 2: over the cap
    _, judge = scripted_run(items, config, plan)
    build = build_rft(judge, labelled_items(store, "toy").items, config, PARAMS)
    assert build.counts["accepted"] == 3 and build.counts["too_easy"] == 0
    assert build.counts["hinted"] == 1 and build.counts["items_hint_capped"] == 1


def test_human_labels_override_the_dataset_and_corrections_become_trajectories(store, tmp_path):
    items = import_pairs(store, tmp_path, 2)
    first, second = items
    # A human says response 2 is best on the first item, against the dataset.
    judgement = Judge(ScriptedBackend([answer((4, 6), (1, 0))]), rescue=False).judge(
        JudgeInput(query=first.query, responses=tuple(first.responses)), PARAMS
    )
    judgement_id = store_judgement(store, judgement, first.id)
    add_label(store, first.id, "alice", 1, corrected_scores=[3, 8],
              corrected_critique="Response 2 answers; Response 1 does not.",
              judgement_id=judgement_id)
    add_label(store, second.id, "bob", None)  # a tie: left out
    labelled = labelled_items(store, "toy")
    assert labelled.skipped == {"labelled a tie": 1}
    (item,) = labelled.items
    assert (item.best, item.label_source, len(item.human)) == (1, "human", 1)

    config = RFTConfig(validation_fraction=0.0)
    _, judge = scripted_run([first], config, {0: [(2, 7), (9, 1), (9, 1)]})
    build = build_rft(judge, labelled.items, config, PARAMS)
    human = [t for t in build.trajectories if t.source == "human"]
    assert len(human) == 1 and human[0].accepted and build.counts["human"] == 1
    # the corrected scores, written for the order the judgement's sample showed: R2, R1
    assert human[0].shown_order == (1, 0)
    assert human[0].completion.endswith("Scores: \\boxed{8, 3}")
    assert "Response 2 answers" in human[0].completion
    assert build.counts["accepted"] == 1  # the one sample that put response 2 first


def test_the_split_is_by_item_and_stable():
    config = RFTConfig(validation_fraction=0.3, seed=5)
    hashes = [f"{i:064x}" for i in range(400)]
    splits = [split_of(h, config) for h in hashes]
    assert splits == [split_of(h, config) for h in hashes]
    assert 0.2 < splits.count("validation") / len(splits) < 0.4


def test_export_writes_a_versioned_verified_dataset(store, tmp_path):
    items = import_pairs(store, tmp_path, 6)
    config = RFTConfig(validation_fraction=0.4, drop_too_easy=False, n_rft=2)
    plan = {i: [(9, 1), (1, 9)] for i in range(6)}
    root = tmp_path / "exports"

    def export(version_items):
        _, judge = scripted_run(version_items, config, plan)
        return export_rft(store, judge, "toy", name="toy-rft", root=root, config=config,
                          params=PARAMS, created_by="tester")

    first = export(items)
    second = export(items)
    assert (first.version, second.version) == (1, 2)
    assert first.path == root / "toy-rft" / "v1" and second.content_sha256 == first.content_sha256
    files = {p.name for p in first.path.iterdir()}
    assert files == {"train.jsonl", "validation.jsonl", "hinted.jsonl", "trajectories.jsonl",
                     "card.json", "README.md"}
    train = [json.loads(line) for line in (first.path / "train.jsonl").read_text().splitlines()]
    val = [json.loads(line) for line in (first.path / "validation.jsonl").read_text().splitlines()]
    assert len(train) + len(val) == 6 and train and val
    assert not {r["item_id"] for r in train} & {r["item_id"] for r in val}
    assert [m["role"] for m in train[0]["messages"]] == ["user", "assistant"]
    assert first.counts["accepted"] == 6 and first.counts["wrong"] == 6
    assert first.card["created_by"] == "tester" and first.card["config"]["n_rft"] == 2

    with Session(store) as session:
        assert session.scalar(select(func.count(RFTExport.id))) == 2
    assert find_export(store, "toy-rft", root).version == 2
    assert find_export(store, "toy-rft:v1", root).content_sha256 == first.content_sha256
    assert find_export(store, str(first.path), root).id == first.id

    import datasets

    loaded = datasets.load_dataset(str(first.path))
    assert loaded["train"].num_rows == len(train) and "messages" in loaded["train"].column_names

    (first.path / "train.jsonl").write_text("")
    with pytest.raises(ExportError, match="changed since"):
        read_export(first.path)
    with pytest.raises(ExportError, match="no RFT export"):
        find_export(store, "nothing-here", root)


def test_an_interrupted_export_leaves_nothing_that_claims_completeness(store, tmp_path, monkeypatch):
    items = import_pairs(store, tmp_path, 3)
    config = RFTConfig(validation_fraction=0.0, drop_too_easy=False)
    _, judge = scripted_run(items, config, {i: [(9, 1)] * 3 for i in range(3)})
    from core.training import rft_export

    real = rft_export._write_jsonl
    calls = []

    def dying(path, rows):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while writing the third file
        return real(path, rows)

    monkeypatch.setattr(rft_export, "_write_jsonl", dying)
    root = tmp_path / "exports"
    with pytest.raises(KeyboardInterrupt):
        export_rft(store, judge, "toy", name="toy-rft", root=root, config=config, params=PARAMS)
    assert not list(root.rglob("card.json")) and not list(root.rglob("v*"))
    with Session(store) as session:
        assert session.scalar(select(func.count(RFTExport.id))) == 0


@pytest.mark.model
def test_a_real_judge_builds_an_export(embedded_backend, tmp_path):
    from core.store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'real.db'}")
    upgrade(engine)
    import_pairs(engine, tmp_path, 1)
    judge = Judge(embedded_backend, rescue=True, prefill=True)
    config = RFTConfig(validation_fraction=0.0, n_rft=2, max_hinted=1)
    export = export_rft(engine, judge, "toy", name="real", root=tmp_path / "x", config=config,
                        params=SamplingParams(k=1, max_new_tokens=16, temperature=0.7))
    c = {key: export.counts.get(key, 0) for key in
         ("trajectories_sampled", "accepted", "wrong", "invalid", "too_easy", "hinted_sampled")}
    assert c["trajectories_sampled"] == 2
    assert c["accepted"] + c["wrong"] + c["invalid"] + c["too_easy"] == 2
    lines = (export.path / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 2 + c["hinted_sampled"]
    assert all("Hint" not in json.loads(line)["prompt"] for line in lines)


def test_cli_lists_exports_and_models_and_reports_a_missing_export(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app
    from core.store.db import make_engine, upgrade
    from core.training import exports_dir

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", url)
    monkeypatch.setenv("GRM_STUDIO_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(url)
    upgrade(engine)
    items = import_pairs(engine, tmp_path, 2)
    config = RFTConfig(validation_fraction=0.0, drop_too_easy=False)
    _, judge = scripted_run(items, config, {0: [(9, 1)] * 3, 1: [(1, 9)] * 3 + [(9, 1)]})
    export_rft(engine, judge, "toy", name="toy-rft", root=exports_dir(tmp_path / "data"),
               config=config, params=PARAMS)
    runner = CliRunner()
    listed = runner.invoke(app, ["rft", "exports"])
    assert listed.exit_code == 0 and "toy-rft:v1" in listed.output
    assert "train 3" in listed.output and "hinted 1" in listed.output
    models = runner.invoke(app, ["models"])
    assert models.exit_code == 0 and "scripted" in models.output
    missing = runner.invoke(app, ["rft", "train", "nope"])
    assert missing.exit_code == 2 and "no RFT export 'nope'" in missing.output
    engine.dispose()

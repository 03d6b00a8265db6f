"""The meta reward model: training data from the store, meta-guided voting,
and (marked `model`) a real training run on the embedded model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend
from core.service import judge_dataset
from core.store.importing import import_file
from core.store.judgements import fetch_judgement, store_judgement
from core.store.labels import add_label
from core.store.meta_scores import (
    load_meta_scores,
    meta_models,
    meta_score_source,
    register_meta_model,
    save_meta_scores,
)
from core.store.schema import Item
from core.training.meta_data import JUDGEMENT_CHARS, meta_input_text, meta_training_set
from core.training.meta_vote import meta_guided, render_meta_guided
from core.types import JudgeInput

EIGHT_THREE = "Specific Criteria: accuracy\nAnalysis: one is right\nScores: \\boxed{8, 3}"
BROKEN = "Specific Criteria: accuracy\nAnalysis: I could not decide"


def write_pairs(tmp_path: Path, n: int, best: int = 0) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"What is {i} + {i}?", "responses": [f"{2 * i}", f"{2 * i + 1}"],
                    "best": best}) + "\n"
        for i in range(n)
    ))
    return path


def scripted_store(engine, tmp_path: Path, n_items: int = 3) -> list[int]:
    """`n_items` pairs (dataset best: response 1), each judged with k=2 by a judge
    that always writes 8, 3 in shown order: the two shuffles make one sample
    right and one wrong per judgement. Returns the item ids."""
    import_file(engine, write_pairs(tmp_path, n_items), "toy")
    judge_dataset(engine, Judge(ScriptedBackend([EIGHT_THREE] * 50), rescue=False), "toy",
                  SamplingParams(k=2))
    with Session(engine) as session:
        return list(session.scalars(select(Item.id).order_by(Item.id)))


def test_the_meta_set_labels_items_by_the_humans_majority_else_the_dataset(store, tmp_path):
    _, second, third = scripted_store(store, tmp_path)
    for name, best in (("alice", 1), ("bob", 1), ("carol", 0)):  # two of three decide
        add_label(store, second, name, best=best)
    add_label(store, third, "alice", best=1)
    add_label(store, third, "bob", best=0)
    data = meta_training_set(store, "toy")
    assert data.skipped_items == {"annotators disagree": 1}
    assert data.items == 2 and len(data.examples) == 4
    for example in data.examples:
        judgement = fetch_judgement(store, example.judgement_id)
        sample = judgement.samples[example.sample_index]
        best = 0 if judgement.input.query == "What is 0 + 0?" else 1  # the dataset's, the humans'
        assert example.correct == (sample.scores[best] > sample.scores[1 - best])
    assert (data.positives, data.negatives) == (2, 2)


def test_each_sample_is_labelled_by_the_strict_rule_in_original_order(store, tmp_path):
    first, second, _ = scripted_store(store, tmp_path)
    add_label(store, second, "alice", best=1)
    # One more judgement of the first item: one sample writes no scores, one ties.
    judge = Judge(ScriptedBackend([BROKEN, "Scores: \\boxed{5, 5}"]), rescue=False)
    with Session(store) as session:
        item = session.get_one(Item, first)
        judge_input = JudgeInput(query=item.query, responses=tuple(item.responses))
    store_judgement(store, judge.judge(judge_input, SamplingParams(k=2)), item_id=first)

    data = meta_training_set(store, "toy")
    assert data.items == 3 and data.invalid_samples == 1
    assert (data.positives, data.negatives) == (3, 4)  # the tie is wrong
    for example in data.examples:
        judgement = fetch_judgement(store, example.judgement_id)
        sample = judgement.samples[example.sample_index]
        best = 1 if judgement.input.query == "What is 1 + 1?" else 0  # alice's label
        assert example.correct == (sample.scores[best] > sample.scores[1 - best])
        assert example.text == meta_input_text(judgement.input, sample)
    assert meta_training_set(store, "other").examples == []


def test_the_meta_input_shows_the_samples_order_and_keeps_its_scores(store, tmp_path):
    scripted_store(store, tmp_path, n_items=1)
    judgement = fetch_judgement(store, 1)
    swapped = next(s for s in judgement.samples if s.shown_order == (1, 0))
    text = meta_input_text(judgement.input, swapped)
    assert text.index("[Response 1]\n1\n") < text.index("[Response 2]\n0\n")
    assert text.endswith("Scores: \\boxed{8, 3}")
    long = swapped.model_copy(update={"raw_text": "x" * 10_000 + "\nScores: \\boxed{8, 3}"})
    clipped = meta_input_text(judgement.input, long)
    assert len(clipped) < 10_000 and clipped.endswith("Scores: \\boxed{8, 3}")
    assert len(clipped.split("[Judgement]\n")[1]) <= JUDGEMENT_CHARS + 10


def test_meta_guided_vote_keeps_the_samples_the_meta_rm_rates_highest():
    item = JudgeInput(query="q", responses=("a", "b"))
    texts = ["Scores: \\boxed{9, 1}", "Scores: \\boxed{2, 8}", "Scores: \\boxed{3, 7}", BROKEN]
    judgement = Judge(ScriptedBackend(texts), rescue=False, shuffle=False).judge(
        item, SamplingParams(k=4)
    )
    assert judgement.vote.winner == 1  # plain: 14 vs 16
    view = meta_guided(judgement, [0.9, 0.2, 0.1, 0.99], meta_model="m")
    assert view.k_meta == 2 and view.chosen == (0, 1)  # sample 4 is invalid: never chosen
    assert view.vote.totals == (11, 9) and view.vote.winner == 0 and view.changes_winner
    assert view.plain == judgement.vote
    one = meta_guided(judgement, [0.9, 0.2, 0.1, 0.99], k_meta=1)
    assert one.chosen == (0,) and one.vote.totals == (9, 1)
    text = render_meta_guided(view)
    assert "Voted over:   S1, S2" in text and "R1=11" in text and "differs" in text
    assert json.loads(view.model_dump_json())["vote"]["winner"] == 0


def test_meta_scores_are_stored_per_sample(store, tmp_path):
    from core.training.meta_vote import stored_meta_guided

    scripted_store(store, tmp_path, n_items=1)
    assert load_meta_scores(store, 1) == (None, None)
    assert stored_meta_guided(store, 1) is None
    meta_id = register_meta_model(store, name="m", source="/models/m", base_model="b",
                                  content_hash="0" * 64, positives=1, negatives=1)
    save_meta_scores(store, 1, [0.25, 0.75], meta_model_id=meta_id)
    assert load_meta_scores(store, 1) == (0.25, 0.75)
    assert meta_score_source(store, 1) == "/models/m"
    view = stored_meta_guided(store, 1)
    assert view.chosen == (1,) and view.meta_scores == (0.25, 0.75)
    assert view.meta_model == "/models/m"  # the guided vote says whose rewards it used
    from core.errors import InputError

    with pytest.raises(InputError, match="2 samples, got 1"):
        save_meta_scores(store, 1, [0.5], meta_model_id=meta_id)
    with pytest.raises(InputError, match="no judgement with id 99"):
        save_meta_scores(store, 99, [0.5], meta_model_id=meta_id)
    with pytest.raises(InputError, match="no registered meta model with id 99"):
        save_meta_scores(store, 1, [0.5, 0.5], meta_model_id=99)
    assert load_meta_scores(store, 1) == (0.25, 0.75)  # a refused write changes nothing


def test_migration_0011_marks_each_meta_score_with_its_meta_model(store_url):
    from alembic import command

    from core.store.db import alembic_config, current_revision, make_engine, upgrade

    engine = make_engine(store_url)
    upgrade(engine, "0010")
    assert "meta_model_id" not in {c["name"] for c in inspect(engine).get_columns("sample")}
    upgrade(engine, "0011")
    assert current_revision(engine) == "0011"
    (key,) = [k for k in inspect(engine).get_foreign_keys("sample")
              if k["constrained_columns"] == ["meta_model_id"]]
    assert key["referred_table"] == "meta_model" and key["referred_columns"] == ["id"]
    command.downgrade(alembic_config(engine), "0010")
    assert "meta_model_id" not in {c["name"] for c in inspect(engine).get_columns("sample")}
    engine.dispose()


def test_migration_0008_adds_the_meta_model_table_and_goes_back(store_url):
    from core.store.db import current_revision, make_engine, upgrade

    engine = make_engine(store_url)
    upgrade(engine, "0008")
    assert current_revision(engine) == "0008"
    columns = {c["name"] for c in inspect(engine).get_columns("meta_model")}
    assert columns == {"id", "name", "source", "base_model", "content_hash", "positives",
                       "negatives", "created_at"}
    from alembic import command

    from core.store.db import alembic_config

    command.downgrade(alembic_config(engine), "0008-1")
    assert "meta_model" not in inspect(engine).get_table_names()
    engine.dispose()


# -- real training on the embedded model ----------------------------------------------

# Two steps on the last two blocks and the head: real training, sized for two shared CPU cores.
TINY = {"max_steps": 2, "batch_size": 2, "max_length": 64, "learning_rate": 1e-4,
        "trainable_layers": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A meta RM trained for two real steps on a scripted store (SQLite)."""
    from core.config import Settings
    from core.store.db import make_engine, upgrade
    from core.training.meta_rm import MetaTrainConfig, train_meta_rm

    tmp = tmp_path_factory.mktemp("meta")
    engine = make_engine(f"sqlite:///{tmp / 'store.db'}")
    upgrade(engine)
    scripted_store(engine, tmp, n_items=2)
    # the meta RM's base defaults to the judge; pin the embedded base the test compares with
    settings = Settings(model="embedded", data_dir=tmp, database_url=f"sqlite:///{tmp / 'store.db'}")
    info = train_meta_rm(engine, settings, out_dir=tmp / "meta-rm", config=MetaTrainConfig(**TINY))
    yield engine, settings, info
    engine.dispose()


@pytest.mark.model
def test_training_changes_the_weights_and_registers_a_complete_model(trained):
    from safetensors.torch import load_file

    from core.files import checkpoint_sha256
    from core.training.meta_base import resolve_model_dir

    engine, settings, info = trained
    assert (info.positives, info.negatives, info.steps) == (2, 2, 2)
    assert all(math.isfinite(loss) for loss in info.losses)
    saved = load_file(str(info.path / "model.safetensors"))
    base = load_file(str(resolve_model_dir("embedded", settings.cache_dir) / "model.safetensors"))
    shared = [name for name in saved if name in base]
    assert len(shared) > 100 and "score.weight" in saved
    changed = {name for name in shared if not (saved[name] == base[name]).all()}
    assert {"model.norm.weight", "model.layers.29.mlp.up_proj.weight"} <= changed
    assert "model.layers.0.mlp.up_proj.weight" not in changed  # frozen below the last two
    assert not (saved["score.weight"] == 0).all()
    (row,) = meta_models(engine)
    assert (row.id, row.source, row.content_hash) == (info.id, str(info.path), info.content_hash)
    assert (row.positives, row.negatives) == (2, 2)
    assert checkpoint_sha256(info.path) == info.content_hash
    assert not [p for p in info.path.parent.iterdir() if p.name.startswith(".partial")]


@pytest.mark.model
def test_the_saved_meta_rm_reloads_and_scores_a_judgement(trained):
    from core.training.meta_rm import MetaRewardModel, score_judgement

    engine, _, info = trained
    meta = MetaRewardModel.load(info.path)
    judgement = fetch_judgement(engine, 1)
    scores = score_judgement(meta, judgement)
    assert len(scores) == 2 and all(0.0 < s < 1.0 for s in scores)
    assert scores[0] != scores[1]  # the two samples differ in order, hence in reward
    again = meta.score(judgement.input, judgement.samples[::-1])
    assert again == pytest.approx(list(scores[::-1]), abs=1e-5)
    view = meta_guided(judgement, scores, meta_model=str(info.path))
    assert len(view.chosen) == 1 and view.vote.valid_samples == 1


@pytest.mark.model
def test_interrupted_training_leaves_no_model_and_no_registration(trained, tmp_path):
    from core.training.meta_rm import MetaTrainConfig, train_meta_rm

    engine, settings, _ = trained

    def stop(step: int, loss: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_meta_rm(engine, settings, out_dir=tmp_path / "cut", config=MetaTrainConfig(**TINY),
                      on_step=stop)
    assert list(tmp_path.iterdir()) == []
    assert len(meta_models(engine)) == 1


@pytest.mark.model
def test_a_directory_that_is_not_a_complete_meta_rm_is_refused(trained, tmp_path):
    import shutil

    from core.errors import BackendError
    from core.training.meta_rm import MANIFEST, MetaRewardModel

    _, _, info = trained
    copy = tmp_path / "copy"
    shutil.copytree(info.path, copy)
    (copy / MANIFEST).unlink()
    with pytest.raises(BackendError, match="not a complete meta RM"):
        MetaRewardModel.load(copy)


# -- the command line -------------------------------------------------------------------

def cli(*args: str, env: dict[str, str] | None = None):
    from typer.testing import CliRunner

    from cli import app

    return CliRunner().invoke(app, list(args), env=env)


def test_meta_train_without_labelled_samples_says_what_to_do(tmp_path):
    env = {"GRM_STUDIO_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = cli("meta", "train", str(tmp_path / "m"), env=env)
    assert result.exit_code == 2 and "judge more labelled items" in result.output
    assert not (tmp_path / "m").exists()
    listed = cli("meta", "list", env=env)
    assert listed.exit_code == 0 and "no meta RM yet" in listed.output


def test_meta_options_are_refused_where_they_do_not_apply(tmp_path):
    env = {"GRM_STUDIO_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    result = cli("judge", "--dataset", "toy", "--meta-model", str(tmp_path), env=env)
    assert result.exit_code == 2 and "grm-studio meta score" in result.output
    result = cli("judge", "-q", "q", "-r", "a", "-r", "b", "--meta-model", str(tmp_path), env=env)
    assert result.exit_code == 2 and "not a complete meta RM" in result.output
    assert "Traceback" not in result.output


@pytest.mark.model
def test_meta_score_stores_the_rewards_and_shows_both_votes(trained):
    engine, settings, info = trained
    env = {"GRM_STUDIO_DATABASE_URL": settings.database_url}
    result = cli("meta", "score", "2", "--meta-model", str(info.path), env=env)
    assert result.exit_code == 0, result.output
    assert "Plain vote:" in result.output and "Meta-guided:" in result.output
    stored = load_meta_scores(engine, 2)
    assert len(stored) == 2 and all(0.0 < s < 1.0 for s in stored)
    # marked with the meta RM as training registered it (same files: no second row)
    assert meta_score_source(engine, 2) == str(info.path)
    assert [m.id for m in meta_models(engine)] == [info.id]


@pytest.mark.model
def test_judge_with_a_meta_model_prints_the_guided_vote_in_json(trained):
    _, settings, info = trained
    result = cli("judge", "-q", "What is 2 + 2?", "-r", "4", "-r", "5", "-k", "2",
                 "--max-new-tokens", "4", "--no-rescue", "--meta-model", str(info.path), "--json",
                 env={"GRM_STUDIO_DATABASE_URL": settings.database_url})
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    meta_vote = payload["meta_vote"]
    assert meta_vote["k_meta"] == 1 and len(meta_vote["meta_scores"]) == 2
    assert meta_vote["plain"] == payload["vote"]
    assert meta_vote["meta_model"] == str(info.path)

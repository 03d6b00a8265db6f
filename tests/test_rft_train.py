"""RFT training really trains: a few steps on the embedded model, the weights
change, the checkpoint reloads through `load_backend`, judges, and is
registered; a stopped run leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.service import export_rft
from core.store.db import make_engine, upgrade
from core.store.judgements import store_judgement
from core.store.schema import JudgeModel, TrainedJudge
from core.training import (
    RFTConfig,
    RFTTrainConfig,
    TrainingStopped,
    list_judge_models,
    resolve_model_dir,
    train_rft,
)
from tests.scripted_rft import answer, import_pairs, orders

pytestmark = pytest.mark.model
SHORT = {"batch_size": 1, "grad_accum": 1, "learning_rate": 1e-4, "max_length": 640,
         "evaluate": False, "base_model": "embedded"}


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def export(engine, tmp_path):
    """A small export: three items, each with two accepted scripted trajectories."""
    items = import_pairs(engine, tmp_path, 3)
    config = RFTConfig(validation_fraction=0.0, drop_too_easy=False, n_rft=2)
    script = [answer((9, 2), o) for item in items for o in orders(item.content_hash, config, 2)]
    judge = Judge(ScriptedBackend(script), rescue=False)
    return export_rft(engine, judge, "toy", name="toy-rft", root=tmp_path / "exports",
                      config=config, params=SamplingParams(k=1))


def weights(directory: Path) -> dict:
    from safetensors.torch import load_file

    found = {}
    for file in directory.glob("*.safetensors"):
        found.update(load_file(file))
    return found


def test_full_training_changes_weights_and_the_checkpoint_judges(engine, export, embedded_backend,
                                                                 tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    logged = []
    trained = train_rft(engine, export, RFTTrainConfig(max_steps=2, name="toy-judge", **SHORT),
                        settings, created_by="tester",
                        on_progress=lambda step, total, logs: logged.append((step, total, logs)))
    assert trained.path == (tmp_path / "data" / "judges" / "toy-judge").resolve()
    assert {"model.safetensors", "config.json", "tokenizer.json", "TRAINING.json"} <= {
        p.name for p in trained.path.iterdir()}
    assert not list(trained.path.parent.glob(".partial-*"))
    assert trained.metrics["steps"] == 2 and trained.metrics["train_records"] == 6
    assert any("loss" in logs for _, _, logs in logged) and logged[-1][1] == 2

    base_dir, _ = resolve_model_dir("embedded", settings.cache_dir)
    before, after = weights(base_dir), weights(trained.path)
    changed = [n for n in after if n in before and not before[n].equal(after[n])]
    assert len(changed) > len(after) // 2

    backend = __import__("core.backends", fromlist=["load_backend"]).load_backend(
        Settings(model=str(trained.path)))
    assert (backend.info.source, backend.info.revision) == (str(trained.path), trained.revision)
    judgement = Judge(backend, rescue=False).judge(
        JudgeInput(query="2+2?", responses=("4", "5")),
        SamplingParams(k=2, max_new_tokens=24, temperature=0.0),
    )
    assert len(judgement.samples) == 2 and all(s.raw_text for s in judgement.samples)
    store_judgement(engine, judgement)  # lands on the registered row, not a new one
    with Session(engine) as session:
        assert session.scalar(select(func.count(JudgeModel.id)).where(
            JudgeModel.source == str(trained.path))) == 1
    (entry,) = list_judge_models(engine, trained_only=True)
    assert (entry.id, entry.name, entry.method) == (trained.judge_model_id, "toy-judge", "rft")
    assert entry.parent == embedded_backend.info.name and entry.export == "toy-rft:v1"
    provenance = json.loads((trained.path / "TRAINING.json").read_text())
    assert provenance["export"]["content_sha256"] == export.content_sha256


def test_lora_training_merges_into_a_plain_checkpoint(engine, export, tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    trained = train_rft(engine, export, RFTTrainConfig(max_steps=2, lora=True, lora_r=4, **SHORT),
                        settings)
    files = {p.name for p in trained.path.iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files
    base_dir, _ = resolve_model_dir("embedded", settings.cache_dir)
    before, after = weights(base_dir), weights(trained.path)
    assert set(after) == set(before)  # merged: the base model's tensors, no lora_ ones
    assert any(not before[n].equal(after[n]) for n in after)
    assert trained.method == "rft-lora"


def test_a_stopped_run_saves_and_registers_nothing(engine, export, tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    steps = []
    with pytest.raises(TrainingStopped):
        train_rft(engine, export, RFTTrainConfig(max_steps=5, **SHORT), settings,
                  on_progress=lambda step, total, logs: steps.append(step),
                  should_stop=lambda: len(steps) >= 1)
    assert not any((tmp_path / "data" / "judges").iterdir())
    with Session(engine) as session:
        assert session.scalar(select(func.count(TrainedJudge.id))) == 0

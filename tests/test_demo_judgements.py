"""The demo's stored judgements: the recipe writes them with the studio's judge (here a
scripted one swapped in for it), a rerun judges only what is missing, and a first
start stores them on the demo items, once, so that Insights has data at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import ScriptedBackend, backends
from core.config import Settings
from core.insights import accuracy_by_dataset
from core.store.demo import (
    DEMO_DATASET,
    demo_judgements_path,
    ensure_demo_dataset,
    ensure_demo_judgements,
    read_demo_judgements,
)
from core.training.recipe import DEMO_K, JudgeRecipe, RecipeConfig

REPLY = "Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{}, {}}}"


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    """Three LLMBar-shaped pairs (the real demo file's shape)."""
    rows = [{"input": f"question {i}?", "output_1": f"first {i}", "output_2": f"second {i}",
             "label": 1} for i in range(3)]
    path = tmp_path / "demo" / "llmbar-natural.json"
    path.parent.mkdir()
    path.write_text(json.dumps(rows))
    return path


def scripted(monkeypatch: pytest.MonkeyPatch, samples: int, name: str = "scripted"
             ) -> ScriptedBackend:
    backend = ScriptedBackend([REPLY.format(8, 3)] * samples, name=name)
    monkeypatch.setattr(backends, "load_backend", lambda settings: backend)
    return backend


def recipe(tmp_path: Path, demo_file: Path) -> JudgeRecipe:
    settings = Settings(data_dir=tmp_path, demo_file=demo_file, batch_items=2)
    return JudgeRecipe(RecipeConfig(work_dir=tmp_path / "recipe"), settings)


def test_the_recipe_judges_every_demo_item_once_and_resumes(tmp_path, demo_file, monkeypatch):
    scripted(monkeypatch, 3 * DEMO_K)
    path = recipe(tmp_path, demo_file).demo_judgements()
    stored = list(read_demo_judgements(path))
    assert len(stored) == 3 and len({s.content_hash for s in stored}) == 3
    assert all(len(s.judgement.samples) == DEMO_K for s in stored)
    # a killed writer's cut line is dropped; only that item is judged again
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:50])
    again = scripted(monkeypatch, DEMO_K)
    recipe(tmp_path, demo_file).demo_judgements()
    assert len(again.prompts) == DEMO_K and len(list(read_demo_judgements(path))) == 3
    # another judge: its rows are not kept, every item is judged by the new one
    other = scripted(monkeypatch, 3 * DEMO_K, name="another judge")
    recipe(tmp_path, demo_file).demo_judgements()
    assert len(other.prompts) == 3 * DEMO_K
    assert {s.judgement.model.name for s in read_demo_judgements(path)} == {"another judge"}


def test_a_first_start_stores_them_on_the_demo_items_once(tmp_path, demo_file, monkeypatch,
                                                           store):
    scripted(monkeypatch, 3 * DEMO_K)
    path = recipe(tmp_path, demo_file).demo_judgements()
    assert path == demo_judgements_path(demo_file)
    assert ensure_demo_judgements(store, path) == 0  # no demo dataset yet
    ensure_demo_dataset(store, demo_file)
    assert ensure_demo_judgements(store, path) == 3
    assert ensure_demo_judgements(store, path) == 0  # not twice
    (demo,) = [a for a in accuracy_by_dataset(store) if a.dataset == DEMO_DATASET]
    assert demo.accuracy.n == 3  # every item judged, labelled output_1, scored 8 to 3

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
    # batches of 2: a killed writer's cut last member (the third item) is dropped,
    # and only that item is judged again
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    assert len(list(read_demo_judgements(path))) == 2
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


def test_the_shipped_demo_judgements_are_the_shipped_judges_of_every_demo_item():
    """The file a first start imports: k = 8 judgements of all 100 demo pairs by the
    judge in models/grm-studio-judge (a new judge shipped without re-running
    `recipe --stage demo` fails here)."""
    from core.backends.studio_judge import studio_judge_info
    from core.datasets import Skipped, read_dataset
    from core.store.importing import content_hash

    demo = Settings().demo_file
    assert demo is not None
    stored = list(read_demo_judgements(demo_judgements_path(demo)))
    hashes = {content_hash(r.query, [t.model_dump() for t in r.context], r.responses)
              for r in read_dataset(demo) if not isinstance(r, Skipped)}
    assert len(hashes) == 100 and {s.content_hash for s in stored} == hashes
    shipped = studio_judge_info()
    for s in stored:
        assert (s.judgement.model.name, s.judgement.model.revision) == (shipped.name,
                                                                        shipped.revision)
        assert s.judgement.model.source == shipped.source
        assert len(s.judgement.samples) == DEMO_K

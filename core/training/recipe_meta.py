"""The recipe's meta RM stage (grm-method.md §3): the shipped judge's own samples of
labelled training pairs, and a meta reward model trained on them to tell its correct
samples from its wrong ones, for meta-guided voting.

Items: the training split of the RFT sources, in the recipe's draw order
(`recipe_rft.training_pairs`), the `items_per_source` pairs of each source that come
after the RFT round's draw, so the judge has not trained on its own trajectories of
them. Each is judged with the studio's sampling settings at k = `k` and stored in the
stage's own store (`<work>/meta.db`); a killed stage judges only the rest. The
meta RM (`core.training.meta_rm`) then trains on every stored sample.

One judge per stage: a store holding another judge's samples (the shipped judge
changed) is refused, with what to do, rather than mixed into the meta RM's data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.engine import Judge
from core.errors import InputError
from core.training.labelled import LabelledItem
from core.training.meta_rm import MANIFEST, MetaModelInfo, MetaTrainConfig, train_meta_rm
from core.training.recipe_rft import preference_store, training_pairs
from core.types import Judgement, ModelInfo

META_NAME = "grm-studio-judge-meta"


class MetaStageConfig(BaseModel):
    """What the meta RM stage judges and how the meta RM trains."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items_per_source: int = Field(25, ge=1, description="training pairs judged per source")
    max_prompt_chars: int = Field(3000, ge=100, description="longer items are not drawn")
    k: int = Field(8, ge=2, description="samples per judgement")
    base_model: str = Field("embedded", description="the meta RM's base (a causal LM)")
    training: MetaTrainConfig = Field(default_factory=lambda: MetaTrainConfig(
        max_length=1024, batch_size=8))


class MetaStage:
    """Sample (stored, resumable) and train the meta RM under `work`."""

    def __init__(self, config: MetaStageConfig, settings: Settings, work: Path,
                 preferences_dir: Path, *, after: int) -> None:
        """`after`: how many pairs per source the RFT round draws (skipped here)."""
        self.config = config
        self.settings = settings
        self.work = work
        self.preferences_dir = preferences_dir
        self.after = after

    @property
    def model_dir(self) -> Path:
        return self.work / "model"

    @property
    def done(self) -> bool:
        return (self.model_dir / MANIFEST).is_file()

    def store(self) -> Engine:
        return preference_store(self.work / "meta.db", self.preferences_dir)

    def items(self, engine: Engine) -> list[LabelledItem]:
        span = slice(self.after, self.after + self.config.items_per_source)
        chosen = [item for drawn in training_pairs(engine, self.config.max_prompt_chars).values()
                  for item in drawn[span]]
        if not chosen:
            raise InputError(f"no labelled training pair past the RFT draw in "
                             f"{self.preferences_dir}")
        return chosen

    def sample(self, judge: Judge, on_item: Callable[[int, int], None] | None = None
               ) -> Engine:
        """Judge every drawn item that has no stored judgement yet; the stage's store."""
        from core.store.judgements import store_judgement

        engine = self.store()
        _refuse_other_judges(engine, judge.backend.info, self.work)
        items = self.items(engine)
        judged = _judged_items(engine)
        todo = [i for i in items if i.item_id not in judged]
        params = self.settings.sampling(k=self.config.k)
        size = max(1, self.settings.batch_items)
        for at in range(0, len(todo), size):
            chunk = todo[at: at + size]
            results = judge.judge_many([i.input for i in chunk], params)
            for item, result in zip(chunk, results, strict=True):
                if not isinstance(result, Judgement):
                    raise InputError(f"item {item.item_id} could not be judged: {result}")
                store_judgement(engine, result, item_id=item.item_id)
            if on_item is not None:
                on_item(len(items) - len(todo) + at + len(chunk), len(items))
        return engine

    def train(self, engine: Engine, on_step: Callable[[int, float], None] | None = None
              ) -> MetaModelInfo | None:
        """Train the meta RM on the stored samples; None when it is already trained.
        (Not resumable mid-run: a killed training starts again; the samples are kept.)"""
        if self.done:
            return None
        if self.model_dir.exists():  # a run killed before its manifest: start again
            import shutil

            shutil.rmtree(self.model_dir)
        return train_meta_rm(engine, self.settings, self.config.training,
                             base_model=self.config.base_model, name=META_NAME,
                             out_dir=self.model_dir, on_step=on_step)


def _judged_items(engine: Engine) -> set[int]:
    from core.store.schema import JudgementRow

    with Session(engine) as session:
        return {i for i in session.scalars(
            select(JudgementRow.item_id).where(JudgementRow.item_id.is_not(None)))
            if i is not None}


def _refuse_other_judges(engine: Engine, judge: ModelInfo, work: Path) -> None:
    from core.store.schema import JudgementRow, JudgeModel

    with Session(engine) as session:
        revisions = set(session.scalars(
            select(JudgeModel.revision).distinct().join(
                JudgementRow, JudgementRow.judge_model_id == JudgeModel.id)))
    others = revisions - {judge.revision}
    if others:
        raise InputError(
            f"{work} holds samples of another judge ({', '.join(sorted(map(str, others)))}); "
            f"the stage now samples {judge.revision}: move that directory away to sample again")

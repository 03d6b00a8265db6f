"""Rejective fine-tuning data (grm-method.md §4.1): sample, accept, reject.

For every labelled item the current judge writes `n_rft` trajectories (its
own shuffles). A trajectory is accepted when its scores are correct by the
strict rule (the best response strictly above every other; for a best-of-n
item with several correct responses, every correct one strictly above every
incorrect one). An item whose trajectories are all correct is too easy and
dropped (configurable). An item of the training split with no accepted
trajectory gets hinted sampling (not a best-of-n item with several correct
responses: the hint names one best response): the prompt used for sampling
names the best response; a correct hinted
trajectory is kept apart (source "hinted"), with the cap `max_hinted`, and its
training prompt is the ordinary, unhinted one. Human-corrected judgements
that agree with the label are accepted as they are (source "human").

The split into train and validation is by item (a hash of its content), so
no item is in both, and it is decided before sampling.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.agreement import strict_correct
from core.engine import Judge
from core.labels import Accepted
from core.templates import SCORES_PREFIX
from core.training.labelled import HumanTrajectory, LabelledItem
from core.types import Sample, SamplingParams

Split = Literal["train", "validation"]
Source = Literal["sampled", "hinted", "human"]


class RFTConfig(BaseModel):
    """How an RFT dataset is built; recorded with every export."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_rft: int = Field(3, ge=1, le=64, description="trajectories sampled per item (paper: 3)")
    drop_too_easy: bool = Field(True, description="drop items whose trajectories are all correct")
    hinted: bool = Field(True, description="hinted sampling for items with no accepted trajectory")
    n_hinted: int = Field(1, ge=1, le=16, description="hinted trajectories sampled per such item")
    max_hinted: int = Field(64, ge=0, description="at most this many hinted samples in all")
    accept_rescued: bool = Field(
        True,
        description="accept a correct trajectory whose scores came from score rescue (its "
        "training text is the sample's own text plus the rescued scores line)",
    )
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="items held out, by hash")
    seed: int = Field(0, ge=0, description="seeds the split and each item's sampling")


class Trajectory(BaseModel):
    """One trajectory and what the builder decided about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: int
    split: Split
    source: Source
    best: int | tuple[int, ...] = Field(
        description="the best response, or a best-of-n item's correct responses")
    shown_order: tuple[int, ...]
    prompt: str = Field(description="the training prompt: never contains a hint")
    completion: str = Field(description="the assistant text trained on (rescued scores included)")
    scores: tuple[int, ...] | None = Field(description="original order; None if unparseable")
    rescued: bool = False
    correct: bool
    accepted: bool
    reason: str = Field(
        description="accepted | wrong | invalid | rescued | too_easy | hinted | hinted_wrong | "
        "hinted_invalid | human"
    )

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "user", "content": self.prompt},
            {"role": "assistant", "content": self.completion},
        ]


@dataclass
class RFTBuild:
    """Every trajectory (accepted or not) and the counts by reason."""

    trajectories: list[Trajectory] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def accepted(self, split: Split, source: Source | None = None) -> list[Trajectory]:
        return [
            t for t in self.trajectories
            if t.accepted and t.split == split and (source is None or t.source == source)
        ]


def hash_fraction(text: str) -> float:
    """A number in [0, 1) fixed by `text`: every seeded draw of the training data (the
    split below, the recipe's draws and orders)."""
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(content_hash: str, config: RFTConfig) -> Split:
    """train or validation, from the item's content hash (stable across databases)."""
    fraction = hash_fraction(f"split:{config.seed}:{content_hash}")
    return "validation" if fraction < config.validation_fraction else "train"


def item_seed(content_hash: str, config: RFTConfig) -> int:
    digest = hashlib.sha256(f"sample:{config.seed}:{content_hash}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def build_rft(
    judge: Judge,
    items: Sequence[LabelledItem],
    config: RFTConfig,
    params: SamplingParams,
    *,
    on_item: Callable[[int, int, RFTBuild], None] | None = None,
) -> RFTBuild:
    """Sample, accept and reject over `items`; `on_item(done, total, build)` after each
    (raise in it to stop). `params` gives temperature and token budget; k is `n_rft`."""
    build = RFTBuild()
    counts = build.counts
    for done, item in enumerate(items, start=1):
        split = split_of(item.content_hash, config)
        counts[f"items_{split}"] += 1
        seed = item_seed(item.content_hash, config)
        judgement = judge.judge(item.input, params.model_copy(update={"k": config.n_rft, "seed": seed}))
        sampled = [_judged(judge, item, s, split, "sampled", config) for s in judgement.samples]
        if config.drop_too_easy and all(t.correct for t in sampled):
            sampled = [t.model_copy(update={"accepted": False, "reason": "too_easy"}) for t in sampled]
            counts["items_too_easy"] += 1
        build.trajectories += sampled
        if not any(t.accepted for t in sampled) and not all(t.correct for t in sampled):
            counts["items_without_accepted"] += 1
            if config.hinted and split == "train" and item.input.reference is not None:
                counts["items_not_hinted_reference"] += 1  # a hint and a reference: no template
            elif config.hinted and split == "train" and isinstance(item.best, Accepted):
                counts["items_not_hinted_best_of_n"] += 1  # a hint names one best response
            elif config.hinted and split == "train":
                build.trajectories += _hinted(judge, item, config, params, seed, counts)
        build.trajectories += [_human(judge, item, h, split) for h in item.human]
        if on_item is not None:
            on_item(done, len(items), build)
    for t in build.trajectories:
        counts[f"trajectories_{t.source}"] += 1
        counts[t.reason] += 1
        if t.accepted:
            counts[f"records_{'hinted' if t.source == 'hinted' else t.split}"] += 1
    return build


def _hinted(
    judge: Judge,
    item: LabelledItem,
    config: RFTConfig,
    params: SamplingParams,
    seed: int,
    counts: Counter[str],
) -> list[Trajectory]:
    used = counts["hinted_sampled"]
    if used + config.n_hinted > config.max_hinted:
        counts["items_hint_capped"] += 1
        return []
    counts["hinted_sampled"] += config.n_hinted
    counts["items_hinted"] += 1
    judgement = judge.judge(
        item.input,
        params.model_copy(update={"k": config.n_hinted, "seed": seed + 1}),
        hint_best=_one_best(item),
    )
    return [_judged(judge, item, s, "train", "hinted", config) for s in judgement.samples]


def _one_best(item: LabelledItem) -> int:
    """The best response a hint names (`build_rft` hints no best-of-n item)."""
    assert not isinstance(item.best, Accepted), f"item {item.item_id}: no hint names one best"
    return item.best


def _best_field(item: LabelledItem) -> int | tuple[int, ...]:
    return item.best.indices if isinstance(item.best, Accepted) else item.best


def _judged(
    judge: Judge, item: LabelledItem, sample: Sample, split: Split, source: Source, config: RFTConfig
) -> Trajectory:
    correct = sample.scores is not None and strict_correct(sample.scores, item.best)
    rescued = sample.rescue is not None
    if sample.scores is None:
        reason = "invalid"
    elif not correct:
        reason = "wrong"
    elif rescued and not config.accept_rescued:
        reason = "rescued"
    else:
        reason = "accepted"
    accepted = reason == "accepted"
    if source == "hinted":
        reason = "hinted" if accepted else f"hinted_{reason}"
    completion = (
        sample.rescue.prefix + sample.rescue.continuation if sample.rescue else sample.raw_text
    )
    return Trajectory(
        item_id=item.item_id,
        split=split,
        source=source,
        best=_best_field(item),
        shown_order=sample.shown_order,
        prompt=_training_prompt(judge, item, sample.shown_order),
        completion=completion,
        scores=sample.scores,
        rescued=rescued,
        correct=correct,
        accepted=accepted,
        reason=reason,
    )


def _human(judge: Judge, item: LabelledItem, human: HumanTrajectory, split: Split) -> Trajectory:
    shown_scores = ", ".join(str(human.scores[i]) for i in human.shown_order)
    completion = (
        f"Specific Criteria: {human.principles.strip()}\n"
        f"Analysis: {human.critique.strip()}\n"
        f"{SCORES_PREFIX}{shown_scores}}}"
    )
    return Trajectory(
        item_id=item.item_id,
        split=split,
        source="human",
        best=_best_field(item),
        shown_order=human.shown_order,
        prompt=_training_prompt(judge, item, human.shown_order),
        completion=completion,
        scores=human.scores,
        correct=True,
        accepted=True,
        reason="human",
    )


def _training_prompt(judge: Judge, item: LabelledItem, order: tuple[int, ...]) -> str:
    """The prompt the judge sees at judging time: the unhinted template, this order."""
    reference = item.input.reference is not None
    return judge.template_for(len(order), reference=reference).render(item.input, order)

"""The labelled items of a dataset, each with the one label RFT trains towards.

A human label overrides the dataset's: when annotators of this studio have
labelled an item, their majority is its label (no majority: the item is left
out); otherwise the dataset's ground truth, or the majority of the labels that
came with the file (imported annotators, e.g. PandaLM's three). A tie label
cannot be learnt by the strict rule's "best strictly above every other", so
those items are left out too, counted by reason.

Human corrections (scores, and optionally principles and critique, given on a
judgement) that agree with the item's label become trajectories of their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.agreement import strict_correct
from core.store.batch import require_dataset
from core.store.labels import is_current
from core.store.schema import Annotation, Annotator, GroundTruth, Item, SampleRow
from core.types import JudgeInput, Turn

IMPORTED = "imported"  # the role of annotators whose labels came with a file


@dataclass(frozen=True)
class HumanTrajectory:
    """A human-corrected judgement: principles, critique and scores (original order)
    as they should have been written for the responses shown in `shown_order`."""

    annotator: str
    shown_order: tuple[int, ...]
    principles: str
    critique: str
    scores: tuple[int, ...]


@dataclass(frozen=True)
class LabelledItem:
    item_id: int
    content_hash: str
    input: JudgeInput
    best: int  # original index of the best response
    label_source: str  # "human" | "dataset"
    human: tuple[HumanTrajectory, ...] = ()


@dataclass
class LabelledSet:
    items: list[LabelledItem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> items


def majority(labels: Sequence[int | None]) -> int | None | str:
    """The most common label; the string "disagree" when the top count is shared."""
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return "disagree"
    return counts[0][0]


def labelled_items(engine: Engine, dataset: str, *, limit: int | None = None) -> LabelledSet:
    """The dataset's items that have a usable label, in id order (first `limit` items)."""
    ds_id = require_dataset(engine, dataset)
    result = LabelledSet()
    with Session(engine) as session:
        query = select(Item).where(Item.dataset_id == ds_id).order_by(Item.id)
        items = list(session.scalars(query.limit(limit) if limit else query))
        ids = [i.id for i in items]
        truths = _by_item(session.execute(
            select(GroundTruth.item_id, GroundTruth.best).where(GroundTruth.item_id.in_(ids))
        ))
        labels: dict[int, list[tuple[Annotation, str, str]]] = {}
        for row in session.execute(
            select(Annotation, Annotator.name, Annotator.role)
            .join(Annotator)
            .where(Annotation.item_id.in_(ids), is_current())
            .order_by(Annotation.id)
        ):
            labels.setdefault(row[0].item_id, []).append(tuple(row))  # type: ignore[arg-type]
        for item in items:
            own = labels.get(item.id, [])
            humans = [(a, name) for a, name, role in own if role != IMPORTED]
            imported = [a.best for a, _, role in own if role == IMPORTED]
            if humans:
                best, source = majority([a.best for a, _ in humans]), "human"
            elif truths.get(item.id) or imported:
                best, source = majority(truths.get(item.id, []) + imported), "dataset"
            else:
                result.skipped["no_label"] += 1
                continue
            if best == "disagree":
                result.skipped[f"{source}_labels_disagree"] += 1
                continue
            if best is None:
                result.skipped["tie_label"] += 1
                continue
            assert isinstance(best, int)
            judge_input = JudgeInput(
                query=item.query,
                responses=tuple(item.responses),
                context=tuple(Turn(**t) for t in item.context),
            )
            human = tuple(
                t for a, name in humans
                if (t := _human_trajectory(session, a, name, best, item.n_responses)) is not None
            )
            result.items.append(
                LabelledItem(item.id, item.content_hash, judge_input, best, source, human)
            )
    return result


def _by_item(rows: object) -> dict[int, list[int | None]]:
    found: dict[int, list[int | None]] = {}
    for item_id, best in rows:  # type: ignore[attr-defined]
        found.setdefault(item_id, []).append(best)
    return found


def _human_trajectory(
    session: Session, label: Annotation, annotator: str, best: int, n: int
) -> HumanTrajectory | None:
    """The label's corrections as a trajectory, if it corrected the scores on a
    judgement and the corrected scores are right by the strict rule."""
    scores = label.corrected_scores
    if not scores or label.judgement_id is None or len(scores) != n or label.best != best:
        return None
    if not strict_correct(scores, best):
        return None
    sample = session.scalar(
        select(SampleRow)
        .where(SampleRow.judgement_id == label.judgement_id)
        .order_by(SampleRow.parse_status.desc(), SampleRow.index)  # 'ok' before 'failed'
        .limit(1)
    )
    if sample is None:
        return None
    principles = label.corrected_principles or sample.principles
    critique = label.corrected_critique or sample.critique
    if not principles or not critique:
        return None
    return HumanTrajectory(
        annotator=annotator,
        shown_order=tuple(sample.shown_order),
        principles=principles,
        critique=critique,
        scores=tuple(int(s) for s in scores),
    )

"""The labelled items of a dataset, each with the one label RFT trains towards.

An item's label is decided by the rule of `core.labels` (the annotators'
majority, else the dataset's); items without one are left out, counted by
reason. A tie label cannot be learnt by the strict rule's "best strictly above
every other", so those items are left out too ("labelled a tie"). A best-of-n
item with several correct responses is kept with its accepted set: a
trajectory is right when it scores every correct response strictly above every
incorrect one (`core.agreement.strict_correct`).

Human corrections (scores, and optionally principles and critique, given on a
judgement) that agree with the item's label become trajectories of their own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.agreement import strict_correct
from core.labels import LABELLED_A_TIE, Accepted, NoLabel, Source
from core.store.batch import require_dataset
from core.store.labels import IMPORTED, is_current, item_labels
from core.store.schema import Annotation, Annotator, Item, SampleRow
from core.types import JudgeInput


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
    best: int | Accepted  # original index of the best response, or a best-of-n item's
    # correct responses
    label_source: Source  # whose majority decided the label (`core.labels`)
    human: tuple[HumanTrajectory, ...] = ()


@dataclass
class LabelledSet:
    items: list[LabelledItem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> items


def labelled_items(engine: Engine, dataset: str, *, limit: int | None = None) -> LabelledSet:
    """The dataset's items that have a usable label, in id order (first `limit` items)."""
    ds_id = require_dataset(engine, dataset)
    result = LabelledSet()
    with Session(engine) as session:
        query = select(Item).where(Item.dataset_id == ds_id).order_by(Item.id)
        items = list(session.scalars(query.limit(limit) if limit else query))
        ids = [i.id for i in items]
        labels = item_labels(session, ids)
        humans: dict[int, list[tuple[Annotation, str]]] = {}
        for annotation, name in session.execute(
            select(Annotation, Annotator.name)
            .join(Annotator)
            .where(Annotation.item_id.in_(ids), is_current(), Annotator.role != IMPORTED)
            .order_by(Annotation.id)
        ):
            humans.setdefault(annotation.item_id, []).append((annotation, name))
        for item in items:
            label = labels[item.id]
            if isinstance(label, NoLabel):
                result.skipped[label.reason] += 1
                continue
            if label.best is None:
                result.skipped[LABELLED_A_TIE] += 1
                continue
            best = label.best
            judge_input = item.judge_input()
            human = tuple(
                t for a, name in humans.get(item.id, [])
                if (t := _human_trajectory(session, a, name, best, item.n_responses)) is not None
            )
            result.items.append(
                LabelledItem(item.id, item.content_hash, judge_input, best, label.source, human)
            )
    return result


def _human_trajectory(
    session: Session, label: Annotation, annotator: str, best: int | Accepted, n: int
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

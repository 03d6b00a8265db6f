"""Annotation queues: which items need a human next, and what to show them.

Each queue is a SQL filter over items, judged by the item's latest judgement
and its current labels. For an annotator, items they already labelled are
left out. `item_view` gives what the annotation screen shows; in blind mode it
hides the other annotators' labels and the judge's verdict.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from core.errors import InputError
from core.store.judgements import latest_judgement_ids, load_judgement
from core.store.labels import Label, current_labels, is_current
from core.store.schema import Annotation, Annotator, Dataset, GroundTruth, Item, JudgementRow
from core.types import Judgement, Turn


class Queue(StrEnum):
    UNLABELLED = "unlabelled"
    JUDGE_DISAGREES = "judge-disagrees"
    ANNOTATORS_DISAGREE = "annotators-disagree"
    LOW_MARGIN = "low-margin"
    SPLIT_VOTE = "split-vote"
    PARSE_FAILURES = "parse-failures"


QUEUE_HELP = {
    Queue.UNLABELLED: "no human label yet",
    Queue.JUDGE_DISAGREES: "the judge's winner differs from a human or ground-truth label "
    "(a tied vote counts as disagreeing)",
    Queue.ANNOTATORS_DISAGREE: "annotators' current labels differ",
    Queue.LOW_MARGIN: "the vote's margin is at most the threshold (ties included)",
    Queue.SPLIT_VOTE: "the judge's samples disagree on the winner",
    Queue.PARSE_FAILURES: "some of the judge's samples failed to parse (before or after rescue)",
}


@dataclass(frozen=True)
class ItemView:
    item_id: int
    dataset: str
    query: str
    context: tuple[Turn, ...]
    responses: tuple[str, ...]
    labels: tuple[Label, ...]  # empty in blind mode, except the annotator's own
    ground_truth: int | None | str  # "none" when the dataset has no label
    judgement: Judgement | None  # None in blind mode or when never judged
    judgement_id: int | None


def _latest_where(*conditions: object) -> object:
    """EXISTS: the item's latest judgement meets `conditions`."""
    return exists().where(
        JudgementRow.item_id == Item.id, JudgementRow.id.in_(latest_judgement_ids()), *conditions
    )


def _verdict_wrong(best: object) -> object:
    """The judgement misses label `best` by the strict rule (a tied vote is wrong;
    against a tie label, only a tied vote is right)."""
    return or_(
        and_(best.is_(None), ~JudgementRow.tie),  # type: ignore[attr-defined]
        and_(
            best.is_not(None),  # type: ignore[attr-defined]
            or_(JudgementRow.tie, JudgementRow.winner != best),
        ),
    )


def queue_filter(queue: Queue, margin_threshold: int = 2) -> object:
    """A SQL condition on `Item` that holds for the items in `queue`."""
    if queue is Queue.UNLABELLED:
        return ~exists().where(Annotation.item_id == Item.id, is_current())
    if queue is Queue.ANNOTATORS_DISAGREE:
        other = aliased(Annotation)
        return exists().where(
            Annotation.item_id == Item.id,
            is_current(),
            other.item_id == Item.id,
            other.annotator_id != Annotation.annotator_id,
            is_current(other),
            func.coalesce(other.best, -1) != func.coalesce(Annotation.best, -1),
        )
    if queue is Queue.LOW_MARGIN:
        return _latest_where(
            JudgementRow.valid_samples > 0,
            or_(JudgementRow.tie, JudgementRow.margin <= margin_threshold),
        )
    if queue is Queue.SPLIT_VOTE:
        return _latest_where(JudgementRow.split)
    if queue is Queue.PARSE_FAILURES:
        return _latest_where(JudgementRow.invalid_samples > 0)
    # Correlate through the judgement row: it is in the enclosing query's FROM.
    against_label = exists().where(
        Annotation.item_id == JudgementRow.item_id,
        is_current(),
        _verdict_wrong(Annotation.best),
    )
    against_truth = exists().where(
        GroundTruth.item_id == JudgementRow.item_id, _verdict_wrong(GroundTruth.best)
    )
    return _latest_where(JudgementRow.valid_samples > 0, or_(against_label, against_truth))


def queue_items(
    session: Session,
    queue: Queue | str,
    *,
    dataset: str | None = None,
    annotator: str | None = None,
    limit: int | None = 50,
    margin_threshold: int = 2,
    exclude: Collection[int] = (),
) -> list[int]:
    """Ids of the items in `queue`, oldest first, without those `annotator` labelled
    (and without `exclude`, e.g. the items they skipped)."""
    try:
        queue = Queue(queue)
    except ValueError:
        raise InputError(
            f"unknown queue '{queue}'; one of: {', '.join(q.value for q in Queue)}"
        ) from None
    query = select(Item.id).where(queue_filter(queue, margin_threshold)).order_by(Item.id)
    if dataset is not None:
        query = query.join(Dataset).where(Dataset.name == dataset)
    if annotator is not None:
        query = query.where(
            ~exists().where(
                Annotation.item_id == Item.id,
                Annotation.annotator_id == Annotator.id,
                Annotator.name == annotator,
                is_current(),
            )
        )
    if exclude:
        query = query.where(Item.id.not_in(list(exclude)))
    return list(session.scalars(query.limit(limit)))


def item_view(
    session: Session, item_id: int, *, annotator: str | None = None, blind: bool = False
) -> ItemView:
    """What the annotation screen shows for `item_id`."""
    item = session.get(Item, item_id)
    if item is None:
        raise InputError(f"there is no item with id {item_id}")
    labels = current_labels(session, item_id)
    if blind:
        labels = [label for label in labels if label.annotator == annotator]
    truths = [t.best for t in item.truths]
    judgement_id = session.scalar(
        select(func.max(JudgementRow.id)).where(JudgementRow.item_id == item_id)
    )
    judgement = None if blind or judgement_id is None else load_judgement(session, judgement_id)
    return ItemView(
        item_id=item.id,
        dataset=item.dataset.name,
        query=item.query,
        context=tuple(Turn.model_validate(t) for t in item.context),
        responses=tuple(item.responses),
        labels=tuple(labels),
        ground_truth="none" if blind or not truths else truths[0],
        judgement=judgement,
        judgement_id=None if blind else judgement_id,
    )

"""Annotation queues: which items need a human next, and what to show them.

A queue is for this studio's annotators, so its "labels" are theirs: an
imported annotator's label (PandaLM's three, say) is one of the dataset's
votes (`core.labels`), and an item with only those is unlabelled here.
`QUEUE_HELP` says what each queue holds.

Each queue is a SQL filter over items, judged by the item's latest judgement
and its current labels, except the queues `by_label_rule` ("judge disagrees",
"annotators disagree"): they need the item's label by the rule of
`core.labels`, which is decided in Python (`label_rule_members`, in bulk) over
the candidates their SQL filter selects. For an annotator, items they already
labelled are left out. `item_view` gives what the annotation screen shows; in
blind mode it hides the other annotators' labels, the dataset's label and the
judge's verdict. `next_in_queue` is a queue's head for an annotator: what the
Annotate tab and the JSON API both show.

The queue of disagreements to settle is an admin's or reviewer's, not an
annotator's (`next_to_settle`): the items where this studio's annotators' current
labels differ (any two of them, a majority or not) and that no adjudicated label
(`core.store.adjudication`) settles yet. Its view (`SettleView`) is never blind:
every current label with its author and note, the item's label by the rule now,
and the item's adjudication history.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Engine,
    and_,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from core.agreement import strict_correct
from core.errors import InputError
from core.labels import ItemLabel, NoLabel
from core.store.adjudication import (
    AdjudicatedLabel,
    adjudication_history,
    current_adjudication,
    is_settled,
)
from core.store.judgements import latest_judgement_ids, load_judgement
from core.store.labels import (
    Label,
    by_studio_annotator,
    current_labels,
    dataset_labels,
    has_human_label,
    is_current,
    item_labels,
)
from core.store.schema import Annotation, Annotator, Dataset, Item, JudgementRow
from core.types import Judgement, Turn

_IDS_PER_CHECK = 500  # items whose labels `label_rule_members` decides at a time


class Queue(StrEnum):
    UNLABELLED = "unlabelled"
    JUDGE_DISAGREES = "judge-disagrees"
    ANNOTATORS_DISAGREE = "annotators-disagree"
    LOW_MARGIN = "low-margin"
    SPLIT_VOTE = "split-vote"
    PARSE_FAILURES = "parse-failures"

    @property
    def by_label_rule(self) -> bool:
        """Membership needs the item's label (`core.labels`): `queue_filter` selects
        the candidates, `label_rule_members` decides."""
        return self in (Queue.JUDGE_DISAGREES, Queue.ANNOTATORS_DISAGREE)


QUEUE_HELP = {
    Queue.UNLABELLED: "no label from this studio's annotators yet (the dataset's own labels, "
    "imported annotators' such as PandaLM's included, don't count)",
    Queue.JUDGE_DISAGREES: "the judge's winner differs from the item's label: the adjudicated "
    "one, else the annotators' majority, else the dataset's (a tied vote counts as disagreeing)",
    Queue.ANNOTATORS_DISAGREE: "this studio's annotators split: no answer has more of their "
    "current labels than every other, so the item has no label until someone breaks the tie "
    "or an admin or reviewer settles it (imported annotators don't count)",
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
    dataset_label: ItemLabel | NoLabel | None  # what the dataset says; None: hidden (blind)
    judgement: Judgement | None  # None in blind mode or when never judged
    judgement_id: int | None
    category: str | None = None  # marks diverging conversations (core.datasets.diverging)


def _latest_where(*conditions: ColumnExpressionArgument[bool]) -> ColumnElement[bool]:
    """EXISTS: the item's latest judgement meets `conditions`."""
    return exists().where(
        JudgementRow.item_id == Item.id, JudgementRow.id.in_(latest_judgement_ids()), *conditions
    )


def queue_filter(queue: Queue, margin_threshold: int = 2) -> ColumnElement[bool]:
    """A SQL condition on `Item` that holds for the items in `queue`; for a queue
    `by_label_rule`, for the items it is drawn from (pass them to `label_rule_members`)."""
    if queue is Queue.UNLABELLED:
        return ~has_human_label()
    if queue is Queue.ANNOTATORS_DISAGREE:  # the candidates: two of them differ
        return labels_differ()
    if queue is Queue.LOW_MARGIN:
        return _latest_where(
            JudgementRow.valid_samples > 0,
            or_(JudgementRow.tie, JudgementRow.margin <= margin_threshold),
        )
    if queue is Queue.SPLIT_VOTE:
        return _latest_where(JudgementRow.split)
    if queue is Queue.PARSE_FAILURES:
        return _latest_where(JudgementRow.invalid_samples > 0)
    return _latest_where(JudgementRow.valid_samples > 0)  # judge disagrees: the candidates


def labels_differ() -> ColumnElement[bool]:
    """SQL on `Item`: two of this studio's annotators' current labels on it differ."""
    other = aliased(Annotation)
    return exists().where(
        Annotation.item_id == Item.id,
        is_current(),
        by_studio_annotator(),
        other.item_id == Item.id,
        other.annotator_id != Annotation.annotator_id,
        is_current(other),
        by_studio_annotator(other),
        func.coalesce(other.best, -1) != func.coalesce(Annotation.best, -1),
    )


def label_rule_members(
    session: Session, queue: Queue, item_ids: Sequence[int], *, limit: int | None = None
) -> list[int]:
    """Those of `item_ids`, in their order (the first `limit`), that are in `queue`, a
    queue `by_label_rule`, by the item's label (`core.labels`), decided in bulk:

    - judge disagrees: the latest judgement misses the label by the strict rule (a
      tied vote is wrong; against a tie label only a tied vote is right). Items
      without a label, or whose latest judgement has no valid sample, are not in it.
    - annotators disagree: the item has no label because this studio's annotators
      split (`NoLabel("annotators disagree")`).
    """
    if not queue.by_label_rule:
        raise ValueError(f"queue {queue.value!r} is a SQL filter: use queue_filter")
    found: list[int] = []
    for start in range(0, len(item_ids), _IDS_PER_CHECK):
        chunk = item_ids[start : start + _IDS_PER_CHECK]
        labels = item_labels(session, chunk)
        totals = _latest_totals(session, chunk) if queue is Queue.JUDGE_DISAGREES else {}
        for item_id in chunk:
            label = labels[item_id]
            if queue is Queue.ANNOTATORS_DISAGREE:
                member = label == NoLabel("annotators disagree")
            else:
                member = (isinstance(label, ItemLabel) and item_id in totals
                          and not strict_correct(totals[item_id], label.best))
            if member:
                found.append(item_id)
                if limit is not None and len(found) >= limit:
                    return found
    return found


def _latest_totals(session: Session, item_ids: Sequence[int]) -> dict[int, list[int]]:
    """item id -> its latest judgement's totals, where that judgement has a valid sample."""
    latest = latest_judgement_ids().where(JudgementRow.item_id.in_(item_ids))
    rows = session.execute(
        select(JudgementRow.item_id, JudgementRow.totals)
        .where(JudgementRow.id.in_(latest), JudgementRow.valid_samples > 0)
    )
    return {item_id: totals for item_id, totals in rows if item_id is not None}


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
    if queue.by_label_rule:
        return label_rule_members(session, queue, list(session.scalars(query)), limit=limit)
    return list(session.scalars(query.limit(limit)))


@dataclass(frozen=True)
class NextItem:
    """The head of a queue for one annotator."""

    view: ItemView | None  # the first pending item; None: the queue is done
    pending: int  # how many items are pending, this one included


def next_in_queue(
    engine: Engine,
    queue: Queue | str,
    *,
    annotator: str | None,
    dataset: str | None = None,
    exclude: Collection[int] = (),
    blind: bool = False,
) -> NextItem:
    """The first item of `queue` that `annotator` has not labelled (nor skipped:
    `exclude`), as the annotation screen shows it (`item_view`), and how many are
    pending. What every front that walks a queue calls."""
    with Session(engine) as session:
        pending = queue_items(session, queue, dataset=dataset, annotator=annotator,
                              limit=None, exclude=exclude)
        if not pending:
            return NextItem(None, 0)
        return NextItem(item_view(session, pending[0], annotator=annotator, blind=blind),
                        len(pending))


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
        dataset_label=None if blind else dataset_labels(session, [item_id])[item_id],
        judgement=judgement,
        judgement_id=None if blind else judgement_id,
        category=item.category,
    )


# --- disagreements to settle (admins and reviewers) ----------------------------------

TO_SETTLE_HELP = ("items where this studio's annotators' current labels differ (a majority or "
                  "not) and no adjudicated label settles them yet")


@dataclass(frozen=True)
class SettleView:
    """What an admin or reviewer sees to settle an item."""

    item: ItemView  # not blind: every current label with its author and note, the judge
    label: ItemLabel | NoLabel  # the item's label by the rule now (`core.labels`)
    adjudication: AdjudicatedLabel | None  # the current decision; None: not settled
    history: tuple[AdjudicatedLabel, ...]  # every decision and undo, oldest first


@dataclass(frozen=True)
class NextToSettle:
    """The head of the queue of disagreements to settle."""

    view: SettleView | None  # the first pending item; None: nothing to settle
    pending: int  # how many items are pending, this one included


def to_settle() -> ColumnElement[bool]:
    """SQL on `Item`: a disagreement to settle (`TO_SETTLE_HELP`)."""
    return and_(labels_differ(), ~is_settled())


def items_to_settle(
    session: Session, *, dataset: str | None = None, limit: int | None = 50,
    exclude: Collection[int] = (),
) -> list[int]:
    """Ids of the disagreements to settle, oldest first, without `exclude` (skipped)."""
    query = select(Item.id).where(to_settle()).order_by(Item.id)
    if dataset is not None:
        query = query.join(Dataset).where(Dataset.name == dataset)
    if exclude:
        query = query.where(Item.id.not_in(list(exclude)))
    return list(session.scalars(query.limit(limit)))


def settle_view(session: Session, item_id: int) -> SettleView:
    """What the settling screen shows for `item_id` (InputError if there is none)."""
    view = item_view(session, item_id)
    return SettleView(
        item=view,
        label=item_labels(session, [item_id])[item_id],
        adjudication=current_adjudication(session, item_id),
        history=tuple(adjudication_history(session, item_id)),
    )


def settle_views(
    engine: Engine, *, dataset: str | None = None, limit: int | None = 50
) -> list[SettleView]:
    """The disagreements to settle, oldest first, each as the settling screen shows it."""
    with Session(engine) as session:
        return [settle_view(session, i)
                for i in items_to_settle(session, dataset=dataset, limit=limit)]


def settle_view_of(engine: Engine, item_id: int) -> SettleView:
    """`settle_view` in a session of its own (InputError if there is no such item)."""
    with Session(engine) as session:
        return settle_view(session, item_id)


def next_to_settle(
    engine: Engine, *, dataset: str | None = None, exclude: Collection[int] = ()
) -> NextToSettle:
    """The first disagreement to settle (not skipped: `exclude`) and how many are
    pending: what every front that settles disagreements calls."""
    with Session(engine) as session:
        pending = items_to_settle(session, dataset=dataset, limit=None, exclude=exclude)
        if not pending:
            return NextToSettle(None, 0)
        return NextToSettle(settle_view(session, pending[0]), len(pending))

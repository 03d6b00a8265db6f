"""Annotators and their labels. Labels are append-only.

A new label by an annotator on an item supersedes that annotator's current
label there (`supersedes_id`); nothing is updated or deleted, so every earlier
label, and every other annotator's, stays readable in the history. Because
`supersedes_id` is unique, two concurrent corrections of the same label cannot
both win: the loser re-reads the current label and supersedes the winner's.

`item_labels` decides items' labels in bulk by the one rule of `core.labels`
(an adjudicated label, else the humans' majority, else the dataset's); every
consumer of a label calls it.
"Labelled" for annotation (the queues, browsing, the dataset counts) means a
current label by one of this studio's annotators (`has_human_label`): an
imported annotator's label is one of the dataset's votes, not a human one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, exists, select
from sqlalchemy.orm import Session, aliased

from core.errors import InputError
from core.inputs import clean_text
from core.labels import (
    Accepted,
    ItemLabel,
    LabelValue,
    LabelVotes,
    NoLabel,
    Settled,
    dataset_label,
    item_label,
)
from core.store.adjudication import settled_labels
from core.store.db import append_to_chain
from core.store.schema import Annotation, Annotator, GroundTruth, Item, JudgementRow

IMPORTED = "imported"  # the role of annotators whose labels came with a dataset file
ROLES = ("admin", "reviewer", "annotator", "viewer", IMPORTED)
_IDS_PER_QUERY = 1000  # item ids bound in one IN (...) of the label loader


@dataclass(frozen=True)
class Label:
    id: int
    item_id: int
    annotator: str
    best: int | None  # None: a tie
    corrected_scores: tuple[int, ...] | None
    corrected_principles: str | None
    corrected_critique: str | None
    note: str | None
    judgement_id: int | None
    supersedes_id: int | None
    created_at: datetime
    retracted: bool = False


NAME_CHARS = 200  # the annotator.name column


def annotator_id(session: Session, name: str, role: str = "annotator") -> int:
    """The id of annotator `name`, created with `role` if new."""
    if not name.strip():
        raise InputError("an annotator needs a name")
    if len(name) > NAME_CHARS:
        raise InputError(f"an annotator's name has at most {NAME_CHARS} characters")
    if role not in ROLES:
        raise InputError(f"unknown role '{role}'; one of {', '.join(ROLES)}")
    found = session.scalar(select(Annotator.id).where(Annotator.name == name))
    if found is not None:
        return found
    row = Annotator(name=name, role=role)
    session.add(row)
    session.flush()
    return row.id


def add_label(
    engine: Engine,
    item_id: int,
    annotator: str,
    best: int | None,
    *,
    corrected_scores: Sequence[int] | None = None,
    corrected_principles: str | None = None,
    corrected_critique: str | None = None,
    note: str | None = None,
    judgement_id: int | None = None,
) -> Label:
    """Record `annotator`'s label on item `item_id` (`best` None means a tie)."""
    for where, text in (("the corrected principles", corrected_principles),
                        ("the corrected critique", corrected_critique), ("the note", note)):
        if text:
            clean_text(text, where)

    def write(session: Session) -> Label:
        item = session.get(Item, item_id)
        if item is None:
            raise InputError(f"there is no item with id {item_id}")
        _check(item, best, corrected_scores)
        _check_judgement(session, judgement_id, item_id)
        who = annotator_id(session, annotator)
        row = Annotation(
            item_id=item_id,
            annotator_id=who,
            best=best,
            corrected_scores=list(corrected_scores) if corrected_scores else None,
            corrected_principles=corrected_principles or None,
            corrected_critique=corrected_critique or None,
            note=note or None,
            judgement_id=judgement_id,
            supersedes_id=_current_id(session, item_id, who),
        )
        session.add(row)
        session.flush()
        return _label(row, annotator)

    return append_to_chain(engine, write)


def response_count(engine: Engine, item_id: int) -> int:
    """How many responses item `item_id` has (what a label's corrected scores must
    number); InputError if there is no such item."""
    with Session(engine) as session:
        n = session.scalar(select(Item.n_responses).where(Item.id == item_id))
    if n is None:
        raise InputError(f"there is no item with id {item_id}")
    return n


def _check(item: Item, best: int | None, scores: Sequence[int] | None) -> None:
    n = item.n_responses
    if best is not None and not 0 <= best < n:
        raise InputError(f"best must name one of the {n} responses (0..{n - 1}) or a tie, got {best}")
    if scores is not None and (len(scores) != n or not all(isinstance(s, int) for s in scores)):
        raise InputError(f"corrected scores need one integer per response ({n}), got {scores}")


def _check_judgement(session: Session, judgement_id: int | None, item_id: int) -> None:
    """A label cites a judgement that exists and is of its item (or of no item)."""
    if judgement_id is None:
        return
    judged = session.get(JudgementRow, judgement_id)
    if judged is None:
        raise InputError(f"there is no judgement with id {judgement_id}")
    if judged.item_id is not None and judged.item_id != item_id:
        raise InputError(f"judgement {judgement_id} is of item {judged.item_id}, not {item_id}")


def chain_head(row: type[Annotation] = Annotation) -> ColumnElement[bool]:
    """SQL: `row` is the newest of its annotator's chain on its item (not superseded)."""
    newer = aliased(Annotation)
    return ~exists().where(newer.supersedes_id == row.id)


def is_current(row: type[Annotation] = Annotation) -> ColumnElement[bool]:
    """SQL: `row` is an annotator's current label (newest, and not an undo)."""
    return and_(chain_head(row), row.retracted.is_(False))


def by_studio_annotator(row: type[Annotation] = Annotation) -> ColumnElement[bool]:
    """SQL: `row` was given by one of this studio's annotators (role not "imported"):
    a "human" vote of `core.labels`. An imported annotator's label is the dataset's."""
    return row.annotator_id.in_(select(Annotator.id).where(Annotator.role != IMPORTED))


def has_human_label() -> ColumnElement[bool]:
    """SQL on `Item`: the item has a current label by one of this studio's annotators
    (what "labelled" means for annotation: imported annotators' labels don't count)."""
    return exists().where(Annotation.item_id == Item.id, is_current(), by_studio_annotator())


def _current_id(session: Session, item_id: int, who: int) -> int | None:
    return session.scalar(
        select(Annotation.id).where(
            Annotation.item_id == item_id, Annotation.annotator_id == who, chain_head()
        )
    )


def undo_label(engine: Engine, label_id: int, *, annotator: str | None = None) -> Label | None:
    """Undo label `label_id`, append-only: a new row restores the label it had
    replaced, or withdraws it (`retracted`) if it replaced none. Only a label
    that is still its annotator's current one can be undone (InputError
    otherwise); with `annotator`, only that annotator's own label. Returns the
    restored label, or None when it was withdrawn."""
    with Session(engine) as session, session.begin():
        row = session.get(Annotation, label_id)
        if row is None or row.retracted:
            raise InputError(f"there is no label with id {label_id} to undo")
        if _current_id(session, row.item_id, row.annotator_id) != row.id:
            raise InputError(f"label {label_id} has been changed since; nothing undone")
        name = session.get_one(Annotator, row.annotator_id).name
        if annotator is not None and name != annotator:
            raise InputError(f"label {label_id} is not {annotator}'s to undo")
        before = session.get(Annotation, row.supersedes_id) if row.supersedes_id else None
        if before is None or before.retracted:
            session.add(Annotation(item_id=row.item_id, annotator_id=row.annotator_id,
                                   supersedes_id=row.id, retracted=True))
            return None
        restored = Annotation(
            item_id=row.item_id,
            annotator_id=row.annotator_id,
            best=before.best,
            corrected_scores=before.corrected_scores,
            corrected_principles=before.corrected_principles,
            corrected_critique=before.corrected_critique,
            note=before.note,
            judgement_id=before.judgement_id,
            supersedes_id=row.id,
        )
        session.add(restored)
        session.flush()
        return _label(restored, name)


def current_labels(session: Session, item_id: int) -> list[Label]:
    """Each annotator's current label on the item (superseded and undone ones left out)."""
    rows = session.execute(
        select(Annotation, Annotator.name)
        .join(Annotator)
        .where(Annotation.item_id == item_id, is_current())
        .order_by(Annotation.id)
    )
    return [_label(row, name) for row, name in rows]


def label_history(session: Session, item_id: int) -> list[Label]:
    """Every label ever given on the item, oldest first."""
    rows = session.execute(
        select(Annotation, Annotator.name)
        .join(Annotator)
        .where(Annotation.item_id == item_id)
        .order_by(Annotation.id)
    )
    return [_label(row, name) for row, name in rows]


def _label(row: Annotation, annotator: str) -> Label:
    return Label(
        id=row.id,
        item_id=row.item_id,
        annotator=annotator,
        best=row.best,
        corrected_scores=tuple(row.corrected_scores) if row.corrected_scores else None,
        corrected_principles=row.corrected_principles,
        corrected_critique=row.corrected_critique,
        note=row.note,
        judgement_id=row.judgement_id,
        supersedes_id=row.supersedes_id,
        created_at=row.created_at,
        retracted=row.retracted,
    )


def label_votes(session: Session, item_ids: Iterable[int]) -> dict[int, LabelVotes]:
    """item id -> what the label rule reads about it (`core.labels.LabelVotes`), for
    every id given: three queries per thousand items, whatever their labels."""
    ids = list(dict.fromkeys(item_ids))
    human: dict[int, list[int | None]] = defaultdict(list)
    dataset: dict[int, list[LabelValue]] = defaultdict(list)
    settled: dict[int, Settled] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        settled |= settled_labels(session, chunk)
        for item_id, best, role in session.execute(
            select(Annotation.item_id, Annotation.best, Annotator.role)
            .join(Annotator, Annotator.id == Annotation.annotator_id)
            .where(Annotation.item_id.in_(chunk), is_current())
        ):
            (dataset if role == IMPORTED else human)[item_id].append(best)
        for item_id, best, accepted in session.execute(
            select(GroundTruth.item_id, GroundTruth.best, GroundTruth.accepted)
            .where(GroundTruth.item_id.in_(chunk))
        ):
            dataset[item_id].append(Accepted(tuple(accepted)) if accepted else best)
    return {i: LabelVotes(adjudicated=settled.get(i), human=tuple(human[i]),
                          dataset=tuple(dataset[i])) for i in ids}


def item_labels(session: Session, item_ids: Iterable[int]) -> dict[int, ItemLabel | NoLabel]:
    """item id -> its label by the rule of `core.labels` (the adjudicated label, else the
    humans' majority, else the dataset's)."""
    return {i: item_label(votes) for i, votes in label_votes(session, item_ids).items()}


def dataset_labels(session: Session, item_ids: Iterable[int]) -> dict[int, ItemLabel | NoLabel]:
    """item id -> what its dataset says (`core.labels.dataset_label`), humans aside."""
    return {i: dataset_label(votes) for i, votes in label_votes(session, item_ids).items()}

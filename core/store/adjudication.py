"""Adjudicated labels: an admin's or reviewer's decision that settles an item.

Where this studio's annotators disagree, someone whose role may adjudicate
(`Action.ADJUDICATE`: an admin or a reviewer) records the item's label. It comes
first in the one label rule (`core.labels.item_label`), which every consumer
reads through `core.store.labels.item_labels`, so evaluation, RFT, the meta RM,
RL, the queues and the statistics all take it without a change of their own.
No annotator's label is touched: their labels, and the agreement between them,
stay as they were.

Append-only, one chain per item whoever writes it: a new decision supersedes
the item's current one; `undo_adjudication` writes a row that restores the
decision before, or withdraws it (`retracted`) when there was none.
`adjudication_history` shows who settled what, and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, exists, select
from sqlalchemy.orm import Session, aliased

from core.errors import InputError
from core.inputs import clean_text
from core.labels import Settled
from core.store.accounts import Action, permitted_account_id
from core.store.db import append_to_chain, chain_head
from core.store.schema import Adjudication, Annotator, Item


@dataclass(frozen=True)
class AdjudicatedLabel:
    """One row of an item's adjudication chain."""

    id: int
    item_id: int
    adjudicator: str  # who wrote this row (the decision, or its undo)
    best: int | None  # None: settled as a tie (or, when `retracted`, nothing)
    note: str | None
    supersedes_id: int | None  # the decision this one replaced or undid
    created_at: datetime
    retracted: bool = False  # an undo that left the item without a decision


def is_current(row: type[Adjudication] = Adjudication) -> ColumnElement[bool]:
    """SQL: `row` is its item's current decision (newest of the chain, not an undo)."""
    newer = aliased(Adjudication)
    return and_(~exists().where(newer.supersedes_id == row.id), row.retracted.is_(False))


def is_settled() -> ColumnElement[bool]:
    """SQL on `Item`: the item has a current adjudicated label."""
    return exists().where(Adjudication.item_id == Item.id, is_current())


def settled_labels(session: Session, item_ids: Sequence[int]) -> dict[int, Settled]:
    """item id -> its current adjudicated label, for those of `item_ids` that have one
    (one query; the caller bounds how many ids it binds)."""
    rows = session.execute(
        select(Adjudication.item_id, Adjudication.best)
        .where(Adjudication.item_id.in_(item_ids), is_current())
    )
    return {item_id: Settled(best) for item_id, best in rows}


def adjudicate(
    engine: Engine, item_id: int, adjudicator: str, best: int | None, *, note: str | None = None
) -> AdjudicatedLabel:
    """Settle item `item_id` as `best` (a response's index; None: a tie), replacing its
    current decision if it has one. NotAllowedError unless `adjudicator` is an
    account whose role may adjudicate; InputError for an unknown item or response."""
    if note:
        clean_text(note, "the note")

    def write(session: Session) -> AdjudicatedLabel:
        who = permitted_account_id(
            session, adjudicator, Action.ADJUDICATE, purpose="adjudicate with",
            who_may="an admin or a reviewer")
        item = session.get(Item, item_id)
        if item is None:
            raise InputError(f"there is no item with id {item_id}")
        n = item.n_responses
        if best is not None and not 0 <= best < n:
            raise InputError(
                f"best must name one of the {n} responses (0..{n - 1}) or a tie, "
                f"got {best}")
        row = Adjudication(item_id=item_id, adjudicator_id=who, best=best,
                           note=note or None,
                           supersedes_id=chain_head(session, Adjudication, item_id))
        session.add(row)
        session.flush()
        return _adjudicated(row, adjudicator)

    return append_to_chain(engine, write)


def undo_adjudication(
    engine: Engine, adjudication_id: int, adjudicator: str
) -> AdjudicatedLabel | None:
    """Undo decision `adjudication_id`, append-only: a new row, written by
    `adjudicator` (who must be allowed to adjudicate), restores the decision it
    replaced, or withdraws it if it replaced none. Only the item's current
    decision can be undone (InputError otherwise). Returns the restored decision,
    or None when the item is left without one."""
    with Session(engine) as session, session.begin():
        who = permitted_account_id(
            session, adjudicator, Action.ADJUDICATE, purpose="adjudicate with",
            who_may="an admin or a reviewer")
        row = session.get(Adjudication, adjudication_id)
        if row is None or row.retracted:
            raise InputError(f"there is no adjudicated label with id {adjudication_id} to undo")
        if chain_head(session, Adjudication, row.item_id) != row.id:
            raise InputError(f"item {row.item_id} has been settled again since "
                             f"adjudicated label {adjudication_id}; nothing undone")
        before = session.get(Adjudication, row.supersedes_id) if row.supersedes_id else None
        if before is None or before.retracted:
            undo = Adjudication(item_id=row.item_id, adjudicator_id=who, supersedes_id=row.id,
                                retracted=True)
            session.add(undo)
            return None
        restored = Adjudication(item_id=row.item_id, adjudicator_id=who, best=before.best,
                                note=before.note, supersedes_id=row.id)
        session.add(restored)
        session.flush()
        return _adjudicated(restored, adjudicator)


def current_adjudication(session: Session, item_id: int) -> AdjudicatedLabel | None:
    """The item's current adjudicated label; None if it has none."""
    found = session.execute(
        select(Adjudication, Annotator.name).join(Annotator)
        .where(Adjudication.item_id == item_id, is_current())
    ).first()
    return None if found is None else _adjudicated(*found)


def adjudication_history(session: Session, item_id: int) -> list[AdjudicatedLabel]:
    """Every decision and undo on the item, oldest first: who settled what, and when."""
    rows = session.execute(
        select(Adjudication, Annotator.name).join(Annotator)
        .where(Adjudication.item_id == item_id).order_by(Adjudication.id)
    )
    return [_adjudicated(row, name) for row, name in rows]






def _adjudicated(row: Adjudication, adjudicator: str) -> AdjudicatedLabel:
    return AdjudicatedLabel(
        id=row.id, item_id=row.item_id, adjudicator=adjudicator, best=row.best, note=row.note,
        supersedes_id=row.supersedes_id, created_at=row.created_at, retracted=row.retracted,
    )

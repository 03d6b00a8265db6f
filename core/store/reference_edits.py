"""Annotators' edits of items' reference answers, with who made them and when.

An account whose role may edit references (`Action.EDIT_REFERENCE`: an annotator,
a reviewer or an admin) sets an item's reference answer (`set_reference`: adds
one, or replaces the one there, imported or typed) or removes it
(`remove_reference`, an explicit action: an empty edit is refused, never taken as
a removal). `item.reference` holds the answer now, the one every judging consumer
reads (`Item.judge_input`); each edit is also a `reference_edit` row with the
editor, the time, the answer it set and the one before, so nothing is lost:
`reference_history` lists them. Append-only, one chain per item (as labels and
adjudications are): concurrent edits of one item are applied one after the other,
each recording the answer it replaced.

A judgement records the reference it was shown (`JudgementRow.input`), so after an
edit the item's earlier judgements with references shown no longer count as done
for batch judging or evaluation (`core.store.batch.same_settings`): they judge it
again with the new answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.inputs import clean_text
from core.references import MAX_REFERENCE_CHARS
from core.store.accounts import Action, permitted_account_id
from core.store.db import append_to_chain, chain_head
from core.store.schema import Annotator, Item, ReferenceEdit


@dataclass(frozen=True)
class ReferenceChange:
    """One edit of an item's reference answer."""

    id: int
    item_id: int
    editor: str  # the account that made it
    reference: str | None  # the answer it set; None: it removed the answer
    previous: str | None  # the answer before; None: the item had none
    supersedes_id: int | None  # the item's edit before this one
    created_at: datetime

    @property
    def action(self) -> str:
        """'added', 'edited' or 'removed'."""
        if self.reference is None:
            return "removed"
        return "added" if self.previous is None else "edited"


def set_reference(engine: Engine, item_id: int, editor: str, reference: str) -> ReferenceChange:
    """Make `reference` item `item_id`'s reference answer (kept as written), as
    account `editor`; the edit is recorded. NotAllowedError unless `editor` is an
    account whose role may edit references; InputError for an unknown item, an empty
    answer (to remove one, `remove_reference`), one over MAX_REFERENCE_CHARS, text
    no database stores, or the answer the item has already. Nothing is written then."""
    if not reference.strip():
        raise InputError("the reference answer is empty: write one; to take the item's "
                         "reference answer away, remove it (an empty one removes nothing)")
    if len(reference) > MAX_REFERENCE_CHARS:
        raise InputError(f"a reference answer has at most {MAX_REFERENCE_CHARS:,} characters; "
                         f"this one has {len(reference):,}")
    clean_text(reference, "the reference answer")
    return _edit(engine, item_id, editor, reference)


def remove_reference(engine: Engine, item_id: int, editor: str) -> ReferenceChange:
    """Remove item `item_id`'s reference answer, as account `editor`; the edit, with
    the answer removed, is recorded. InputError when the item has none."""
    return _edit(engine, item_id, editor, None)


def _edit(engine: Engine, item_id: int, editor: str, reference: str | None) -> ReferenceChange:
    def write(session: Session) -> ReferenceChange:
        who = permitted_account_id(
            session, editor, Action.EDIT_REFERENCE, purpose="edit references with",
            who_may="an annotator, a reviewer or an admin")
        item = session.get(Item, item_id)
        if item is None:
            raise InputError(f"there is no item with id {item_id}")
        if reference is None and item.reference is None:
            raise InputError(f"item {item_id} has no reference answer to remove")
        if reference == item.reference:
            raise InputError(f"item {item_id} has this reference answer already; nothing saved")
        row = ReferenceEdit(item_id=item_id, editor_id=who, reference=reference,
                            previous=item.reference,
                            supersedes_id=chain_head(session, ReferenceEdit, item_id))
        session.add(row)
        item.reference = reference
        session.flush()
        return _change(row, editor)

    return append_to_chain(engine, write)


def reference_history(session: Session, item_id: int) -> list[ReferenceChange]:
    """Every edit of the item's reference answer, oldest first: who set or removed
    what, and when (empty for an answer as imported, or none)."""
    rows = session.execute(
        select(ReferenceEdit, Annotator.name).join(Annotator)
        .where(ReferenceEdit.item_id == item_id).order_by(ReferenceEdit.id))
    return [_change(row, name) for row, name in rows]


def item_reference(engine: Engine, item_id: int) -> tuple[str | None, list[ReferenceChange]]:
    """Item `item_id`'s reference answer now (None: none) and its edit history;
    InputError for an unknown item."""
    with Session(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            raise InputError(f"there is no item with id {item_id}")
        return item.reference, reference_history(session, item_id)






def _change(row: ReferenceEdit, editor: str) -> ReferenceChange:
    return ReferenceChange(id=row.id, item_id=row.item_id, editor=editor,
                           reference=row.reference, previous=row.previous,
                           supersedes_id=row.supersedes_id, created_at=row.created_at)

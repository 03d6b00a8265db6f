"""An account's walk through an annotation queue, kept in the store.

The Annotate page (and any other front that walks a queue) shows the queue's
head for the account (`next_in_queue`); the account labels it, skips it or
takes back its last label. A `Walk` is that: the queue and its dataset filter,
whether it is blind, the item open now, the items skipped and the labels
written in it, newest last (what Undo takes back).

Every step is kept as the account's one walk (`annotation_walk`), so a reload,
another browser or a restart resumes it (`resume_walk`); Start begins a new
one. The item open is not kept: it is the queue's head after the walk's skips
and the account's own labels, so resuming finds it again. An account that may
not label (a viewer, the demo) can walk a queue to look, but nothing of its
walk is written.

Who labels blind is decided here (`blind_for`): an annotator always labels
blind (no other labels, no dataset label, no judge before they choose, so the
labels stay independent); an admin, or someone who only looks, chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import InputError
from core.inputs import parse_score_list
from core.store.accounts import Account, Action, require
from core.store.labels import add_label, response_count, undo_label
from core.store.queues import NextItem, Queue, next_in_queue
from core.store.schema import AnnotationWalk, Annotator

ALWAYS_BLIND = frozenset({"annotator"})  # roles that label without seeing others' answers


def blind_for(account: Account, requested: bool) -> bool:
    """Whether `account`'s walk is blind when it asks for `requested`: always for
    an annotator, as asked for anyone else."""
    return requested or account.role in ALWAYS_BLIND


@dataclass(frozen=True)
class Walk:
    """One account's walk through a queue."""

    annotator: str
    queue: Queue = Queue.UNLABELLED
    dataset: str | None = None  # None: every dataset
    blind: bool = True  # hide the other labels, the dataset's label and the judge
    item_id: int | None = None  # the item open now (the queue's head when last shown)
    skipped: tuple[int, ...] = ()  # items left for later in this walk
    saved: tuple[int, ...] = ()  # ids of the labels written in this walk, newest last


@dataclass(frozen=True)
class Corrections:
    """What an annotator may add to a label, as typed (all optional)."""

    scores: str = ""  # one integer per response, e.g. "7, 5"
    principles: str = ""
    critique: str = ""
    note: str = ""


def start_walk(account: Account, queue: str, *, dataset: str | None = None,
               blind: bool = True) -> Walk:
    """A new walk for `account` through `queue` (InputError for an unknown queue);
    blind as `blind_for` decides. `walk_on` opens its first item and keeps it."""
    try:
        known = Queue(queue)
    except ValueError:
        raise InputError(
            f"unknown queue '{queue}'; one of: {', '.join(q.value for q in Queue)}"
        ) from None
    return Walk(annotator=account.name, queue=known, dataset=(dataset or "").strip() or None,
                blind=blind_for(account, blind))


def walk_on(engine: Engine, account: Account, walk: Walk) -> tuple[Walk, NextItem]:
    """`walk` at its queue's head (the first item neither labelled by the account nor
    skipped) and that head; the walk is kept as the account's when it may label."""
    walk = replace(walk, blind=blind_for(account, walk.blind))
    head = next_in_queue(engine, walk.queue, annotator=walk.annotator, dataset=walk.dataset,
                         exclude=walk.skipped, blind=walk.blind)
    walk = replace(walk, item_id=head.view.item_id if head.view is not None else None)
    if account.may(Action.LABEL):
        _keep(engine, account, walk)
    return walk, head


def label_open_item(
    engine: Engine, account: Account | None, walk: Walk, best: int | None,
    corrections: Corrections | None = None, *, judgement_id: int | None = None,
) -> Walk:
    """Store the account's label on the walk's open item (`best`: a response's index,
    None for a tie); the walk with it on its undo stack. NotAllowedError for a
    role that may not label, InputError for no open item or a bad label."""
    account = require(account, Action.LABEL)
    if walk.item_id is None:
        raise InputError("no item is open: choose a queue and press Start")
    corrections = corrections or Corrections()
    n = response_count(engine, walk.item_id)
    label = add_label(
        engine, walk.item_id, account.name, best,
        corrected_scores=parse_score_list(corrections.scores, n),
        corrected_principles=corrections.principles, corrected_critique=corrections.critique,
        note=corrections.note, judgement_id=judgement_id,
    )
    return replace(walk, saved=(*walk.saved, label.id))


def skip_open_item(walk: Walk) -> Walk:
    """The walk with its open item left for later (unchanged when none is open)."""
    if walk.item_id is None:
        return walk
    return replace(walk, skipped=(*walk.skipped, walk.item_id), item_id=None)


def undo_last_label(engine: Engine, account: Account | None, walk: Walk) -> Walk:
    """Take back the newest label written in this walk (append-only, `undo_label`).
    NotAllowedError for a role that may not label; InputError when there is none,
    or when it is not the account's own."""
    account = require(account, Action.LABEL)
    if not walk.saved:
        raise InputError("nothing to undo: no label saved in this walk")
    undo_label(engine, walk.saved[-1], annotator=account.name)
    return replace(walk, saved=walk.saved[:-1])


def resume_walk(engine: Engine, account: Account) -> Walk | None:
    """The walk `account` is on, as last kept; None if it has none (or its queue is
    no longer known)."""
    with Session(engine) as session:
        row = session.scalar(
            select(AnnotationWalk).join(Annotator).where(Annotator.name == account.name)
        )
        if row is None or row.queue not in {q.value for q in Queue}:
            return None
        return Walk(annotator=account.name, queue=Queue(row.queue), dataset=row.dataset,
                    blind=row.blind, skipped=tuple(int(i) for i in row.skipped),
                    saved=tuple(int(i) for i in row.saved))


def _keep(engine: Engine, account: Account, walk: Walk) -> None:
    """Write `walk` as `account`'s walk (replacing the one before)."""
    for attempt in range(2):  # two browsers writing an account's first walk at once
        try:
            with Session(engine) as session, session.begin():
                who = session.scalar(select(Annotator.id).where(Annotator.name == account.name))
                if who is None:
                    return  # not a stored account (nothing to resume it for)
                row = session.get(AnnotationWalk, who) or AnnotationWalk(annotator_id=who)
                row.queue, row.dataset, row.blind = walk.queue.value, walk.dataset, walk.blind
                row.skipped, row.saved = list(walk.skipped), list(walk.saved)
                row.updated_at = datetime.now(UTC)
                session.add(row)
        except IntegrityError:
            if attempt:
                raise
        else:
            return

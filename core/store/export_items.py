"""What a preference export reads about each item of a dataset: the item, its
label by the one rule (`core.store.labels.item_labels`) and the judge's current
verdict (its latest judgement, `latest_judgement_ids`), a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from core.errors import InputError
from core.labels import ItemLabel, NoLabel
from core.store.importing import dataset_id
from core.store.judgements import latest_judgement_ids
from core.store.labels import item_labels
from core.store.schema import Item, JudgementRow
from core.types import Turn

PAGE = 500


@dataclass(frozen=True)
class SampleVerdict:
    """One sample of the judge: its scores in original order (None: unparseable)."""

    scores: tuple[int, ...] | None
    flipped: bool  # shown in an order other than the original
    critique: str


@dataclass(frozen=True)
class JudgeVerdict:
    """The judge's current verdict on an item (its latest judgement's vote)."""

    model: str
    winner: int | None  # None: no valid sample
    tie: bool  # the top total is shared
    totals: tuple[int, ...]
    samples: tuple[SampleVerdict, ...]

    @property
    def best(self) -> int | None:
        """The response the judge prefers strictly; None for a tie or no verdict."""
        return None if self.tie else self.winner


@dataclass(frozen=True)
class ExportItem:
    """An item with its label and the judge's verdict, as every export format reads it."""

    item_id: int
    external_id: str | None
    category: str | None
    query: str
    context: tuple[Turn, ...]
    responses: tuple[str, ...]
    reference: str | None
    label: ItemLabel | NoLabel
    verdict: JudgeVerdict | None  # None: never judged


def export_items(engine: Engine, dataset: str) -> Iterator[ExportItem]:
    """The items of `dataset` in id order, PAGE at a time; InputError if there is none."""
    with Session(engine) as session:
        ds_id = dataset_id(session, dataset)
        if ds_id is None:
            raise InputError(f"there is no dataset '{dataset}'")
        last = 0
        while True:
            page = list(session.scalars(
                select(Item).where(Item.dataset_id == ds_id, Item.id > last)
                .order_by(Item.id).limit(PAGE)
            ))
            if not page:
                return
            ids = [item.id for item in page]
            labels = item_labels(session, ids)
            verdicts = _verdicts(session, ids)
            for item in page:
                yield ExportItem(
                    item_id=item.id,
                    external_id=item.external_id,
                    category=item.category,
                    query=item.query,
                    context=tuple(Turn(**turn) for turn in item.context),
                    responses=tuple(item.responses),
                    reference=item.reference,
                    label=labels[item.id],
                    verdict=verdicts.get(item.id),
                )
            last = ids[-1]
            session.expunge_all()


def _verdicts(session: Session, ids: list[int]) -> dict[int, JudgeVerdict]:
    rows = session.scalars(
        select(JudgementRow)
        .where(JudgementRow.id.in_(latest_judgement_ids()), JudgementRow.item_id.in_(ids))
        .options(selectinload(JudgementRow.samples), selectinload(JudgementRow.judge_model))
    )
    verdicts = {}
    for row in rows:
        assert row.item_id is not None
        winner = row.winner if row.valid_samples else None
        verdicts[row.item_id] = JudgeVerdict(
            model=row.judge_model.name,
            winner=winner,
            tie=bool(row.tie) and winner is not None,
            totals=tuple(row.totals),
            samples=tuple(
                SampleVerdict(
                    scores=tuple(s.scores) if s.scores is not None else None,
                    flipped=list(s.shown_order) != sorted(s.shown_order),
                    critique=s.critique or "",
                )
                for s in row.samples
            ),
        )
    return verdicts

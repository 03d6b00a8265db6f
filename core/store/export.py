"""Exporting items, labels and judgements: JSONL files and pandas DataFrames.

Both read the store in pages, so an export does not hold a whole large
dataset in memory; JSONL files are written to a temporary name and renamed
when complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from core.errors import InputError
from core.files import atomic_write
from core.store.importing import dataset_id
from core.store.labels import current_labels
from core.store.schema import Item, JudgementRow

if TYPE_CHECKING:
    import pandas as pd

PAGE = 500
KINDS = ("items", "labels", "judgements")


def _items(session: Session, dataset: str | None) -> Iterator[Item]:
    query = select(Item).order_by(Item.id).options(selectinload(Item.truths))
    if dataset is not None:
        ds_id = dataset_id(session, dataset)
        if ds_id is None:
            raise InputError(f"there is no dataset '{dataset}'")
        query = query.where(Item.dataset_id == ds_id)
    yield from session.scalars(query.execution_options(yield_per=PAGE))


def item_records(engine: Engine, dataset: str | None = None) -> Iterator[dict[str, Any]]:
    """One record per item, with its ground truth and current human labels."""
    with Session(engine) as session:
        for item in _items(session, dataset):
            yield {
                "item_id": item.id,
                "dataset": item.dataset.name,
                "external_id": item.external_id,
                "category": item.category,
                "query": item.query,
                "context": item.context,
                "responses": item.responses,
                "reference": item.reference,
                "ratings": item.ratings,
                # each ground truth: the best response, null (a tie), or a best-of-n item's
                # correct responses as a list
                "ground_truth": [t.best if t.accepted is None else t.accepted
                                 for t in item.truths],
                "labels": {lab.annotator: lab.best for lab in current_labels(session, item.id)},
            }


def label_records(engine: Engine, dataset: str | None = None) -> Iterator[dict[str, Any]]:
    """Every current label (one per annotator and item), with its corrections."""
    with Session(engine) as session:
        for item in _items(session, dataset):
            for label in current_labels(session, item.id):
                yield {
                    "item_id": item.id,
                    "annotator": label.annotator,
                    "best": label.best,
                    "tie": label.best is None,
                    "corrected_scores": label.corrected_scores,
                    "corrected_principles": label.corrected_principles,
                    "corrected_critique": label.corrected_critique,
                    "note": label.note,
                    "judgement_id": label.judgement_id,
                    "created_at": label.created_at.isoformat(),
                }


def judgement_records(engine: Engine, dataset: str | None = None) -> Iterator[dict[str, Any]]:
    """One record per judgement, with its samples' scores and parse outcomes."""
    with Session(engine) as session:
        query = (
            select(JudgementRow)
            .order_by(JudgementRow.id)
            .options(selectinload(JudgementRow.samples), selectinload(JudgementRow.judge_model))
        )
        if dataset is not None:
            ds_id = dataset_id(session, dataset)
            if ds_id is None:
                raise InputError(f"there is no dataset '{dataset}'")
            item_ids = select(Item.id).where(Item.dataset_id == ds_id)
            query = query.where(JudgementRow.item_id.in_(item_ids))
        for row in session.scalars(query.execution_options(yield_per=PAGE)):
            yield {
                "judgement_id": row.id,
                "item_id": row.item_id,
                "model": row.judge_model.name,
                "model_revision": row.judge_model.revision,
                "template": row.template_name,
                "k": row.k,
                "temperature": row.temperature,
                "seed": row.seed,
                "totals": row.totals,
                "winner": row.winner,
                "tie": row.tie,
                "margin": row.margin,
                "split": row.split,
                "valid_samples": row.valid_samples,
                "invalid_samples": row.invalid_samples,
                "samples": [
                    {
                        "shown_order": s.shown_order,
                        "scores": s.scores,
                        "parse_status": s.parse_status,
                        "parse_reason": s.parse_reason,
                        "rescue_used": s.rescue_used,
                        "principles": s.principles,
                        "critique": s.critique,
                    }
                    for s in row.samples
                ],
                "created_at": row.created_at.isoformat(),
            }


_RECORDS = {"items": item_records, "labels": label_records, "judgements": judgement_records}


def export_jsonl(engine: Engine, kind: str, path: Path, dataset: str | None = None) -> int:
    """Write `kind` records to `path` as JSONL; returns how many were written."""
    if kind not in _RECORDS:
        raise InputError(f"unknown export '{kind}'; one of {', '.join(KINDS)}")
    count = 0
    with atomic_write(path) as handle:
        for record in _RECORDS[kind](engine, dataset):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def export_frame(engine: Engine, kind: str, dataset: str | None = None) -> pd.DataFrame:
    """The same records as a pandas DataFrame."""
    import pandas as pd

    if kind not in _RECORDS:
        raise InputError(f"unknown export '{kind}'; one of {', '.join(KINDS)}")
    return pd.DataFrame.from_records(list(_RECORDS[kind](engine, dataset)))

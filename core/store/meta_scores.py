"""Meta reward models in the store: their registry (`meta_model`) and the meta
reward each stored sample got (`sample.meta_score`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.store.schema import JudgementRow, MetaModel, SampleRow


@dataclass(frozen=True)
class RegisteredMetaModel:
    id: int
    name: str
    source: str
    base_model: str
    content_hash: str
    positives: int
    negatives: int
    created_at: datetime


def register_meta_model(
    engine: Engine,
    *,
    name: str,
    source: str,
    base_model: str,
    content_hash: str,
    positives: int,
    negatives: int,
) -> int:
    """The id of the meta model row for (`source`, `content_hash`), created if new."""
    with Session(engine) as session, session.begin():
        found = session.scalar(
            select(MetaModel.id).where(
                MetaModel.source == source, MetaModel.content_hash == content_hash
            )
        )
        if found is not None:
            return found
        row = MetaModel(
            name=name,
            source=source,
            base_model=base_model,
            content_hash=content_hash,
            positives=positives,
            negatives=negatives,
        )
        session.add(row)
        session.flush()
        return row.id


def meta_models(engine: Engine) -> list[RegisteredMetaModel]:
    """Every registered meta model, newest first."""
    with Session(engine) as session:
        rows = session.scalars(select(MetaModel).order_by(MetaModel.id.desc()))
        return [
            RegisteredMetaModel(
                id=r.id, name=r.name, source=r.source, base_model=r.base_model,
                content_hash=r.content_hash, positives=r.positives, negatives=r.negatives,
                created_at=r.created_at,
            )
            for r in rows
        ]


def save_meta_scores(
    engine: Engine, judgement_id: int, scores: Sequence[float], *, meta_model_id: int
) -> None:
    """Store one meta reward per sample of judgement `judgement_id` (sample order),
    each marked as written by registered meta model `meta_model_id`."""
    with Session(engine) as session, session.begin():
        if session.get(JudgementRow, judgement_id) is None:
            raise InputError(f"there is no judgement with id {judgement_id}")
        if session.get(MetaModel, meta_model_id) is None:
            raise InputError(f"there is no registered meta model with id {meta_model_id}")
        rows = session.scalars(
            select(SampleRow).where(SampleRow.judgement_id == judgement_id).order_by(SampleRow.index)
        ).all()
        if len(rows) != len(scores):
            raise InputError(
                f"judgement {judgement_id} has {len(rows)} samples, got {len(scores)} meta scores"
            )
        for row, score in zip(rows, scores, strict=True):
            row.meta_score, row.meta_model_id = float(score), meta_model_id


def load_meta_scores(engine: Engine, judgement_id: int) -> tuple[float | None, ...]:
    """The stored meta reward of each sample (None where none was stored)."""
    with Session(engine) as session:
        return tuple(
            session.scalars(
                select(SampleRow.meta_score)
                .where(SampleRow.judgement_id == judgement_id)
                .order_by(SampleRow.index)
            )
        )


def meta_score_source(engine: Engine, judgement_id: int) -> str | None:
    """The directory of the meta model that wrote the meta scores of judgement
    `judgement_id`; None when it has none, or they were stored without one recorded."""
    with Session(engine) as session:
        sources = set(session.scalars(
            select(MetaModel.source).join(SampleRow, SampleRow.meta_model_id == MetaModel.id)
            .where(SampleRow.judgement_id == judgement_id)
        ))
        return sources.pop() if len(sources) == 1 else None

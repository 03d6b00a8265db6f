"""Judging a whole dataset into the store, resumably.

Each item's judgement is committed in its own transaction as soon as it is
done, so a run that is killed loses at most the item in flight. A rerun with
the same judge and sampling settings skips the items that already have such a
judgement, so nothing is judged twice and nothing finished is lost. A few items
at a time are judged together (one batched generation), then committed one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Engine, and_, select
from sqlalchemy.orm import Session

from core.engine import Judge
from core.errors import InputError
from core.store.importing import dataset_id
from core.store.judgements import judge_model_id, save_judgement
from core.store.schema import Item, JudgementRow
from core.types import JudgeInput, SamplingParams, Turn

DEFAULT_BATCH_ITEMS = 4  # Settings.batch_items; fronts pass their setting


@dataclass
class BatchReport:
    dataset: str
    total: int  # items in the dataset considered (after --limit)
    already_done: int
    judged: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (item id, reason)


def require_dataset(engine: Engine, dataset: str) -> int:
    """The id of `dataset`; InputError naming what to do when there is none."""
    with Session(engine) as session:
        ds_id = dataset_id(session, dataset)
    if ds_id is None:
        raise InputError(f"there is no dataset '{dataset}'; import one with `grm-studio import`")
    return ds_id


def same_settings(
    judge: Judge, params: SamplingParams, model_id: int, sizes: Iterable[int]
) -> ColumnElement[bool]:
    """SQL: a judgement made by this judge (model, template for these response
    counts, rescue, prefill) with exactly these sampling settings."""
    templates = {judge.template_for(n).sha256 for n in sizes}
    return and_(
        JudgementRow.judge_model_id == model_id,
        JudgementRow.template_sha256.in_(templates),
        JudgementRow.k == params.k,
        JudgementRow.temperature == params.temperature,
        JudgementRow.top_p == params.top_p,
        JudgementRow.max_new_tokens == params.max_new_tokens,
        JudgementRow.seed == params.seed,
        JudgementRow.rescue_enabled == judge.rescue,
        JudgementRow.reply_prefix == judge.prefill,
    )


def _done_item_ids(
    session: Session, judge: Judge, params: SamplingParams, model_id: int, ds_id: int
) -> set[int]:
    sizes = session.scalars(select(Item.n_responses).where(Item.dataset_id == ds_id).distinct())
    condition = same_settings(judge, params, model_id, list(sizes))
    return set(
        session.scalars(
            select(JudgementRow.item_id).where(JudgementRow.item_id.is_not(None), condition)
        )
    )


def judge_dataset(
    engine: Engine,
    judge: Judge,
    dataset: str,
    params: SamplingParams,
    *,
    limit: int | None = None,
    on_item: Callable[[BatchReport], None] | None = None,
    batch_items: int = DEFAULT_BATCH_ITEMS,
) -> BatchReport:
    """Judge the first `limit` items of `dataset` (all by default) that this judge
    has not judged with these settings yet; `on_item` is called after each.

    `batch_items` items are judged together (`Judge.judge_many`: their samples
    are decoded in one batch); each judgement is still committed on its own."""
    if batch_items < 1:
        raise InputError(f"batch_items must be at least 1, not {batch_items}")
    ds_id = require_dataset(engine, dataset)
    with Session(engine) as session, session.begin():
        model_id = judge_model_id(session, judge.backend.info)
        query = select(Item.id).where(Item.dataset_id == ds_id).order_by(Item.id)
        item_ids = list(session.scalars(query.limit(limit) if limit else query))
        done = _done_item_ids(session, judge, params, model_id, ds_id)
    todo = [i for i in item_ids if i not in done]
    report = BatchReport(dataset=dataset, total=len(item_ids), already_done=len(item_ids) - len(todo))
    for start in range(0, len(todo), batch_items):
        chunk = todo[start : start + batch_items]
        results = judge.judge_many(_judge_inputs(engine, chunk), params)
        for item_id, result in zip(chunk, results, strict=True):
            if isinstance(result, InputError):
                report.failed.append((item_id, str(result)))
            else:
                with Session(engine) as session, session.begin():
                    save_judgement(session, result, item_id=item_id)
                report.judged += 1
            if on_item:
                on_item(report)
    return report


def _judge_inputs(engine: Engine, item_ids: Sequence[int]) -> list[JudgeInput]:
    with Session(engine) as session:
        items = [session.get_one(Item, item_id) for item_id in item_ids]
        return [
            JudgeInput(
                query=item.query,
                responses=tuple(item.responses),
                context=tuple(Turn.model_validate(t) for t in item.context),
            )
            for item in items
        ]

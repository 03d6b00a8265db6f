"""The store side of judging a whole dataset: which items a run considers, which
of them already have a judgement by the same judge with the same settings, and
the inputs to judge the rest on.

Judging happens in the application layer (`core.service.judge_dataset`), which
commits each judgement in its own transaction (`store_judgement`) as soon as it
is done: a run that is killed loses at most the items in flight, and a rerun with
the same judge and sampling settings skips every item finished (`items_to_judge`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.store.importing import dataset_id
from core.store.judgements import judge_model_id
from core.store.schema import Item, JudgementRow
from core.types import JudgeInput, ModelInfo, SamplingParams


@dataclass(frozen=True)
class JudgeSetup:
    """A judge as the judgements it saves record it, to find those the store already
    has (`core.service.judge_setup` makes one from a `Judge`)."""

    model: ModelInfo  # the judge model
    template_shas: Callable[[int], set[str]]  # its templates' sha256 for n responses (and
    # their reference variants)
    rescue: bool  # score rescue on
    reply_prefix: str  # what every reply is prefilled with ("" for none)
    max_responses: int | None = None  # the most responses its template shows in one prompt


@dataclass(frozen=True)
class ItemsToJudge:
    """The items of a dataset that a run considers, and those it still has to judge."""

    considered: list[int]  # ids of the dataset's first `limit` items (all by default), by id
    todo: list[int]  # those of them with no judgement by the judge with the settings


def require_dataset(engine: Engine, dataset: str) -> int:
    """The id of `dataset`; InputError naming what to do when there is none."""
    with Session(engine) as session:
        ds_id = dataset_id(session, dataset)
    if ds_id is None:
        raise InputError(f"there is no dataset '{dataset}'; import one with `grm-studio import`")
    return ds_id


def same_settings(
    setup: JudgeSetup, params: SamplingParams, model_id: int, sizes: Iterable[int]
) -> ColumnElement[bool]:
    """SQL: a judgement made by this judge (model `model_id`, its template for these
    response counts, rescue, prefill) with exactly these sampling settings."""
    # an item with a reference answer is judged with its template's reference variant
    templates = {sha for n in sizes for sha in setup.template_shas(n)}
    return and_(
        JudgementRow.judge_model_id == model_id,
        JudgementRow.template_sha256.in_(templates),
        JudgementRow.k == params.k,
        JudgementRow.temperature == params.temperature,
        JudgementRow.top_p == params.top_p,
        JudgementRow.max_new_tokens == params.max_new_tokens,
        JudgementRow.seed == params.seed,
        JudgementRow.rescue_enabled == setup.rescue,
        JudgementRow.reply_prefix == setup.reply_prefix,
    )


def items_to_judge(
    engine: Engine,
    dataset: str,
    setup: JudgeSetup,
    params: SamplingParams,
    *,
    limit: int | None = None,
) -> ItemsToJudge:
    """The first `limit` items of `dataset` (all by default), and those of them that
    the judge `setup` has not judged with `params` yet; InputError when there is no
    such dataset."""
    ds_id = require_dataset(engine, dataset)
    with Session(engine) as session, session.begin():
        model_id = judge_model_id(session, setup.model)
        query = select(Item.id).where(Item.dataset_id == ds_id).order_by(Item.id)
        item_ids = list(session.scalars(query.limit(limit) if limit else query))
        done = _done_item_ids(session, setup, params, model_id, ds_id)
    return ItemsToJudge(considered=item_ids, todo=[i for i in item_ids if i not in done])


def _done_item_ids(
    session: Session, setup: JudgeSetup, params: SamplingParams, model_id: int, ds_id: int
) -> set[int]:
    sizes = session.scalars(select(Item.n_responses).where(Item.dataset_id == ds_id).distinct())
    condition = same_settings(setup, params, model_id, list(sizes))
    return set(
        session.scalars(
            select(JudgementRow.item_id).where(JudgementRow.item_id.is_not(None), condition)
        )
    )


def judge_inputs(engine: Engine, item_ids: Sequence[int]) -> list[JudgeInput]:
    """What to judge for each of `item_ids`, in their order."""
    with Session(engine) as session:
        items = [session.get_one(Item, item_id) for item_id in item_ids]
        return [item.judge_input() for item in items]

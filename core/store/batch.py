"""The store side of judging a whole dataset: which items a run considers, which
of them already have a judgement by the same judge with the same settings, and
the inputs to judge the rest on.

Judging happens in the application layer (`core.service.judge_dataset`), which
commits each judgement in its own transaction (`store_judgement`) as soon as it
is done: a run that is killed loses at most the items in flight, and a rerun with
the same judge and sampling settings skips every item finished (`items_to_judge`).

An item with a reference answer is judged with it shown (its template's reference
variant), unless the judge's setup hides references (an evaluation's choice,
`core.references`). A judgement counts as done for an item when it was made as the
item would be judged now (`reference_rule`): with the plain template where no
reference is shown, and with the reference variant and the item's current answer
where one is, so that an edited reference is judged again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, false, or_, select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.references import ReferenceMode
from core.store.importing import dataset_id
from core.store.judgements import judge_model_id
from core.store.schema import Item, JudgementRow
from core.types import JudgeInput, ModelInfo, SamplingParams


@dataclass(frozen=True)
class JudgeSetup:
    """A judge as the judgements it saves record it, to find those the store already
    has (`core.service.judge_setup` makes one from a `Judge`)."""

    model: ModelInfo  # the judge model
    template_sha: Callable[[int], str]  # its template's sha256 for n responses
    reference_sha: Callable[[int], str | None]  # that template's reference variant's
    # sha256 (None: it has none)
    rescue: bool  # score rescue on
    reply_prefix: str  # what every reply is prefilled with ("" for none)
    max_responses: int | None = None  # the most responses its template shows in one prompt
    references: ReferenceMode = "shown"  # whether items' reference answers are shown to it


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


def reference_rule(
    references: ReferenceMode, plain: ColumnElement[bool], shown: ColumnElement[bool] | None
) -> ColumnElement[bool]:
    """SQL on a judgement joined with its item: it was made as the item is judged now
    with references `references`. `plain` says a judgement used the judge's plain
    template, `shown` its reference variant (None: it has none). Hidden, or for an
    item without a reference: the plain template. Shown, for an item with one: the
    reference variant, shown the item's current answer (an edit makes it stale)."""
    if references == "hidden":
        return plain
    as_shown = false() if shown is None else and_(
        shown, JudgementRow.input["reference"].as_string() == Item.reference)
    return or_(and_(Item.reference.is_(None), plain),
               and_(Item.reference.is_not(None), as_shown))


def same_settings(
    setup: JudgeSetup, params: SamplingParams, model_id: int, sizes: Iterable[int]
) -> ColumnElement[bool]:
    """SQL on a judgement joined with its item (`Item.id == JudgementRow.item_id`): made
    by this judge (model `model_id`, its template for these response counts, shown a
    reference answer as `reference_rule` says, rescue, prefill) with exactly these
    sampling settings."""
    sizes = list(sizes)
    plain = {setup.template_sha(n) for n in sizes}
    variants = {sha for n in sizes if (sha := setup.reference_sha(n)) is not None}
    return and_(
        JudgementRow.judge_model_id == model_id,
        reference_rule(setup.references, JudgementRow.template_sha256.in_(plain),
                       JudgementRow.template_sha256.in_(variants) if variants else None),
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
            select(JudgementRow.item_id).join(Item, Item.id == JudgementRow.item_id)
            .where(Item.dataset_id == ds_id, condition)
        )
    )


def judge_inputs(
    engine: Engine, item_ids: Sequence[int], *, references: ReferenceMode = "shown"
) -> list[JudgeInput]:
    """What to judge for each of `item_ids`, in their order (their reference answers
    left out when `references` is 'hidden')."""
    with Session(engine) as session:
        items = [session.get_one(Item, item_id) for item_id in item_ids]
        return [item.judge_input(show_reference=references == "shown") for item in items]


def has_references(engine: Engine, dataset: str, *, limit: int | None = None) -> bool:
    """Whether any of the first `limit` items of `dataset` (all by default) has a
    reference answer; InputError when there is no such dataset."""
    ds_id = require_dataset(engine, dataset)
    with Session(engine) as session:
        query = select(Item.reference).where(Item.dataset_id == ds_id).order_by(Item.id)
        first = query.limit(limit).subquery() if limit else query.subquery()
        return session.scalar(
            select(first.c.reference).where(first.c.reference.is_not(None)).limit(1)) is not None

"""The store side of judge against judge (`core.compare`): which sides there are, and
which judgement each side reads on each item of a dataset.

An evaluation run reads what its evaluation scored: per item, the latest judgement
by the run's judge model with the run's settings (k = k_max, temperature, top_p,
max_new_tokens, seed, template, rescue, reply prefix; the greedy judgements of the
run are not these), among the run's first `limit` items. A judge model reads its
latest judgement of each item whatever its settings, the verdict the Insights tab
shows (after `grm-studio eval` that may be the greedy one: name the run to read
the sampled judgements).

A run reads each item's judgement made as the run judged it, its reference answer
shown or hidden as the run's settings say (`core.store.batch.reference_rule`: shown,
the reference variant of the run's template with the item's current answer).

Items are left out, counted by reason, as evaluation leaves them out (a single
response, no label, labelled a tie), when a side has no judgement of the item
or one with fewer samples than the `@k` it reads, and, comparing a run with
references shown against one with them hidden, when the item has no reference
answer (`core.references.NO_REFERENCE`: both runs read the same judgement there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, select
from sqlalchemy.orm import Session

from core.compare import PairedVerdict, Side, SideSpec, Verdict
from core.errors import InputError
from core.labels import LABELLED_A_TIE, LABELLED_BEST_OF_N, Accepted, ItemLabel, NoLabel
from core.references import NO_REFERENCE, run_references
from core.store.batch import reference_rule, require_dataset
from core.store.labels import item_labels
from core.store.schema import EvalRun, Item, JudgementRow, JudgeModel, SampleRow
from core.templates import get_template, with_reference
from core.vote import vote

LIST_SIDES = "`grm-studio compare --list` shows the runs and judges there are"


def side_choices(engine: Engine, *, runs: int = 20) -> list[tuple[str, str]]:
    """(label, side spec) of the latest `runs` evaluation runs (one per k they report:
    `run:ID@K`, the largest as plain `run:ID`), then of every judge model (all its
    samples, and its first sample alone)."""
    with Session(engine) as session:
        rows = session.scalars(select(EvalRun).order_by(EvalRun.id.desc()).limit(runs))
        choices = []
        for row in rows:
            ks = sorted(row.params.get("ks") or [_k_max(row.params)])
            for k in reversed(ks):
                spec = f"run:{row.id}" if k == ks[-1] else f"run:{row.id}@{k}"
                reading = "single sample" if k == 1 else f"voting@{k}"
                hidden = " · references hidden" if run_references(row.params) == "hidden" else ""
                label = (f"run #{row.id} · {row.dataset.name} · {row.judge_model.name} · "
                         f"{reading}{hidden} · {row.status}")
                choices.append((label, spec))
        for j in session.scalars(select(JudgeModel).order_by(JudgeModel.id.desc())):
            choices += [(f"judge {j.name} (#{j.id}, latest judgement of each item)",
                         f"judge:{j.id}"),
                        (f"judge {j.name} @1 (#{j.id}, its first sample only)",
                         f"judge:{j.id}@1")]
    return choices


def resolve_side(engine: Engine, spec: SideSpec) -> Side:
    """The run or judge model `spec` names; InputError naming what there is when
    there is no such one, or when a name fits several judge models."""
    with Session(engine) as session:
        if spec.kind == "run":
            return _run_side(session, spec)
        return _judge_side(session, spec)


def _k_max(params: dict[str, Any]) -> int:
    return int(params.get("k_max") or max(params.get("ks") or [1]))


def _run_side(session: Session, spec: SideSpec) -> Side:
    row = session.get(EvalRun, int(spec.ref))
    if row is None:
        raise InputError(f"there is no evaluation run #{spec.ref}; {LIST_SIDES}")
    p, k_max = row.params, _k_max(row.params)
    if spec.k is not None and spec.k > k_max:
        raise InputError(f"run #{row.id} drew {k_max} sample(s) per item; "
                         f"@{spec.k} needs more (choose @1 to @{k_max})")
    references = run_references(p)
    # said where it matters: hidden, or shown on items that have a reference
    said = references == "hidden" or bool(p.get("reference_items"))
    settings = ", ".join(part for part in (
        f"k={k_max}", f"T={p['temperature']}" if "temperature" in p else "",
        p.get("template") or "", "rescue" if p.get("rescue") else "",
        f"references {references}" if said else "",
        row.status if row.status != "finished" else "") if part)
    return Side("run", row.id, row.judge_model.name, spec.k, row.dataset.name, settings,
                references)


def _judge_side(session: Session, spec: SideSpec) -> Side:
    found: Sequence[JudgeModel] = []
    if spec.ref.isdigit():
        by_id = session.get(JudgeModel, int(spec.ref))
        found = [by_id] if by_id is not None else []
    if not found:
        found = list(session.scalars(select(JudgeModel).where(
            (JudgeModel.name == spec.ref) | (JudgeModel.source == spec.ref))))
    if len(found) != 1:
        known = ", ".join(f"judge:{j.id} ({j.name}, {j.source})"
                          for j in session.scalars(select(JudgeModel).order_by(JudgeModel.id)))
        why = "several judge models fit" if found else "there is no judge model"
        raise InputError(f"{why} '{spec.ref}'; name one by id: {known or 'none stored yet'}")
    judge = found[0]
    return Side("judge", judge.id, judge.name, spec.k, None, "latest judgement of each item")


def _run_condition(row: EvalRun) -> ColumnElement[bool]:
    """SQL on a judgement joined with its item: one the run scored (its judge with its
    sampled settings, the item's reference answer shown or hidden as the run had it)."""
    p = row.params
    parts = [JudgementRow.judge_model_id == row.judge_model_id, JudgementRow.k == _k_max(p)]
    for column, key in [(JudgementRow.temperature, "temperature"), (JudgementRow.top_p, "top_p"),
                        (JudgementRow.max_new_tokens, "max_new_tokens"),
                        (JudgementRow.seed, "seed"), (JudgementRow.rescue_enabled, "rescue"),
                        (JudgementRow.reply_prefix, "reply_prefix")]:
        if p.get(key) is not None:
            parts.append(column == p[key])
    if p.get("template") is not None:
        variant = _reference_variant(p["template"])
        parts.append(reference_rule(
            run_references(p), JudgementRow.template_name == p["template"],
            None if variant is None else JudgementRow.template_name == variant))
    return and_(*parts)


def _reference_variant(template: str) -> str | None:
    """The name of template `template`'s reference variant; None when it has none."""
    try:
        return with_reference(get_template(template)).name
    except InputError:  # no such variant (or a template this version does not know)
        return None


def _judgement_ids(session: Session, side: Side, item_ids: Sequence[int]) -> dict[int, int]:
    """item id -> the judgement `side` reads on it (items it has judged)."""
    if side.kind == "run":
        run = session.get_one(EvalRun, side.id)
        limit = run.params.get("limit")
        item_ids = sorted(item_ids)[:limit] if limit else item_ids
        condition = _run_condition(run)
    else:
        condition = JudgementRow.judge_model_id == side.id
    rows = session.execute(
        select(JudgementRow.item_id, func.max(JudgementRow.id))
        .join(Item, Item.id == JudgementRow.item_id)
        .where(JudgementRow.item_id.in_(item_ids), condition).group_by(JudgementRow.item_id))
    return {item: judgement for item, judgement in rows if item is not None}


def _verdicts(
    session: Session, judgements: dict[int, int], n_responses: dict[int, int], k: int | None
) -> dict[int, Verdict | None]:
    """item id -> the verdict of its judgement read over its first k samples (all for
    None); None when it has fewer than k samples."""
    rows: dict[int, list[list[int] | None]] = {j: [] for j in judgements.values()}
    seeds: dict[int, int] = dict(session.execute(
        select(JudgementRow.id, JudgementRow.seed).where(JudgementRow.id.in_(rows))).all())
    for judgement_id, scores in session.execute(
            select(SampleRow.judgement_id, SampleRow.scores)
            .where(SampleRow.judgement_id.in_(rows)).order_by(SampleRow.index)):
        rows[judgement_id].append(scores)
    verdicts: dict[int, Verdict | None] = {}
    for item_id, judgement_id in judgements.items():
        read = rows[judgement_id][:k] if k is not None else rows[judgement_id]
        if k is not None and len(read) < k:
            verdicts[item_id] = None
            continue
        counted = vote(read, n_responses[item_id], seed=seeds[judgement_id])
        verdicts[item_id] = Verdict(judgement_id, counted.totals, len(read),
                                    counted.valid_samples)
    return verdicts


def paired_verdicts(
    engine: Engine, dataset: str, a: Side, b: Side
) -> tuple[tuple[PairedVerdict, ...], tuple[tuple[str, int], ...]]:
    """Both sides' verdicts on each labelled item of `dataset` both judged, and how
    many of its other items were left out for each reason."""
    ds_id = require_dataset(engine, dataset)
    excluded: Counter[str] = Counter()
    paired = []
    # shown against hidden: an item without a reference is judged alike by both
    by_reference = {a.references, b.references} == {"shown", "hidden"}
    with Session(engine) as session:
        items = list(session.execute(
            select(Item.id, Item.category, Item.n_responses,
                   Item.reference.is_not(None).label("has_reference"))
            .where(Item.dataset_id == ds_id).order_by(Item.id)))
        ids, sizes = [i.id for i in items], {i.id: i.n_responses for i in items}
        labels = item_labels(session, ids)
        read = {name: _verdicts(session, _judgement_ids(session, side, ids), sizes, side.k)
                for name, side in (("A", a), ("B", b))}
    for item in items:
        label = labels[item.id]
        why = _left_out(item.id, item.n_responses, label, read, {"A": a.k, "B": b.k},
                        no_reference=by_reference and not item.has_reference)
        if why is not None:
            excluded[why] += 1
            continue
        va, vb = read["A"][item.id], read["B"][item.id]
        assert isinstance(label, ItemLabel) and isinstance(label.best, int) and va and vb
        paired.append(PairedVerdict(item.id, item.category, label.best, va, vb))
    return tuple(paired), tuple(sorted(excluded.items()))


def _left_out(item_id: int, n_responses: int, label: ItemLabel | NoLabel,
              read: dict[str, dict[int, Verdict | None]],
              ks: dict[str, int | None], *, no_reference: bool = False) -> str | None:
    """Why an item is not compared; None when it is. `no_reference`: the sides differ
    only where an item has a reference answer, and this one has none."""
    if n_responses < 2:
        return "a single response"
    if isinstance(label, NoLabel):
        return label.reason
    if label.best is None:
        return LABELLED_A_TIE
    if isinstance(label.best, Accepted):
        return LABELLED_BEST_OF_N
    if no_reference:
        return NO_REFERENCE
    missing = [name for name, verdicts in read.items() if item_id not in verdicts]
    if missing:
        return "judged by neither" if len(missing) == 2 else f"not judged by {missing[0]}"
    short = [name for name, verdicts in read.items() if verdicts[item_id] is None]
    if short:
        return f"{short[0]}'s judgement has fewer than {ks[short[0]]} samples"
    return None

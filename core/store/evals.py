"""Evaluation runs in the store: saving a run and its results, loading them back,
and the labelled, judged items a run scores.

    run_id = start_eval_run(engine, "llmbar", judge_model, settings)   # stored as running
    items, considered, excluded = evaluation_items(engine, setup, "llmbar", params)
    close_eval_run(engine, run_id, "finished", results=..., ...)
    evaluation = load_evaluation(engine, run_id)

Running an evaluation (judging what is missing, then scoring) is the application
layer's `core.service.run_evaluation`. An item's label is decided by the rule of
`core.labels` (the annotators' majority, else the dataset's; a best-of-n item
with several correct responses is evaluated by its accepted set). Items without
a label, labelled a tie, with a single response, with more responses than the
judge's template shows in one prompt, or that could not be judged are left out
and counted by reason. A run records the host and pid of its process, so
that one whose process died is read, and then stored, as interrupted.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from core.agreement import Estimate
from core.errors import InputError
from core.evaluation.metrics import EvalItem, MethodResult, method_plan
from core.evaluation.records import EvalRun, Evaluation
from core.insights import PositionBias
from core.labels import LABELLED_A_TIE, NoLabel
from core.store.batch import JudgeSetup, require_dataset, same_settings
from core.store.judgements import judge_model_id, load_judgement
from core.store.labels import item_labels
from core.store.schema import EvalResult, Item, JudgementRow, SampleRow
from core.store.schema import EvalRun as EvalRunRow
from core.types import ModelInfo, SamplingParams


def start_eval_run(engine: Engine, dataset: str, judge_model: ModelInfo,
                   params: dict[str, Any]) -> int:
    """Store a new run of `judge_model` on `dataset` with settings `params` as
    'running' by this process (its host and pid); returns its id. Runs left
    'running' by a process that is gone are first stored as interrupted."""
    ds_id = require_dataset(engine, dataset)
    close_orphaned_runs(engine)
    with Session(engine) as session, session.begin():
        row = EvalRunRow(dataset_id=ds_id, params=params, status="running", excluded={},
                         judge_model_id=judge_model_id(session, judge_model),
                         runner_host=socket.gethostname(), runner_pid=os.getpid())
        session.add(row)
        session.flush()
        return row.id


def close_eval_run(engine: Engine, run_id: int, status: str, *, error: str | None = None,
                   considered: int = 0, evaluated: int = 0,
                   excluded: dict[str, int] | None = None, bias: PositionBias | None = None,
                   results: Sequence[MethodResult] = (),
                   params: dict[str, Any] | None = None) -> None:
    """Store run `run_id` as ended with `status` ('finished', 'failed' or
    'interrupted'), with its counts, results and position bias or its error;
    `params` are added to its settings."""
    with Session(engine) as session, session.begin():
        row = session.get_one(EvalRunRow, run_id)
        row.status, row.error, row.finished_at = status, error, datetime.now(UTC)
        row.considered, row.evaluated, row.excluded = considered, evaluated, excluded or {}
        row.position_bias = dataclasses.asdict(bias) if bias is not None else None
        if params:
            row.params = {**row.params, **params}
        row.results = [_result_row(r) for r in results]


def _result_row(r: MethodResult) -> EvalResult:
    e = r.accuracy
    return EvalResult(
        method=r.method, k=r.k, category=r.category, n=e.n, correct=r.correct,
        accuracy=e.value, ci_low=e.low, ci_high=e.high, note=e.note, samples=r.samples,
        parse_failure_rate=r.parse_failure_rate, rescue_rate=r.rescue_rate,
        invalid_rate=r.invalid_rate, tie_rate=r.tie_rate, first_win_rate=r.first_win_rate,
        unscored_rate=r.unscored_rate,
        pairwise={**dataclasses.asdict(r.pairwise), "correct": r.pairs_correct},
    )


def _matching(session: Session, setup: JudgeSetup, params: SamplingParams, model_id: int,
              item_ids: Sequence[int], sizes: set[int]) -> dict[int, int]:
    """item id -> its latest judgement by this judge with exactly these settings."""
    rows = session.execute(
        select(JudgementRow.item_id, func.max(JudgementRow.id))
        .join(Item, Item.id == JudgementRow.item_id)
        .where(JudgementRow.item_id.in_(item_ids), same_settings(setup, params, model_id, sizes))
        .group_by(JudgementRow.item_id)
    )
    return {item_id: judgement_id for item_id, judgement_id in rows if item_id is not None}


def evaluation_items(
    engine: Engine,
    setup: JudgeSetup,
    dataset: str,
    params: SamplingParams,
    *,
    limit: int | None = None,
    greedy: SamplingParams | None = None,
) -> tuple[list[EvalItem], int, dict[str, int]]:
    """The labelled items of `dataset` (first `limit` by id) judged by `setup` with
    `params` (each with its judgement with `greedy` too, when given), how many
    were considered, and how many were left out for each reason."""
    ds_id = require_dataset(engine, dataset)
    excluded: Counter[str] = Counter()
    items = []
    with Session(engine) as session:
        query = select(Item).where(Item.dataset_id == ds_id).order_by(Item.id)
        rows = list(session.scalars(query.limit(limit) if limit else query))
        model_id = judge_model_id(session, setup.model)
        ids, sizes = [r.id for r in rows], {r.n_responses for r in rows}
        sampled = _matching(session, setup, params, model_id, ids, sizes)
        greedy_ids = _matching(session, setup, greedy, model_id, ids, sizes) \
            if greedy is not None else {}
        labels = item_labels(session, ids)
        for row in rows:
            label = labels[row.id]
            if row.n_responses < 2:
                excluded["a single response"] += 1
                continue
            if isinstance(label, NoLabel):
                excluded[label.reason] += 1
                continue
            if label.best is None:
                excluded[LABELLED_A_TIE] += 1
                continue
            if row.id not in sampled:
                too_many = setup.max_responses is not None and row.n_responses > setup.max_responses
                excluded[f"more than {setup.max_responses} responses (the most one prompt shows)"
                         if too_many else "could not be judged"] += 1
                continue
            meta = session.execute(select(SampleRow.meta_score, SampleRow.meta_model_id).where(
                SampleRow.judgement_id == sampled[row.id]).order_by(SampleRow.index)).all()
            items.append(EvalItem(
                item_id=row.id, category=row.category, best=label.best,
                label_source=label.source,
                sampled=load_judgement(session, sampled[row.id]),
                greedy=load_judgement(session, greedy_ids[row.id])
                if row.id in greedy_ids else None,
                meta_scores=tuple(score for score, _ in meta),
                meta_model_ids=tuple(model for _, model in meta),
                has_reference=row.reference is not None,
            ))
    return items, len(rows), dict(sorted(excluded.items()))


def _estimate(row: EvalResult) -> Estimate:
    return Estimate(row.accuracy, row.ci_low, row.ci_high, row.n, row.note)


_NOT_RECORDED = Estimate(None, None, None, 0, "not recorded (a run stored before pairwise "
                         "accuracy was)")


def _method_result(row: EvalResult) -> MethodResult:
    pairwise, pairs_correct = _NOT_RECORDED, 0
    if row.pairwise is not None:
        stored = dict(row.pairwise)
        pairs_correct = stored.pop("correct")
        pairwise = Estimate(**stored)
    return MethodResult(
        method=row.method,  # type: ignore[arg-type]
        k=row.k, category=row.category, accuracy=_estimate(row), correct=row.correct,
        pairwise=pairwise, pairs_correct=pairs_correct,
        samples=row.samples, parse_failure_rate=row.parse_failure_rate,
        rescue_rate=row.rescue_rate, invalid_rate=row.invalid_rate, tie_rate=row.tie_rate,
        first_win_rate=row.first_win_rate, unscored_rate=row.unscored_rate,
    )


def _position_bias(data: dict[str, Any] | None) -> PositionBias | None:
    if data is None:
        return None
    return PositionBias(**{
        **data,
        "first_win_rate": Estimate(**data["first_win_rate"]),
        "tie_rate": Estimate(**data["tie_rate"]),
        "wins_by_shown_position": tuple(data["wins_by_shown_position"]),
    })


def _run(row: EvalRunRow) -> EvalRun:
    """The run as stored; one still 'running' whose process is gone reads as
    'interrupted' (reading writes nothing: `close_orphaned_runs` stores it)."""
    status, error = row.status, row.error
    if status == "running" and _orphaned(row):
        status, error = "interrupted", _orphan_error(row)
    return EvalRun(
        id=row.id, dataset=row.dataset.name, judge=row.judge_model.name, params=row.params,
        status=status,  # type: ignore[arg-type]
        considered=row.considered, evaluated=row.evaluated,
        excluded=tuple(row.excluded.items()), created_at=row.created_at,
        finished_at=row.finished_at, error=error,
    )


def close_orphaned_runs(engine: Engine) -> list[int]:
    """Store as 'interrupted' every run still 'running' whose process, on this host,
    is gone (killed before it could close the run); the ids closed. A run started
    on another host, or stored before runs recorded their process, is left as is.
    `start_eval_run` calls it; readers show such runs as interrupted anyway."""
    with Session(engine) as session, session.begin():
        rows = session.scalars(select(EvalRunRow).where(
            EvalRunRow.status == "running", EvalRunRow.runner_host == socket.gethostname()))
        closed = []
        for row in rows:
            if _orphaned(row):
                row.status, row.finished_at = "interrupted", datetime.now(UTC)
                row.error = _orphan_error(row)
                closed.append(row.id)
        return closed


def _orphaned(row: EvalRunRow) -> bool:
    """True when `row`'s process ran on this host and is gone."""
    if os.name != "posix" or row.runner_pid is None:  # os.kill(pid, 0) probes POSIX only
        return False
    return row.runner_host == socket.gethostname() and not _process_alive(row.runner_pid)


def _orphan_error(row: EvalRunRow) -> str:
    return f"its process (pid {row.runner_pid} on {row.runner_host}) ended without finishing it"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True


def eval_runs(engine: Engine, *, limit: int = 20) -> list[EvalRun]:
    """The latest evaluation runs, newest first."""
    with Session(engine) as session:
        rows = session.scalars(
            select(EvalRunRow).options(selectinload(EvalRunRow.dataset),
                                       selectinload(EvalRunRow.judge_model))
            .order_by(EvalRunRow.id.desc()).limit(limit))
        return [_run(row) for row in rows]


def load_evaluation(engine: Engine, run_id: int | None = None) -> Evaluation:
    """Evaluation run `run_id` (default: the latest) with its results, in report order."""
    with Session(engine) as session:
        query = select(EvalRunRow).options(selectinload(EvalRunRow.results))
        row = session.scalar(query.where(EvalRunRow.id == run_id) if run_id is not None
                             else query.order_by(EvalRunRow.id.desc()).limit(1))
        if row is None:
            raise InputError("there is no evaluation run" + (
                f" with id {run_id}" if run_id is not None else
                " yet; run one with `grm-studio eval --dataset NAME`"))
        order = {key: i for i, key in enumerate(method_plan(row.params.get("ks", [1]),
                                                            row.params.get("votings", [])))}
        results = sorted((_method_result(r) for r in row.results),
                         key=lambda r: (r.category is not None, order.get((r.method, r.k), 99)))
        return Evaluation(_run(row), tuple(results), _position_bias(row.position_bias))

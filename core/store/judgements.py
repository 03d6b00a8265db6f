"""Saving judgements to the store and reading them back as `Judgement` objects."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, Select, func, select, text
from sqlalchemy.orm import Session, selectinload

from core.errors import InputError
from core.store.schema import JudgementRow, JudgeModel, SampleRow
from core.types import (
    JudgeInput,
    Judgement,
    ModelInfo,
    ParsedOutput,
    ParseFailure,
    Rescue,
    Sample,
    SamplingParams,
    TemplateRef,
)
from core.vote import vote


def judge_model_id(session: Session, info: ModelInfo) -> int:
    """The id of the judge model row for `info`, created on first use (once, also
    when processes on one PostgreSQL store, such as reward-server replicas, save
    their first judgements at once: the unique constraint does not cover a NULL
    revision there, so the creation takes a lock on the identity)."""
    found = _judge_model(session, info)
    if found is not None:
        return found
    if session.get_bind().dialect.name == "postgresql":
        key = hashlib.sha256(f"{info.backend}\0{info.source}\0{info.revision}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),  # until the commit
                        {"key": int.from_bytes(key.digest()[:8], "big", signed=True)})
        found = _judge_model(session, info)  # saved by whoever held the lock before
        if found is not None:
            return found
    row = JudgeModel(
        name=info.name, backend=info.backend, source=info.source, revision=info.revision
    )
    session.add(row)
    session.flush()
    return row.id


def _judge_model(session: Session, info: ModelInfo) -> int | None:
    return session.scalar(
        select(JudgeModel.id).where(
            JudgeModel.backend == info.backend,
            JudgeModel.source == info.source,
            JudgeModel.revision.is_(None) if info.revision is None
            else JudgeModel.revision == info.revision,
        )
    )


def judge_model_sources(engine: Engine) -> list[tuple[int, str, str]]:
    """(id, name, source) of every judge model in the store, newest first."""
    with Session(engine) as session:
        rows = session.execute(select(JudgeModel.id, JudgeModel.name, JudgeModel.source)
                               .order_by(JudgeModel.id.desc())).all()
    return [(judge_id, name, source) for judge_id, name, source in rows]


def save_judgement(session: Session, judgement: Judgement, item_id: int | None = None) -> int:
    """Add `judgement` (and its samples) to the session; returns its id."""
    params, v = judgement.params, judgement.vote
    row = JudgementRow(
        item_id=item_id,
        judge_model_id=judge_model_id(session, judgement.model),
        template_name=judgement.template.name,
        template_sha256=judgement.template.sha256,
        k=params.k,
        temperature=params.temperature,
        top_p=params.top_p,
        max_new_tokens=params.max_new_tokens,
        seed=params.seed,
        rescue_enabled=judgement.rescue_enabled,
        reply_prefix=judgement.reply_prefix,
        totals=list(v.totals),
        winner=v.winner,
        tie=v.tie,
        margin=v.margin,
        split=v.split,
        valid_samples=v.valid_samples,
        invalid_samples=v.invalid_samples,
        seconds=judgement.seconds,
        created_at=judgement.created_at,
        input=judgement.input.model_dump(mode="json"),
        samples=[_sample_row(s) for s in judgement.samples],
    )
    session.add(row)
    session.flush()
    return row.id


def latest_judgement_ids() -> Select[int]:
    """SQL: the id of each item's latest judgement (the judge's current verdict)."""
    return (
        select(func.max(JudgementRow.id))
        .where(JudgementRow.item_id.is_not(None))
        .group_by(JudgementRow.item_id)
    )


def store_judgement(engine: Engine, judgement: Judgement, item_id: int | None = None) -> int:
    """Save `judgement` in its own transaction; returns its id."""
    with Session(engine) as session, session.begin():
        return save_judgement(session, judgement, item_id=item_id)


def fetch_judgement(engine: Engine, judgement_id: int) -> Judgement:
    with Session(engine) as session:
        return load_judgement(session, judgement_id)


def _sample_row(sample: Sample) -> SampleRow:
    parse, rescue = sample.parse, sample.rescue
    failure = parse if isinstance(parse, ParseFailure) else None
    parsed = parse if isinstance(parse, ParsedOutput) else None
    return SampleRow(
        index=sample.index,
        shown_order=list(sample.shown_order),
        prompt=sample.prompt,
        principles=parse.principles,
        critique=parse.critique,
        raw_text=sample.raw_text,
        finish_reason=sample.finish_reason,
        scores=list(sample.scores) if sample.scores is not None else None,
        parse_status=parse.status,
        parse_kind=failure.kind if failure else None,
        parse_reason=failure.reason if failure else None,
        found_scores=list(failure.found_scores) if failure and failure.found_scores else None,
        score_format=parsed.score_format if parsed else None,
        missing_sections=list(parsed.missing_sections) if parsed else [],
        rescue_used=rescue is not None,
        rescue_original_kind=rescue.original_failure.kind if rescue else None,
        rescue_original_reason=rescue.original_failure.reason if rescue else None,
        rescue_prefix=rescue.prefix if rescue else None,
        rescue_continuation=rescue.continuation if rescue else None,
        prompt_tokens=sample.prompt_tokens,
        completion_tokens=sample.completion_tokens,
    )


def load_judgement(session: Session, judgement_id: int) -> Judgement:
    """The stored judgement `judgement_id` as a `Judgement`; InputError if absent."""
    row = session.scalar(
        select(JudgementRow)
        .where(JudgementRow.id == judgement_id)
        .options(selectinload(JudgementRow.samples), selectinload(JudgementRow.judge_model))
    )
    if row is None:
        raise InputError(f"there is no judgement with id {judgement_id}")
    item = JudgeInput.model_validate(row.input)
    samples = tuple(_sample(s, len(item.responses)) for s in row.samples)
    model = row.judge_model
    return Judgement(
        input=item,
        template=TemplateRef(name=row.template_name, sha256=row.template_sha256),
        model=ModelInfo(
            name=model.name, backend=model.backend, source=model.source, revision=model.revision
        ),
        params=SamplingParams(
            k=row.k,
            temperature=row.temperature,
            top_p=row.top_p,
            max_new_tokens=row.max_new_tokens,
            seed=row.seed,
        ),
        rescue_enabled=row.rescue_enabled,
        reply_prefix=row.reply_prefix,
        samples=samples,
        vote=vote([s.scores for s in samples], len(item.responses), seed=row.seed),
        created_at=row.created_at,
        seconds=row.seconds,
    )


def _sample(row: SampleRow, n: int) -> Sample:
    if row.parse_status == "ok":
        assert row.scores is not None  # a parsed sample is stored with its scores
        parse: ParsedOutput | ParseFailure = ParsedOutput(
            principles=row.principles,
            critique=row.critique,
            scores=tuple(row.scores[i] for i in row.shown_order),  # back to shown order
            score_format=row.score_format or "",
            missing_sections=tuple(row.missing_sections),
        )
    else:
        parse = ParseFailure(
            kind=row.parse_kind,
            reason=row.parse_reason or "",
            principles=row.principles,
            critique=row.critique,
            found_scores=tuple(row.found_scores) if row.found_scores else None,
        )
    rescue = None
    if row.rescue_used:
        rescue = Rescue(
            original_failure=ParseFailure(
                kind=row.rescue_original_kind,
                reason=row.rescue_original_reason or "",
                principles=row.principles,
                critique=row.critique,
            ),
            prefix=row.rescue_prefix or "",
            continuation=row.rescue_continuation or "",
        )
    return Sample(
        index=row.index,
        shown_order=tuple(row.shown_order),
        prompt=row.prompt,
        raw_text=row.raw_text,
        finish_reason=row.finish_reason,
        parse=parse,
        rescue=rescue,
        scores=tuple(row.scores) if row.scores is not None else None,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
    )

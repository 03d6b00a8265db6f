"""The SQL schema of GRM Studio (SQLAlchemy 2.0 typed ORM).

Changes go through Alembic migrations in `core/store/migrations/`; the
models here describe the latest revision.

Human labels are append-only: a correction is a new `annotation` row whose
`supersedes_id` points at the row it replaces. No label row is ever updated
or deleted, so the full history stays readable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.types import JudgeInput, Turn


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    __tablename__ = "dataset"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    items: Mapped[list[Item]] = relationship(back_populates="dataset")


class ImportRun(Base):
    """One import of a file into a dataset; re-importing the same file is a no-op."""

    __tablename__ = "import_run"
    __table_args__ = (UniqueConstraint("dataset_id", "file_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str] = mapped_column(String(64))
    imported: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[list[Any]] = mapped_column(default=list)  # [{line, reason}]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Item(Base):
    """A query, its earlier turns and 1..n responses."""

    __tablename__ = "item"
    __table_args__ = (UniqueConstraint("dataset_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(200), index=True)
    query: Mapped[str] = mapped_column(Text)
    context: Mapped[list[Any]] = mapped_column(default=list)  # [{role, content}]
    responses: Mapped[list[Any]]  # [str]
    n_responses: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_line: Mapped[int | None] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(Text)  # a reference answer; None: none
    # one numeric rating per response, as the dataset gave them (UltraFeedback); None: none
    ratings: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    dataset: Mapped[Dataset] = relationship(back_populates="items")
    truths: Mapped[list[GroundTruth]] = relationship(back_populates="item")


    def judge_input(self, *, show_reference: bool = True) -> JudgeInput:
        """The item as the judge is given it: its query, earlier turns, responses and
        reference answer (when it has one, unless `show_reference` is False: an
        evaluation with references hidden, `core.references`). Every consumer that
        judges items asks here."""
        return JudgeInput(query=self.query, responses=tuple(self.responses),
                          context=tuple(Turn.model_validate(t) for t in self.context),
                          reference=self.reference if show_reference else None)

class GroundTruth(Base):
    """The label that came with the source dataset: the best response, a tie, or (a
    best-of-n item with several correct responses) the accepted set."""

    __tablename__ = "ground_truth"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    best: Mapped[int | None] = mapped_column(Integer)  # None: a tie, unless `accepted` is set
    # The correct responses (two or more indices, ascending) of a best-of-n item; the
    # others are incorrect (`core.labels.Accepted`). None: `best` is the label.
    accepted: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    source: Mapped[str] = mapped_column(String(200))

    item: Mapped[Item] = relationship(back_populates="truths")


class JudgeModel(Base):
    __tablename__ = "judge_model"
    __table_args__ = (UniqueConstraint("backend", "source", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    backend: Mapped[str] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(1000))
    revision: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class JudgementRow(Base):
    """One call of the judge on one item: k samples and their vote."""

    __tablename__ = "judgement"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("item.id", ondelete="CASCADE"), index=True
    )
    judge_model_id: Mapped[int] = mapped_column(ForeignKey("judge_model.id"), index=True)
    template_name: Mapped[str] = mapped_column(String(100))
    template_sha256: Mapped[str] = mapped_column(String(64))
    k: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float)
    top_p: Mapped[float] = mapped_column(Float)
    max_new_tokens: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    rescue_enabled: Mapped[bool] = mapped_column(Boolean)
    reply_prefix: Mapped[str] = mapped_column(String(200), default="")
    totals: Mapped[list[Any]]
    winner: Mapped[int | None] = mapped_column(Integer)
    tie: Mapped[bool] = mapped_column(Boolean)
    margin: Mapped[int | None] = mapped_column(Integer)
    split: Mapped[bool] = mapped_column(Boolean)
    valid_samples: Mapped[int] = mapped_column(Integer)
    invalid_samples: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    input: Mapped[dict[str, Any]]  # the JudgeInput as judged, so the row stands alone

    samples: Mapped[list[SampleRow]] = relationship(
        back_populates="judgement", order_by="SampleRow.index"
    )
    judge_model: Mapped[JudgeModel] = relationship()


class SampleRow(Base):
    """One sampled judgement: its shown order, text, parse outcome and scores."""

    __tablename__ = "sample"
    __table_args__ = (UniqueConstraint("judgement_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    judgement_id: Mapped[int] = mapped_column(ForeignKey("judgement.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    shown_order: Mapped[list[Any]]
    prompt: Mapped[str] = mapped_column(Text)
    principles: Mapped[str | None] = mapped_column(Text)
    critique: Mapped[str | None] = mapped_column(Text)
    raw_text: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str] = mapped_column(String(20))
    scores: Mapped[list[Any] | None] = mapped_column(default=None)  # original order
    parse_status: Mapped[str] = mapped_column(String(20))  # ok | failed
    parse_kind: Mapped[str | None] = mapped_column(String(30))
    parse_reason: Mapped[str | None] = mapped_column(Text)
    score_format: Mapped[str | None] = mapped_column(String(30))
    found_scores: Mapped[list[Any] | None] = mapped_column(default=None)
    missing_sections: Mapped[list[Any]] = mapped_column(default=list)
    rescue_used: Mapped[bool] = mapped_column(Boolean, default=False)
    rescue_original_kind: Mapped[str | None] = mapped_column(String(30))
    rescue_original_reason: Mapped[str | None] = mapped_column(Text)
    rescue_prefix: Mapped[str | None] = mapped_column(Text)
    rescue_continuation: Mapped[str | None] = mapped_column(Text)
    meta_score: Mapped[float | None] = mapped_column(Float)
    meta_model_id: Mapped[int | None] = mapped_column(  # which meta RM wrote meta_score
        ForeignKey("meta_model.id", name="fk_sample_meta_model_id", ondelete="SET NULL")
    )
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)

    judgement: Mapped[JudgementRow] = relationship(back_populates="samples")


class Annotator(Base):
    __tablename__ = "annotator"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin reviewer annotator viewer imported
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2; None: no sign-in
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Annotation(Base):
    """A human label: best response (or tie), optional corrections, a note.

    Append-only: a correction is a new row with `supersedes_id` set; an undo is
    a new row that restores the label before, or a `retracted` row if none."""

    __tablename__ = "annotation"
    __table_args__ = (
        Index("ix_annotation_item_annotator", "item_id", "annotator_id"),
        # One chain per annotator and item: only one row may start it. (The unique
        # supersedes_id keeps the rest of the chain linear; NULLs never clash there.)
        Index(
            "uq_annotation_chain_start",
            "item_id",
            "annotator_id",
            unique=True,
            sqlite_where=text("supersedes_id IS NULL"),
            postgresql_where=text("supersedes_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    best: Mapped[int | None] = mapped_column(Integer)  # None: the annotator calls it a tie
    corrected_scores: Mapped[list[Any] | None] = mapped_column(default=None)
    corrected_principles: Mapped[str | None] = mapped_column(Text)
    corrected_critique: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    judgement_id: Mapped[int | None] = mapped_column(
        ForeignKey("judgement.id", ondelete="SET NULL")
    )
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotation.id"), unique=True
    )
    # An undo: this row withdraws the label it supersedes and is no label itself.
    retracted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    annotator: Mapped[Annotator] = relationship()


class Adjudication(Base):
    """An adjudicated label (`core.store.adjudication`): an admin's or reviewer's
    decision that settles an item for every consumer of its label (`core.labels`).

    Append-only, one chain per item whoever writes it: a new decision supersedes the
    item's current one (`supersedes_id`); an undo is a new row that restores the
    decision before, or a `retracted` row if none."""

    __tablename__ = "adjudication"
    __table_args__ = (
        Index(
            "uq_adjudication_chain_start",
            "item_id",
            unique=True,
            sqlite_where=text("supersedes_id IS NULL"),
            postgresql_where=text("supersedes_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    adjudicator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    best: Mapped[int | None] = mapped_column(Integer)  # None: settled as a tie
    note: Mapped[str | None] = mapped_column(Text)
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("adjudication.id"), unique=True
    )
    # An undo: this row withdraws the decision it supersedes and is no decision itself.
    retracted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    adjudicator: Mapped[Annotator] = relationship()


class ReferenceEdit(Base):
    """An edit of an item's reference answer by an account (`core.store.reference_edits`):
    what it became (`reference`; NULL: removed) and what it was before (`previous`;
    NULL: none). `item.reference` holds the current answer, the one judging reads.

    Append-only, one chain per item: each edit supersedes the item's edit before it
    (`supersedes_id`, unique; the partial unique index lets only one row start it)."""

    __tablename__ = "reference_edit"
    __table_args__ = (
        Index(
            "uq_reference_edit_chain_start",
            "item_id",
            unique=True,
            sqlite_where=text("supersedes_id IS NULL"),
            postgresql_where=text("supersedes_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    reference: Mapped[str | None] = mapped_column(Text)  # the answer now; None: removed
    previous: Mapped[str | None] = mapped_column(Text)  # the answer before; None: none
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("reference_edit.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    editor: Mapped[Annotator] = relationship()


class WebSession(Base):
    """A signed-in browser. Only the token's SHA-256 is kept; it ends at `expires_at`
    or when signed out (`ended_at`)."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    annotator_id: Mapped[int] = mapped_column(
        ForeignKey("annotator.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    annotator: Mapped[Annotator] = relationship()


class AnnotationWalk(Base):
    """An account's walk through an annotation queue (`core.store.walks`), so that a
    reload or another browser resumes it: the queue and its filters, the items
    skipped, and the labels written in it, newest last (what Undo takes back)."""

    __tablename__ = "annotation_walk"

    annotator_id: Mapped[int] = mapped_column(
        ForeignKey("annotator.id", ondelete="CASCADE"), primary_key=True
    )
    queue: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[str | None] = mapped_column(String(200))
    blind: Mapped[bool] = mapped_column(Boolean)
    skipped: Mapped[list[Any]] = mapped_column(default=list)  # [item id]
    saved: Mapped[list[Any]] = mapped_column(default=list)  # [label id], newest last
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class MetaModel(Base):
    """A trained meta reward model: a scalar classifier that rates how likely one
    sampled judgement is correct (grm-method.md §3). `source` is its directory,
    `content_hash` the SHA-256 of its files; positives / negatives count the
    correct and incorrect samples it was trained on."""

    __tablename__ = "meta_model"
    __table_args__ = (UniqueConstraint("source", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(1000))
    base_model: Mapped[str] = mapped_column(String(1000))
    content_hash: Mapped[str] = mapped_column(String(64))
    positives: Mapped[int] = mapped_column(Integer)
    negatives: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EvalRun(Base):
    """One evaluation of a judge on a dataset (`grm-studio eval`): its settings and outcome."""

    __tablename__ = "eval_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("dataset.id", ondelete="CASCADE"), index=True
    )
    judge_model_id: Mapped[int] = mapped_column(ForeignKey("judge_model.id"))
    params: Mapped[dict[str, Any]]  # ks, votings, sampling settings, template, rescue, limit
    status: Mapped[str] = mapped_column(String(20))  # running | finished | failed | interrupted
    error: Mapped[str | None] = mapped_column(Text)
    considered: Mapped[int] = mapped_column(Integer, default=0)
    evaluated: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[dict[str, Any]] = mapped_column(default=dict)  # reason -> items
    position_bias: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    runner_host: Mapped[str | None] = mapped_column(String(255))  # where its process runs
    runner_pid: Mapped[int | None] = mapped_column(Integer)

    results: Mapped[list[EvalResult]] = relationship(
        back_populates="run", order_by="EvalResult.id", cascade="all, delete-orphan"
    )
    dataset: Mapped[Dataset] = relationship()
    judge_model: Mapped[JudgeModel] = relationship()


class EvalResult(Base):
    """The accuracy of one method at one k on all items (category NULL) or one category."""

    __tablename__ = "eval_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_run.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(20))  # greedy | single | vote | meta
    k: Mapped[int] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(200))  # '' : items without a category
    n: Mapped[int] = mapped_column(Integer)
    correct: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    samples: Mapped[int] = mapped_column(Integer)
    parse_failure_rate: Mapped[float | None] = mapped_column(Float)
    rescue_rate: Mapped[float | None] = mapped_column(Float)
    invalid_rate: Mapped[float | None] = mapped_column(Float)
    tie_rate: Mapped[float | None] = mapped_column(Float)
    first_win_rate: Mapped[float | None] = mapped_column(Float)
    unscored_rate: Mapped[float | None] = mapped_column(Float)  # None: not recorded (before 0015)
    # pairwise accuracy: {value, low, high, n, note, correct}; None: not recorded (before 0015)
    pairwise: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)

    run: Mapped[EvalRun] = relationship(back_populates="results")


class RFTExport(Base):
    """A versioned rejective-fine-tuning dataset written to disk (`path`), recorded
    once its files, card and content hash are complete."""

    __tablename__ = "rft_export"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))
    dataset: Mapped[str | None] = mapped_column(String(200))
    judge_model_id: Mapped[int | None] = mapped_column(ForeignKey("judge_model.id"))
    counts: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str | None] = mapped_column(String(200))


class TrainedJudge(Base):
    """How a registered judge model was trained: from which model, on which export."""

    __tablename__ = "trained_judge"

    id: Mapped[int] = mapped_column(primary_key=True)
    judge_model_id: Mapped[int] = mapped_column(
        ForeignKey("judge_model.id", ondelete="CASCADE"), unique=True
    )
    parent_judge_model_id: Mapped[int | None] = mapped_column(ForeignKey("judge_model.id"))
    rft_export_id: Mapped[int | None] = mapped_column(
        ForeignKey("rft_export.id", ondelete="SET NULL")
    )
    method: Mapped[str] = mapped_column(String(50))  # rft | rft-lora | ...
    weights_sha256: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str | None] = mapped_column(String(200))


class ServedReward(Base):
    """One judgement a reward server served (`core.reward`): which request of which RL
    run and step it answered, which of the request's responses it covered and the
    rewards it gave them (None: unscored). A request judged in chunks has one row
    per chunk, all with its `request_id`."""

    __tablename__ = "served_reward"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    judgement_id: Mapped[int] = mapped_column(
        ForeignKey("judgement.id", ondelete="CASCADE"), index=True
    )
    run: Mapped[str] = mapped_column(String(200), index=True)
    step: Mapped[int | None] = mapped_column(Integer)
    endpoint: Mapped[str] = mapped_column(String(20))  # v1 | openrlhf
    mode: Mapped[str] = mapped_column(String(10))  # group | single
    voting: Mapped[str] = mapped_column(String(10))  # sum | meta
    responses: Mapped[list[Any]]  # the request indices it covered, in the judgement's order
    rewards: Mapped[list[Any]]  # per covered response: its reward, or None (unscored)
    n_responses: Mapped[int] = mapped_column(Integer)  # in the whole request
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

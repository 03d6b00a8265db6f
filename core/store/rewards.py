"""Served rewards in the store: saving what a reward server answered, and reading
it back per RL run and step (the Rewards view, `grm-studio rewards`).

    save_served(session, [ServedChunk(...), ...])        # with its judgements
    summary = reward_summary(engine, "grpo-1")            # per step, and for the run
    close = close_votes(engine, "grpo-1")                 # low-margin and split votes
    send_to_annotation(engine, "grpo-1", [v.judgement_id for v in close])

A step's figures: the rewards given (scored ones; the unscored are counted),
the parse-failure rate (samples whose scores could not be read, after rescue),
the rescue rate (samples whose scores came from the score rescue), split votes
(valid samples disagree on the winner), low margins (the winner ahead by less
than LOW_MARGIN points per valid sample), position bias (how often a sample's
strict winner is the response it was shown first) and responses flagged as
trying to steer the judge (`core.injection`).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.injection import flagged_responses
from core.store.importing import content_hash, dataset_id
from core.store.schema import Item, JudgementRow, SampleRow, ServedReward
from core.types import JudgeInput
from core.vote import strict_winner

LOW_MARGIN = 1.0  # points per valid sample: below it, the winner barely won


@dataclass(frozen=True)
class ServedChunk:
    """One served judgement's row, before it is saved."""

    request_id: str
    judgement_id: int
    run: str
    step: int | None
    endpoint: str
    mode: str
    voting: str
    responses: tuple[int, ...]
    rewards: tuple[float | None, ...]
    n_responses: int


def save_served(session: Session, chunks: Iterable[ServedChunk]) -> None:
    """Add the rows of served judgements to the session (saved with their judgements)."""
    session.add_all(
        ServedReward(request_id=c.request_id, judgement_id=c.judgement_id, run=c.run,
                     step=c.step, endpoint=c.endpoint, mode=c.mode, voting=c.voting,
                     responses=list(c.responses), rewards=list(c.rewards),
                     n_responses=c.n_responses)
        for c in chunks
    )


@dataclass(frozen=True)
class RewardRun:
    run: str
    requests: int
    judgements: int
    first_at: datetime
    last_at: datetime


def reward_runs(engine: Engine) -> list[RewardRun]:
    """Every run the store has served rewards to, the latest first."""
    with Session(engine) as session:
        rows = session.execute(
            select(ServedReward.run, func.count(func.distinct(ServedReward.request_id)),
                   func.count(ServedReward.id), func.min(ServedReward.created_at),
                   func.max(ServedReward.created_at))
            .group_by(ServedReward.run).order_by(func.max(ServedReward.id).desc())
        ).all()
    return [RewardRun(*row) for row in rows]


@dataclass
class StepSummary:
    """What the reward model told the policy at one step (step None: the whole run)."""

    step: int | None
    requests: int = 0
    rewards: list[float] = field(default_factory=list)  # every scored response's reward
    unscored: int = 0
    samples: int = 0
    failed_samples: int = 0
    rescued_samples: int = 0
    judgements: int = 0  # of two or more responses: those a vote can split
    split: int = 0
    low_margin: int = 0
    first_shown_wins: int = 0
    strict_wins: int = 0  # samples with a strict winner among two or more responses
    flagged: int = 0  # responses that look like they try to steer the judge
    _request_ids: set[str] = field(default_factory=set, repr=False)

    @property
    def responses(self) -> int:
        return len(self.rewards) + self.unscored

    @property
    def mean(self) -> float | None:
        return sum(self.rewards) / len(self.rewards) if self.rewards else None

    @staticmethod
    def rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    def figures(self) -> dict[str, float | int | None]:
        """The step's figures by name, rates as fractions (None: nothing to count)."""
        cuts = self.quantiles()
        return {
            "step": self.step, "requests": self.requests, "responses": self.responses,
            "unscored": self.unscored, "mean": self.mean,
            "p10": cuts[0] if cuts else None, "p50": cuts[1] if cuts else None,
            "p90": cuts[2] if cuts else None,
            "parse_failure_rate": self.rate(self.failed_samples, self.samples),
            "rescue_rate": self.rate(self.rescued_samples, self.samples),
            "split_rate": self.rate(self.split, self.judgements),
            "low_margin_rate": self.rate(self.low_margin, self.judgements),
            "first_shown_win_rate": self.rate(self.first_shown_wins, self.strict_wins),
            "flagged_responses": self.flagged,
        }

    def quantiles(self) -> tuple[float, float, float] | None:
        """The 10th, 50th and 90th percentiles of the rewards (None without any)."""
        if not self.rewards:
            return None
        if len(self.rewards) == 1:
            return (self.rewards[0],) * 3
        cuts = statistics.quantiles(self.rewards, n=10, method="inclusive")
        return cuts[0], statistics.median(self.rewards), cuts[-1]


@dataclass(frozen=True)
class RewardSummary:
    run: str
    steps: tuple[StepSummary, ...]  # by step, unstepped (None) last
    total: StepSummary


def reward_summary(engine: Engine, run: str) -> RewardSummary:
    """Per step and for the whole of `run`, the figures of the module docstring."""
    steps: dict[int | None, StepSummary] = {}
    total = StepSummary(step=None)
    with Session(engine) as session:
        served = session.execute(
            select(ServedReward, JudgementRow.margin, JudgementRow.split,
                   JudgementRow.valid_samples, JudgementRow.input)
            .join(JudgementRow, JudgementRow.id == ServedReward.judgement_id)
            .where(ServedReward.run == run).order_by(ServedReward.id)
        ).all()
        samples = _samples(session, [row.ServedReward.judgement_id for row in served])
    for row in served:
        chunk = row.ServedReward
        step = steps.setdefault(chunk.step, StepSummary(step=chunk.step))
        for figures in (step, total):
            _add(figures, chunk, row.margin, row.split, row.valid_samples,
                 row.input["responses"], samples.get(chunk.judgement_id, []))
    ordered = sorted(steps.values(), key=lambda s: (s.step is None, s.step or 0))
    return RewardSummary(run=run, steps=tuple(ordered), total=total)


def _samples(session: Session, judgement_ids: Sequence[int]) -> dict[int, list[SampleRow]]:
    by_judgement: dict[int, list[SampleRow]] = defaultdict(list)
    for start in range(0, len(judgement_ids), 500):
        ids = judgement_ids[start:start + 500]
        for sample in session.scalars(select(SampleRow).where(SampleRow.judgement_id.in_(ids))):
            by_judgement[sample.judgement_id].append(sample)
    return by_judgement


def _add(figures: StepSummary, chunk: ServedReward, margin: int | None, split: bool,
         valid: int, responses: Sequence[str], samples: Sequence[SampleRow]) -> None:
    if chunk.request_id not in figures._request_ids:
        figures._request_ids.add(chunk.request_id)
        figures.requests += 1
    figures.rewards.extend(r for r in chunk.rewards if r is not None)
    figures.unscored += sum(r is None for r in chunk.rewards)
    figures.samples += len(samples)
    figures.failed_samples += sum(s.scores is None for s in samples)
    figures.rescued_samples += sum(s.rescue_used and s.scores is not None for s in samples)
    figures.flagged += len(flagged_responses(responses))
    if len(responses) < 2:
        return
    figures.judgements += 1
    figures.split += split
    figures.low_margin += margin is not None and valid > 0 and margin / valid < LOW_MARGIN
    for sample in samples:
        if sample.scores is not None and (winner := strict_winner(sample.scores)) is not None:
            figures.strict_wins += 1
            figures.first_shown_wins += winner == sample.shown_order[0]


@dataclass(frozen=True)
class CloseVote:
    """A served judgement whose vote was close: worth a human look."""

    judgement_id: int
    step: int | None
    margin: int | None
    valid_samples: int
    split: bool
    tie: bool
    query: str


def close_votes(engine: Engine, run: str, *, limit: int = 50) -> list[CloseVote]:
    """`run`'s served judgements of two or more responses whose vote split, tied or
    was won by less than LOW_MARGIN points per valid sample, the latest first."""
    with Session(engine) as session:
        rows = session.execute(
            select(ServedReward.judgement_id, ServedReward.step, JudgementRow.margin,
                   JudgementRow.valid_samples, JudgementRow.split, JudgementRow.tie,
                   JudgementRow.input)
            .join(JudgementRow, JudgementRow.id == ServedReward.judgement_id)
            .where(ServedReward.run == run, ServedReward.n_responses > 1)
            .order_by(ServedReward.id.desc())
        ).all()
    close = []
    for judgement_id, step, margin, valid, split, tie, item in rows:
        low = margin is not None and valid > 0 and margin / valid < LOW_MARGIN
        if (split or tie or low) and len(item["responses"]) > 1:
            close.append(CloseVote(judgement_id, step, margin, valid, split, tie, item["query"]))
        if len(close) >= limit:
            break
    return close


def annotation_dataset(run: str) -> str:
    """The dataset that `send_to_annotation` puts `run`'s items in."""
    return f"rewards-{run}"[:200]


def send_to_annotation(engine: Engine, run: str, judgement_ids: Sequence[int]) -> list[int]:
    """Make each of `run`'s served judgements `judgement_ids` an item of dataset
    `annotation_dataset(run)` (created on first use; an item already there is
    reused) and the judgement that item's, so that they show in the annotation
    queues with the judge's samples, and their labels count as any other
    (evaluation, RFT). Returns the item ids; InputError for an id that is not a
    served judgement of `run`."""
    with Session(engine) as session, session.begin():
        served = dict(session.execute(
            select(ServedReward.judgement_id, ServedReward.step)
            .where(ServedReward.run == run, ServedReward.judgement_id.in_(list(judgement_ids)))
        ).all())
        missing = [i for i in judgement_ids if i not in served]
        if missing:
            raise InputError(f"judgement(s) {', '.join(map(str, missing[:5]))} are not rewards "
                             f"served to run '{run}'")
        ds = dataset_id(session, annotation_dataset(run), create=True)
        items = []
        for judgement_id in judgement_ids:
            row = session.get_one(JudgementRow, judgement_id)
            judged = JudgeInput.model_validate(row.input)
            context = [t.model_dump() for t in judged.context]
            digest = content_hash(judged.query, context, judged.responses)
            item_id = session.scalar(
                select(Item.id).where(Item.dataset_id == ds, Item.content_hash == digest))
            if item_id is None:
                item = Item(dataset_id=ds, external_id=f"judgement-{judgement_id}",
                            category=None if served[judgement_id] is None else f"step-{served[judgement_id]}", query=judged.query,
                            context=context, responses=list(judged.responses),
                            n_responses=len(judged.responses), content_hash=digest)
                session.add(item)
                session.flush()
                item_id = item.id
            row.item_id = item_id
            items.append(item_id)
    return items

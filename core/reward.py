"""The voted GRM as the reward function of an RL run: what a reward is, how a
group of responses is judged, and judging and saving what a reward server serves.

    request = RewardRequest(query="...", responses=("a", "b", "c", "d"), run="grpo-1", step=3)
    (result,) = serve_rewards(engine, judge, [RewardJob(request, params)])
    result.rewards                    # (7.25, 3.5, None, 9.0): None is unscored, never 0

**The reward of a response** is its mean score over the valid samples of the
judgement that scored it (the vote's `means`: its summed score over the valid
samples, divided by their number), on the template's score scale: integers
1..10 with the built-in templates, so a reward lies in [1, 10]. `unit_reward`
maps it onto [0, 1] for frameworks that want that. The mean, not the sum, so
that rewards stay on one scale when samples fail. With meta-guided voting the
mean is over the samples the meta RM keeps.

**Unscored** is a value: a response none of whose samples could be parsed gets
`reward` None, status "unscored" and the reason (the parse failures' kinds).
Nothing here turns it into 0; the front says what the client gets.

**Group judging** (mode "group", the default): the responses to one prompt (a
GRPO group) are judged together with the multi-response template, every
sample showing them in its own seeded shuffle (`core.engine`), so that their
rewards come from one comparison. A group larger than the template takes
(`PromptTemplate.max_responses`, 9) is cut into the fewest balanced chunks, in
order (10 responses: 5 + 5); each chunk is one judgement, and rewards are
comparable within a chunk, less so across chunks. **Single** (mode "single"):
each response is judged alone with the single-response template.

A reference answer, when given, goes to the judge as `JudgeInput.reference`: the
engine judges with its template's reference variant (`core.templates`), as every
front does. Every served request is saved
(judgements and their `served_reward` rows, tagged with run and step) when
`sampled(request_id, sample_rate)` says so.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.engine import Judge
from core.errors import InputError
from core.store.judgements import save_judgement
from core.store.rewards import ServedChunk, save_served
from core.templates import POINTWISE, TEMPLATES
from core.types import Frozen, JudgeInput, Judgement, SamplingParams, Turn, Vote

if TYPE_CHECKING:
    from core.service import StoredMetaScorer
    from core.training.meta_vote import MetaGuidedVote

RewardMode = Literal["group", "single"]
RewardVoting = Literal["sum", "meta"]


class RewardRequest(Frozen):
    """One prompt and the responses to reward (a GRPO group, or a single response)."""

    query: str = Field(description="the user's query the responses answer")
    responses: tuple[str, ...] = Field(min_length=1, description="the responses to reward")
    reference: str | None = Field(None, description="a reference answer shown to the judge")
    context: tuple[Turn, ...] = Field((), description="earlier turns of the conversation")
    mode: RewardMode = Field("group", description="judge the responses together, or each alone")
    voting: RewardVoting = Field("sum", description="'sum': the plain vote; 'meta': meta-guided")
    run: str = Field("default", min_length=1, max_length=200, description="the RL run's name")
    step: int | None = Field(None, ge=0, lt=2**31, description="the RL run's step")


@dataclass(frozen=True)
class RewardJob:
    """A request as the server judges it: its sampling and where it came from."""

    request: RewardRequest
    params: SamplingParams
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    endpoint: str = "v1"  # the route that took it: v1 | openrlhf

    @property
    def size(self) -> int:
        """Judge inputs (judgements) this job takes: what a batch is counted in."""
        n = len(self.request.responses)
        return n if self.request.mode == "single" else len(chunk_sizes(n, POINTWISE.max_responses))


class ResponseReward(Frozen):
    """The reward of one response of a request."""

    reward: float | None = Field(description="mean vote score on the scale; None: unscored")
    status: Literal["scored", "unscored"]
    reason: str | None = Field(None, description="why it is unscored")
    scores: tuple[int, ...] = Field(description="its score in each valid (or kept) sample")
    judgement: int = Field(description="index in RewardResult.judgements of the one that scored it")


class ChunkVote(Frozen):
    """One judgement of a request: which responses it covered and how its vote went."""

    judgement_id: int | None = Field(description="the stored judgement; None when not sampled")
    responses: tuple[int, ...] = Field(description="request indices, in the judgement's order")
    totals: tuple[int, ...]
    winner: int | None = Field(description="request index of the winner; None without valid samples")
    margin: int | None
    tie: bool
    split: bool
    valid_samples: int
    invalid_samples: int
    rescued_samples: int
    failure_kinds: tuple[str, ...] = Field(description="parse failure kind of each invalid sample")


class RewardResult(Frozen):
    """What a reward server answers for one request."""

    request_id: str
    run: str
    step: int | None
    mode: RewardMode
    voting: RewardVoting
    scale: tuple[int, int] = Field(description="the score range rewards lie in")
    responses: tuple[ResponseReward, ...]
    judgements: tuple[ChunkVote, ...]
    stored: bool = Field(description="the judgements were saved (the sample rate chose it)")

    @property
    def rewards(self) -> tuple[float | None, ...]:
        return tuple(r.reward for r in self.responses)

    @property
    def unit_rewards(self) -> tuple[float | None, ...]:
        """The rewards on [0, 1] (`unit_reward`)."""
        return tuple(None if r is None else unit_reward(r, self.scale) for r in self.rewards)


def chunk_sizes(n_responses: int, limit: int) -> list[int]:
    """The fewest chunks of at most `limit` responses, their sizes differing by one at most."""
    chunks = -(-n_responses // limit)
    base, extra = divmod(n_responses, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)]


def plan_chunks(request: RewardRequest, judge: Judge) -> list[tuple[tuple[int, ...], JudgeInput]]:
    """(request indices, judge input) per judgement the request takes (module docstring)."""
    n = len(request.responses)
    groups: list[tuple[int, ...]]
    if request.mode == "single":
        groups = [(i,) for i in range(n)]
    else:
        limit = judge.template_for(max(n, 2)).max_responses
        groups, start = [], 0
        for size in chunk_sizes(n, limit):
            groups.append(tuple(range(start, start + size)))
            start += size
    reference = request.reference if request.reference and request.reference.strip() else None
    return [(g, JudgeInput(query=request.query, responses=tuple(request.responses[i] for i in g),
                           context=request.context, reference=reference)) for g in groups]


def unit_reward(reward: float, scale: tuple[int, int]) -> float:
    """`reward` on its scale mapped onto [0, 1] (low -> 0, high -> 1)."""
    low, high = scale
    return (reward - low) / (high - low)


def sampled(request_id: str, rate: float) -> bool:
    """Whether request `request_id` is saved at sample rate `rate` (0..1): decided by
    its id alone, so that every replica decides alike and the choice can be checked."""
    if rate >= 1.0:
        return True
    digest = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big")
    return digest / 2**64 < rate


@dataclass(frozen=True)
class _Judged:
    """One judgement of a job, with its meta-guided vote when asked for."""

    indices: tuple[int, ...]
    judgement: Judgement
    meta: MetaGuidedVote | None = None

    @property
    def vote(self) -> Vote:
        return self.meta.vote if self.meta is not None else self.judgement.vote


def judge_jobs(
    judge: Judge, jobs: Sequence[RewardJob], *, meta: StoredMetaScorer | None = None,
) -> list[list[_Judged] | InputError]:
    """Judge every job's chunks, those with the same sampling in one `judge_many`
    call; per job its judgements, or the InputError that kept it from being judged."""
    planned: list[list[tuple[tuple[int, ...], JudgeInput]] | InputError] = []
    for job in jobs:
        if job.request.voting == "meta" and meta is None:
            planned.append(InputError("voting 'meta' needs a meta reward model: start the "
                                      "server with --meta PATH (train one with `grm-studio "
                                      "meta train`)"))
        else:
            planned.append(plan_chunks(job.request, judge))
    outcomes: dict[tuple[int, int], Judgement | InputError] = {}
    for params in {job.params for job in jobs}:
        keys = [(j, c) for j, (job, plan) in enumerate(zip(jobs, planned, strict=True))
                if job.params == params and not isinstance(plan, InputError)
                for c in range(len(plan))]
        inputs = [_chunk(planned, j, c)[1] for j, c in keys]
        outcomes.update(zip(keys, judge.judge_many(inputs, params), strict=True))
    results: list[list[_Judged] | InputError] = []
    for j, (job, plan) in enumerate(zip(jobs, planned, strict=True)):
        if isinstance(plan, InputError):
            results.append(plan)
            continue
        judged = [outcomes[(j, c)] for c in range(len(plan))]
        error = next((o for o in judged if isinstance(o, InputError)), None)
        if error is not None:
            results.append(error)
            continue
        results.append([
            _Judged(indices, judgement, _meta_vote(meta, judgement, job.request.voting))
            for (indices, _), judgement in zip(plan, judged, strict=True)
            if isinstance(judgement, Judgement)
        ])
    return results


def _chunk(planned: Sequence[object], job: int, chunk: int) -> tuple[tuple[int, ...], JudgeInput]:
    plan = planned[job]
    assert isinstance(plan, list)
    return plan[chunk]


def _meta_vote(meta: StoredMetaScorer | None, judgement: Judgement,
               voting: RewardVoting) -> MetaGuidedVote | None:
    if voting != "meta" or meta is None:
        return None
    from core.service import meta_vote

    return meta_vote(meta, judgement)


def serve_rewards(
    engine: Engine, judge: Judge, jobs: Sequence[RewardJob], *,
    sample_rate: float = 1.0, meta: StoredMetaScorer | None = None,
) -> list[RewardResult | InputError]:
    """Judge `jobs` together (`judge_jobs`), save each sampled one (its judgements and
    their `served_reward` rows, in one transaction) and give each its rewards, or
    the InputError that kept it from being judged. A failure of the judge itself
    (BackendError, ...) is raised for the whole batch."""
    results: list[RewardResult | InputError] = []
    for job, judged in zip(jobs, judge_jobs(judge, jobs, meta=meta), strict=True):
        if isinstance(judged, InputError):
            results.append(judged)
            continue
        ids: list[int | None] = [None] * len(judged)
        stored = sampled(job.request_id, sample_rate)
        if stored:
            ids = list(_save(engine, job, judged))
            if meta is not None:
                _save_meta(engine, meta, judged, ids)
        results.append(_result(job, judged, ids, stored))
    return results


def _save(engine: Engine, job: RewardJob, judged: Sequence[_Judged]) -> list[int]:
    request = job.request
    with Session(engine) as session, session.begin():
        ids = [save_judgement(session, j.judgement) for j in judged]
        save_served(session, [
            ServedChunk(request_id=job.request_id, judgement_id=judgement_id, run=request.run,
                        step=request.step, endpoint=job.endpoint, mode=request.mode,
                        voting=request.voting, responses=j.indices,
                        rewards=tuple(j.vote.means), n_responses=len(request.responses))
            for judgement_id, j in zip(ids, judged, strict=True)
        ])
    return ids


def _save_meta(engine: Engine, meta: StoredMetaScorer, judged: Sequence[_Judged],
               ids: Sequence[int | None]) -> None:
    from core.store.meta_scores import save_meta_scores

    meta_id = None
    for j, judgement_id in zip(judged, ids, strict=True):
        if j.meta is not None and judgement_id is not None:
            meta_id = meta.register(engine) if meta_id is None else meta_id
            save_meta_scores(engine, judgement_id, j.meta.meta_scores, meta_model_id=meta_id)


def _result(job: RewardJob, judged: Sequence[_Judged], ids: Sequence[int | None],
            stored: bool) -> RewardResult:
    request = job.request
    by_response: dict[int, ResponseReward] = {}
    chunks = []
    for position, (j, judgement_id) in enumerate(zip(judged, ids, strict=True)):
        vote = j.vote
        kinds = tuple(s.parse.kind.value for s in j.judgement.samples if s.scores is None
                      and s.parse.status == "failed")
        for local, index in enumerate(j.indices):
            mean = vote.means[local]
            by_response[index] = ResponseReward(
                reward=mean, status="scored" if mean is not None else "unscored",
                reason=None if mean is not None else _unscored_reason(j.judgement, kinds),
                scores=vote.distribution[local], judgement=position)
        chunks.append(ChunkVote(
            judgement_id=judgement_id, responses=j.indices, totals=vote.totals,
            winner=None if vote.winner is None else j.indices[vote.winner],
            margin=vote.margin, tie=vote.tie, split=vote.split,
            valid_samples=vote.valid_samples, invalid_samples=vote.invalid_samples,
            rescued_samples=j.judgement.rescued_samples, failure_kinds=kinds))
    return RewardResult(
        request_id=job.request_id, run=request.run, step=request.step, mode=request.mode,
        voting=request.voting, scale=_scale(judged[0].judgement),
        responses=tuple(by_response[i] for i in range(len(request.responses))),
        judgements=tuple(chunks), stored=stored)


def _scale(judgement: Judgement) -> tuple[int, int]:
    template = TEMPLATES.get(judgement.template.name)
    return template.score_range if template is not None else (1, 10)


def _unscored_reason(judgement: Judgement, kinds: Sequence[str]) -> str:
    kept = judgement.vote.valid_samples
    if kept:  # valid samples exist, but the meta RM kept none of them
        return "the meta reward model kept no valid sample"
    counted = ", ".join(sorted({f"{kinds.count(k)} {k}" for k in kinds})) or "none"
    return (f"none of the {len(judgement.samples)} sample(s) could be parsed "
            f"(failures: {counted})")

"""Typed data objects of a judgement: what goes in, what each sample said, the vote.

Every object is an immutable pydantic model so that it validates on the way in
and serialises to JSON (CLI `--json`, the store) without hand-written code.
Parse failures and ties are explicit values here, never a default score.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Turn(Frozen):
    """One earlier turn of the conversation, shown to the judge as context."""

    role: Literal["system", "user", "assistant"]
    content: str


class JudgeInput(Frozen):
    """A query, its earlier turns and the responses to judge (original order), and a
    reference answer when there is one."""

    query: str
    responses: tuple[str, ...]
    context: tuple[Turn, ...] = ()
    reference: str | None = Field(
        None, description="a reference answer the judge checks the responses against "
        "(shown by a '-reference' template, `core.templates`); None: none")

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without a reference, the dump is the one from before references existed
        (no `reference` key), so stored inputs and exports stay byte for byte the same."""
        data: dict[str, Any] = handler(self)
        if self.reference is None:
            data.pop("reference", None)
        return data


class SamplingParams(Frozen):
    """How the k samples of one judgement are drawn."""

    k: int = Field(1, ge=1, le=256, description="number of sampled judgements")
    temperature: float = Field(0.5, ge=0.0, le=5.0, description="0 means greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(512, ge=1, le=32768)
    seed: int = Field(0, ge=0, description="seeds the response shuffles and the sampler")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class ParseErrorKind(StrEnum):
    EMPTY = "empty"
    NO_SCORES = "no_scores"
    WRONG_COUNT = "wrong_count"
    OUT_OF_RANGE = "out_of_range"
    NOT_INTEGER = "not_integer"
    TRUNCATED = "truncated"


class ParsedOutput(Frozen):
    """A completion from which one integer score per response was extracted."""

    status: Literal["ok"] = "ok"
    principles: str | None = Field(None, description="the 'Specific Criteria' section")
    critique: str | None = Field(None, description="the 'Analysis' section")
    scores: tuple[int, ...] = Field(description="one score per response, in SHOWN order")
    score_format: str = Field(description="which written form the scores were found in")
    missing_sections: tuple[str, ...] = ()


class ParseFailure(Frozen):
    """A completion whose scores could not be extracted; the reason is kept."""

    status: Literal["failed"] = "failed"
    kind: ParseErrorKind
    reason: str
    principles: str | None = None
    critique: str | None = None
    found_scores: tuple[float, ...] | None = Field(
        None, description="numbers that were found but could not be used (wrong count, range)"
    )


ParseResult = Annotated[ParsedOutput | ParseFailure, Field(discriminator="status")]


class Completion(Frozen):
    """What a backend returns for one generated sequence."""

    text: str
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Rescue(Frozen):
    """Record of a score rescue: the sample failed to parse, so the model was asked
    to write only the numbers after a forced scores-line prefix."""

    original_failure: ParseFailure
    prefix: str
    continuation: str


class Sample(Frozen):
    """One sampled judgement: the responses in its own shuffled order."""

    index: int
    shown_order: tuple[int, ...] = Field(
        description="shown_order[j] is the ORIGINAL index of the response shown as Response j+1"
    )
    prompt: str
    raw_text: str
    finish_reason: Literal["stop", "length"]
    parse: ParseResult
    rescue: Rescue | None = None
    scores: tuple[int, ...] | None = Field(
        None, description="scores in ORIGINAL response order; None when the sample is invalid"
    )
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def valid(self) -> bool:
        return self.scores is not None


class Vote(Frozen):
    """The vote over the valid samples of one judgement (paper: sum of scores)."""

    totals: tuple[int, ...] = Field(description="summed score per response")
    means: tuple[float | None, ...]
    distribution: tuple[tuple[int, ...], ...] = Field(
        description="per response, its score in each valid sample"
    )
    valid_samples: int
    invalid_samples: int
    top: tuple[int, ...] = Field(description="responses sharing the highest total")
    tie: bool = Field(description="more than one response has the highest total: not a win")
    winner: int | None = Field(
        description="highest total; on a tie, the first of `top` in `tie_break_order`; "
        "None without valid samples"
    )
    tie_break_order: tuple[int, ...] | None = Field(
        None, description="the recorded shuffle whose first tied entry broke the tie"
    )
    runner_up: int | None = None
    margin: int | None = Field(None, description="winner's total minus the runner-up's")
    sample_winners: tuple[int | None, ...] = Field(
        description="per valid sample, its strict winner (None when that sample ties)"
    )
    split: bool = Field(description="valid samples disagree on the winner")


class TemplateRef(Frozen):
    name: str
    sha256: str


class ModelInfo(Frozen):
    """Which judge produced a judgement, precisely enough to reproduce it."""

    name: str
    backend: str
    source: str = Field(description="path, file or URL the weights came from")
    revision: str | None = Field(None, description="file hash or revision")
    context_length: int | None = None


class Judgement(Frozen):
    """Everything one call to `judge` produced."""

    input: JudgeInput
    template: TemplateRef
    model: ModelInfo
    params: SamplingParams
    rescue_enabled: bool
    reply_prefix: str = Field("", description="text every reply was forced to start with")
    samples: tuple[Sample, ...]
    vote: Vote
    created_at: datetime
    seconds: float

    @property
    def failed_samples(self) -> int:
        return sum(not s.valid for s in self.samples)

    @property
    def rescued_samples(self) -> int:
        return sum(s.rescue is not None for s in self.samples)

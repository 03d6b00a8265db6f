"""What one evaluation run is, as the store keeps it and the fronts show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from core.evaluation.metrics import MethodResult
from core.insights import PositionBias
from core.references import ReferenceMode, run_references

RunStatus = Literal["running", "finished", "failed", "interrupted"]


@dataclass(frozen=True)
class EvalRun:
    """One `grm-studio eval` run: which data, which judge, which settings, how it went."""

    id: int
    dataset: str
    judge: str  # the judge model's name
    params: dict[str, Any]  # ks, votings, sampling settings, template, rescue, limit, ...
    status: RunStatus
    considered: int  # items of the dataset the run looked at (after --limit)
    evaluated: int  # of those, items with a label and a judgement
    excluded: tuple[tuple[str, int], ...]  # (reason, items), e.g. ("unlabelled", 3)
    created_at: datetime
    finished_at: datetime | None
    error: str | None = None

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(self.params.get("ks", ()))

    @property
    def references(self) -> ReferenceMode:
        """Whether items' reference answers were shown to the judge (`core.references`)."""
        return run_references(self.params)


@dataclass(frozen=True)
class Evaluation:
    """A run and its results: every method at every k, on all items and per category."""

    run: EvalRun
    results: tuple[MethodResult, ...]
    position_bias: PositionBias | None  # over the sampled judgements' valid samples

    def overall(self) -> tuple[MethodResult, ...]:
        """The results over every evaluated item (no category split)."""
        return tuple(r for r in self.results if r.category is None)

    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.category for r in self.results if r.category is not None))

"""Judge against judge: two judges' verdicts on the same labelled items, item by item.

A side of the comparison is an evaluation run (its judgements: the run's judge
with the run's settings) or a registered judge model (its latest judgement of
each item), read as the vote over all of a judgement's samples or over its
first k (`SideSpec`):

    run:3        evaluation run 3, voting over its k_max samples (also `#3`, `3`)
    run:3@1      the same judgements, the first sample alone
    judge:NAME   judge model NAME's latest judgement of each item (`judge:2`: by id;
                 a bare NAME works too)

The figures, over the items both sides judged that have a best response by the
one label rule (`core.labels`; items labelled a tie are left out, as evaluation
does; comparing a run with reference answers shown against one with them hidden,
so are the items without a reference, `core.references`): each side's accuracy by the strict rule (a tie is wrong; Wilson 95% CI),
the paired difference A - B with a bootstrap CI over items
(`core.estimates.paired_difference`), Cohen's kappa between their verdicts (a
tie, or no valid sample, is the verdict "no winner", a category of its own), the
confusion table (both right / only A / only B / both wrong) and the items whose
verdicts differ. Pure computation: the store side is `core.store.verdicts`, the
application layer's `core.service.compare_judges` puts them together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from core.agreement import Label, cohen_kappa, judge_label, strict_correct
from core.errors import InputError
from core.estimates import Estimate, paired_difference, proportion
from core.references import ReferenceMode
from core.types import Judgement
from core.vote import vote

SideKind = Literal["run", "judge"]
Outcome = Literal["both right", "only A right", "only B right", "both wrong"]
OUTCOMES: tuple[Outcome, ...] = ("both right", "only A right", "only B right", "both wrong")
_SPEC = re.compile(r"^(?:(?P<kind>run|judge):|(?P<hash>#))?(?P<ref>.+?)(?:@(?P<k>\d+))?$")


@dataclass(frozen=True)
class SideSpec:
    """A side as a user names it, before the store resolves it."""

    kind: SideKind
    ref: str  # a run id; a judge model's id, name or source
    k: int | None = None  # vote over the first k samples of each judgement; None: all

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.ref}" + (f"@{self.k}" if self.k is not None else "")


def parse_side(raw: str) -> SideSpec:
    """`run:ID`, `#ID` or a bare ID (an evaluation run); `judge:NAME_OR_ID` or a bare
    name (a judge model); `@K` after any of them reads the first K samples only."""
    text = raw.strip()
    match = _SPEC.match(text)
    if not text or match is None or not match["ref"].strip():
        raise InputError(f"'{raw}' names no side: give run:ID (an evaluation run), "
                         "judge:NAME (a judge model), optionally @K (its first K samples)")
    ref, k = match["ref"].strip(), int(match["k"]) if match["k"] else None
    if k is not None and k < 1:
        raise InputError(f"'{raw}': @K reads the first K samples, K from 1")
    kind = match["kind"] or ("run" if match["hash"] or ref.isdigit() else "judge")
    if kind == "run" and not ref.isdigit():
        raise InputError(f"'{raw}': a run is named by its id, e.g. run:3 "
                         "(`grm-studio compare --list` shows them)")
    return SideSpec(kind, ref, k)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Side:
    """A resolved side: which judgements it reads, in words and by id."""

    kind: SideKind
    id: int  # the evaluation run's id, or the judge model's
    judge: str  # the judge model's name
    k: int | None  # vote over the first k samples; None: all of them
    dataset: str | None  # an evaluation run's dataset; None for a judge model
    settings: str  # how its judgements were made, in words (a run's settings)
    references: ReferenceMode | None = None  # a run's: items' reference answers shown or
    # hidden to its judge (`core.references`); None for a judge model (as it judged them)

    @property
    def label(self) -> str:
        """E.g. 'run #3 (embedded, k=8, T=0.5; first sample only)'."""
        reading = ("" if self.k is None else "; first sample only" if self.k == 1
                   else f"; voting over its first {self.k} samples")
        if self.kind == "run":
            return f"run #{self.id} ({self.judge}, {self.settings}{reading})"
        return f"judge {self.judge} (#{self.id}, {self.settings}{reading})"


@dataclass(frozen=True)
class Verdict:
    """One side's verdict on one item: its judgement, read over `samples` samples."""

    judgement_id: int
    totals: tuple[int, ...]  # the vote's summed scores over the valid samples read
    samples: int  # samples read (the first k, or all)
    valid: int  # of those, samples with usable scores

    @property
    def winner(self) -> Label:
        """The strict winner of the vote; None: a tie at the top, or no valid sample."""
        return judge_label(self.totals)  # no valid sample: totals all 0, a tie


@dataclass(frozen=True)
class PairedVerdict:
    """Both sides' verdicts on one labelled item."""

    item_id: int
    category: str | None
    best: int  # the labelled best response (`core.labels`)
    a: Verdict
    b: Verdict

    @property
    def correct_a(self) -> bool:
        return strict_correct(self.a.totals, self.best)  # no valid sample: a 0-0 tie, wrong

    @property
    def correct_b(self) -> bool:
        return strict_correct(self.b.totals, self.best)

    @property
    def outcome(self) -> Outcome:
        if self.correct_a:
            return "both right" if self.correct_b else "only A right"
        return "only B right" if self.correct_b else "both wrong"

    @property
    def differs(self) -> bool:
        """The two verdicts name different winners (or one names none)."""
        return self.a.winner != self.b.winner


@dataclass(frozen=True)
class Confusion:
    """How many items each side gets right (strict rule), crossed."""

    both_right: int
    only_a: int
    only_b: int
    both_wrong: int


@dataclass(frozen=True)
class JudgeComparison:
    """Two sides on one dataset's labelled items."""

    dataset: str
    a: Side
    b: Side
    items: tuple[PairedVerdict, ...]  # every item both sides judged that has a best response
    excluded: tuple[tuple[str, int], ...]  # (why, items) for the dataset's other items
    accuracy_a: Estimate  # strict rule, Wilson 95% CI
    accuracy_b: Estimate
    difference: Estimate  # accuracy A - B, paired bootstrap 95% CI over items
    kappa: Estimate  # Cohen's kappa between the two verdicts ("no winner" a category)
    confusion: Confusion

    @property
    def differing(self) -> tuple[PairedVerdict, ...]:
        """The items whose two verdicts differ, in item order."""
        return tuple(p for p in self.items if p.differs)

    def record(self) -> dict[str, Any]:
        """The comparison as plain JSON-able data (`--json`): the figures, and the
        items whose verdicts differ."""
        def estimate(e: Estimate) -> dict[str, Any]:
            return {"value": e.value, "low": e.low, "high": e.high, "n": e.n, "note": e.note}

        def side(s: Side) -> dict[str, Any]:
            return {"kind": s.kind, "id": s.id, "judge": s.judge, "k": s.k,
                    "settings": s.settings, "references": s.references, "label": s.label}

        return {
            "dataset": self.dataset, "a": side(self.a), "b": side(self.b),
            "items": len(self.items), "excluded": dict(self.excluded),
            "accuracy_a": estimate(self.accuracy_a), "accuracy_b": estimate(self.accuracy_b),
            "difference": estimate(self.difference), "kappa": estimate(self.kappa),
            "confusion": self.confusion.__dict__,
            "differing": [{
                "item_id": p.item_id, "category": p.category, "best": p.best,
                "outcome": p.outcome, "winner_a": p.a.winner, "winner_b": p.b.winner,
                "judgement_a": p.a.judgement_id, "judgement_b": p.b.judgement_id,
            } for p in self.differing],
        }


def compare(
    dataset: str, a: Side, b: Side, items: tuple[PairedVerdict, ...],
    excluded: tuple[tuple[str, int], ...] = (), *, seed: int = 0,
) -> JudgeComparison:
    """The figures of `items`, both sides' verdicts on the same labelled items."""
    right_a = [p.correct_a for p in items]
    right_b = [p.correct_b for p in items]
    counts = {o: sum(p.outcome == o for p in items) for o in OUTCOMES}
    return JudgeComparison(
        dataset=dataset, a=a, b=b, items=items, excluded=excluded,
        accuracy_a=proportion(sum(right_a), len(items), empty="no item judged by both"),
        accuracy_b=proportion(sum(right_b), len(items), empty="no item judged by both"),
        difference=paired_difference(right_a, right_b, seed=seed),
        kappa=cohen_kappa([p.a.winner for p in items], [p.b.winner for p in items], seed=seed),
        confusion=Confusion(*counts.values()),
    )


def first_samples(judgement: Judgement, k: int | None) -> Judgement:
    """`judgement` as a side that reads its first k samples sees it: those samples and
    their vote (the whole judgement for None, or k past its samples)."""
    if k is None or k >= len(judgement.samples):
        return judgement
    samples = judgement.samples[:k]
    counted = vote([s.scores for s in samples], len(judgement.input.responses),
                   seed=judgement.params.seed)
    return judgement.model_copy(update={
        "samples": samples, "vote": counted,
        "params": judgement.params.model_copy(update={"k": k})})

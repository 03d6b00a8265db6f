"""How far to trust one vote: a verdict is strong, moderate or weak, and the reasons why.

The one rule every front that shows a verdict uses (the web cards, the CLI
report). It reads four things of a judgement:

- agreement: the share of valid samples whose own strict winner is the vote's
  winner (a sample that ties at its top does not agree);
- rescue share: the valid samples whose scores a rescue pass wrote, because the
  model did not write the score line itself (`Sample.rescue`);
- parse failures: the samples left without usable scores;
- the margin against its noise: the winner's summed lead over the runner-up,
  against the standard error of that sum from the samples' own leads
  (sqrt(n) times their standard deviation).

Each of them past a threshold below is a reason. The verdict is weak when any
reason is weak, moderate when any is moderate, strong otherwise. A tie, and a
vote without a valid sample, is weak: there is no winner to trust (the card
still says TIE or NO WINNER).
"""

from __future__ import annotations

import math
import statistics
from enum import StrEnum

from pydantic import Field

from core.types import Frozen, Judgement, Sample, Vote

WEAK_AGREEMENT = 0.5  # at most this share of valid samples pick the winner: weak
STRONG_AGREEMENT = 0.75  # fewer than this share: moderate
WEAK_RESCUE_SHARE = 0.5  # at least this share of valid samples rescued: weak; any: moderate
WEAK_FAILURE_SHARE = 0.5  # at least this share of samples without scores: weak; any: moderate
WEAK_MARGIN_NOISE = 1.0  # a margin below 1 standard error of the sum: weak
STRONG_MARGIN_NOISE = 2.0  # below 2 standard errors: moderate


class ConfidenceLevel(StrEnum):
    STRONG = "strong"
    MODERATE = "moderate"
    WEAK = "weak"


class VerdictConfidence(Frozen):
    """How far to trust a judgement's vote, with the numbers the level comes from."""

    level: ConfidenceLevel
    reasons: tuple[str, ...] = Field(
        description="why the level is not strong, the weak reasons first; empty when strong"
    )
    samples: int = Field(description="samples drawn (k)")
    valid: int = Field(description="samples with usable scores (the vote counts these)")
    failed: int = Field(description="samples without usable scores")
    rescued: int = Field(description="valid samples whose scores a rescue pass wrote")
    agreeing: int | None = Field(
        None, description="valid samples whose own strict winner is the vote's winner; "
        "None without a strict winner or with one response"
    )
    margin: int | None = Field(None, description="the vote's margin in summed score points")
    margin_noise: float | None = Field(
        None, description="standard error of the summed margin (sqrt(n) x the standard "
        "deviation of the samples' own leads); None under two valid samples"
    )

    @property
    def sentence(self) -> str:
        """The level in words, e.g. '4 of 4 samples needed a score rescue: this verdict
        is weak.'"""
        if self.reasons:
            why = "; ".join(self.reasons)
        elif self.agreeing is None:
            why = "every sample wrote its own scores"
        else:
            why = (f"{self.agreeing} of {self.valid} samples pick the winner on their own, "
                   "none needed a score rescue and the margin is clear of the noise")
        return f"{why[0].upper()}{why[1:]}: this verdict is {self.level}."


def is_rescued(sample: Sample) -> bool:
    """The sample's scores were written by a rescue pass, not by the model's own reply."""
    return sample.rescue is not None and sample.valid


def verdict_confidence(judgement: Judgement) -> VerdictConfidence:
    """How far to trust `judgement.vote` (the module docstring has the rule)."""
    vote, samples = judgement.vote, judgement.samples
    reasons: list[tuple[ConfidenceLevel, str]] = []
    valid = vote.valid_samples
    rescued = sum(is_rescued(s) for s in samples)
    failed = sum(not s.valid for s in samples)
    of_valid = f"{valid}" if valid == len(samples) else f"the {valid} valid"
    if rescued:
        level = _at_least(rescued / valid, WEAK_RESCUE_SHARE)
        reasons.append((level, f"{rescued} of {of_valid} samples needed a score rescue"))
    if failed:
        level = _at_least(failed / len(samples), WEAK_FAILURE_SHARE)
        reasons.append((level, f"{failed} of {len(samples)} samples gave no usable scores"))
    if vote.tie:
        reasons.append((ConfidenceLevel.WEAK, "the vote is tied at the top"))
    agreeing = _agreeing(vote)
    if agreeing is not None and valid == 1:
        reasons.append((ConfidenceLevel.MODERATE,
                        "only 1 valid sample, nothing to check its verdict against"))
    elif agreeing is not None:
        reasons += _agreement_reason(agreeing, valid)
    noise = _margin_noise(vote)
    if noise is not None and vote.margin is not None and not vote.tie:
        reasons += _margin_reason(vote, noise)
    levels = {level for level, _ in reasons}
    overall = next((lv for lv in (ConfidenceLevel.WEAK, ConfidenceLevel.MODERATE)
                    if lv in levels), ConfidenceLevel.STRONG)
    ordered = [text for lv in (ConfidenceLevel.WEAK, ConfidenceLevel.MODERATE)
               for level, text in reasons if level is lv]
    return VerdictConfidence(
        level=overall, reasons=tuple(ordered), samples=len(samples), valid=valid,
        failed=failed, rescued=rescued, agreeing=agreeing, margin=vote.margin,
        margin_noise=noise,
    )


def _at_least(share: float, weak: float) -> ConfidenceLevel:
    return ConfidenceLevel.WEAK if share >= weak else ConfidenceLevel.MODERATE


def _agreeing(vote: Vote) -> int | None:
    """Valid samples whose strict winner is the vote's; None with no strict vote winner."""
    if vote.winner is None or vote.tie or not vote.sample_winners:
        return None
    return sum(w == vote.winner for w in vote.sample_winners)


def _agreement_reason(agreeing: int, valid: int) -> list[tuple[ConfidenceLevel, str]]:
    share = agreeing / valid
    if share <= WEAK_AGREEMENT:
        who = f"none of the {valid} samples picks" if agreeing == 0 else (
            f"only {agreeing} of {valid} samples pick")
        return [(ConfidenceLevel.WEAK, f"{who} the winner on their own (the samples split)")]
    if share < STRONG_AGREEMENT:
        return [(ConfidenceLevel.MODERATE,
                 f"{agreeing} of {valid} samples pick the winner on their own")]
    return []


def _leads(vote: Vote) -> list[int] | None:
    """Per valid sample, the winner's score minus the runner-up's."""
    if vote.winner is None or vote.runner_up is None:
        return None
    return [a - b for a, b in zip(vote.distribution[vote.winner],
                                  vote.distribution[vote.runner_up], strict=True)]


def _margin_noise(vote: Vote) -> float | None:
    leads = _leads(vote)
    if leads is None or len(leads) < 2:
        return None
    return math.sqrt(len(leads)) * statistics.stdev(leads)


def _margin_reason(vote: Vote, noise: float) -> list[tuple[ConfidenceLevel, str]]:
    margin, leads = vote.margin, _leads(vote) or []
    if margin is None or margin >= STRONG_MARGIN_NOISE * noise:
        return []
    points = f"{margin} point{'' if margin == 1 else 's'}"
    spread = (f"(the samples' own leads for the winner run from {min(leads)} to "
              f"{max(leads)}: ±{noise:.1f} on the sum)")
    if margin < WEAK_MARGIN_NOISE * noise:
        return [(ConfidenceLevel.WEAK,
                 f"the margin of {points} is within the samples' noise {spread}")]
    return [(ConfidenceLevel.MODERATE,
             f"the margin of {points} is under twice the samples' noise {spread}")]

"""Evaluation metrics over judged, labelled items: accuracy at k, rates, position bias.

Pure computation, no store. Every item was judged once with k_max samples (the
engine balances the samples' shown orders) and, optionally, once greedily.
Accuracy at k votes over the item's FIRST k samples; a single sample is the
first sample alone. The strict rule decides (`core.agreement.strict_outcome`,
grm-method.md §2): the labelled best response must get a total strictly above
every other; for a best-of-n item with several correct responses, every
correct response must get a total strictly above every incorrect one. A tie
that decides an item is wrong (`tie_rate` counts them), and so is a vote
without a valid sample (`unscored_rate`). Every accuracy carries the Wilson 95%
CI of `core.agreement.judge_accuracy` (a proportion of items).

Beside it, pairwise accuracy reads the same voted totals as pairs: each correct
response against each incorrect one of the same item (`core.agreement.
pairwise_counts`); a tied pair is wrong. On items of two responses it equals
accuracy; on best-of-n items it is the easier, per-pair view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from core.agreement import Outcome, pairwise_accuracy, pairwise_counts, strict_outcome
from core.confidence import is_rescued
from core.estimates import Estimate, proportion
from core.insights import PositionBias, position_bias_of
from core.labels import Accepted, Source
from core.types import JudgeInput, Judgement, Sample, Vote
from core.vote import meta_guided_vote, strict_winner, vote

Method = Literal["greedy", "single", "vote", "meta"]
Voting = Literal["sum", "meta"]
VOTINGS: tuple[Voting, ...] = ("sum", "meta")
METHOD_ORDER: dict[str, int] = {"greedy": 0, "single": 1, "vote": 2, "meta": 3}
NO_CATEGORY = ""  # the category of an item without one, in per-category results


class MetaScorer(Protocol):
    """Rates each sample of a judgement on its own: the probability that it is correct
    (a meta reward model, grm-method.md §3), one number per sample, higher is better.
    `core.training.meta_rm.MetaRewardModel` is one."""

    def score(self, item: JudgeInput, samples: Sequence[Sample]) -> list[float]: ...


@dataclass(frozen=True)
class EvalItem:
    """One labelled item and the judgements an evaluation votes over."""

    item_id: int
    category: str | None
    best: int | Accepted  # the labelled best response, or a best-of-n item's correct ones
    # (items labelled a tie are not evaluated)
    label_source: Source  # whose majority decided the label (`core.labels`)
    sampled: Judgement | None  # k_max samples; None when the item could not be judged
    greedy: Judgement | None = None  # temperature 0, one sample
    meta_scores: tuple[float | None, ...] = ()  # stored per sampled sample, if any
    meta_model_ids: tuple[int | None, ...] = ()  # the meta RM that wrote each
    has_reference: bool = False  # the item has a reference answer (shown or not)


@dataclass(frozen=True)
class MethodResult:
    """The accuracy of one way of reading the judge (method at k) on one scope."""

    method: Method  # greedy | single (first sample) | vote (sum of k) | meta (meta-guided @k)
    k: int  # samples drawn per item (greedy and single: 1)
    category: str | None  # None: every evaluated item; NO_CATEGORY: items without one
    accuracy: Estimate  # strict rule, Wilson 95% CI; n = items scored
    correct: int
    pairwise: Estimate  # correct-vs-incorrect response pairs ordered right; n = pairs
    pairs_correct: int  # of those pairs
    samples: int  # samples this method read, over all its items
    parse_failure_rate: float | None  # samples whose own text gave no usable scores
    rescue_rate: float | None  # samples that failed to parse and were rescued
    invalid_rate: float | None  # samples left without scores (excluded from the vote)
    tie_rate: float | None  # items decided by a tie: a correct and an incorrect response
    # share the deciding total (counted wrong); no valid sample is not a tie
    first_win_rate: float | None  # decisive samples won by the response shown first
    unscored_rate: float | None = None  # items whose vote had no valid sample (wrong)

    @property
    def label(self) -> str:
        return {"greedy": "greedy", "single": "single sample", "vote": f"voting@{self.k}",
                "meta": f"meta-guided@{self.k}"}[self.method]


def parse_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """The distinct values of k, ascending; ValueError on none or a k below 1."""
    if not ks:
        raise ValueError("give at least one k, e.g. 1,8")
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be at least 1, got {tuple(ks)}")
    return tuple(sorted(set(ks)))


def k_meta_for(k: int) -> int:
    """How many samples meta-guided voting keeps out of k (paper default k/2, at least 1)."""
    return max(1, k // 2)


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


@dataclass(frozen=True)
class _Read:
    """One item read one way: its vote and the samples it read."""

    vote: Vote
    best: int | Accepted
    samples: tuple[Sample, ...]

    @property
    def outcome(self) -> Outcome | Literal["unscored"]:
        """The strict rule's verdict on the voted totals; "unscored" without a valid sample."""
        if self.vote.valid_samples == 0:
            return "unscored"
        return strict_outcome(self.vote.totals, self.best)


def _result(method: Method, k: int, category: str | None,
            reads: Sequence[_Read]) -> MethodResult:
    outcomes = [r.outcome for r in reads]
    correct = outcomes.count("correct")
    pairs = [pairwise_counts(r.vote.totals, r.best) for r in reads]
    samples = [s for r in reads for s in r.samples]
    failed = sum(s.rescue is not None or not s.valid for s in samples)
    rescued = sum(is_rescued(s) for s in samples)
    decisive = [s for s in samples if s.scores is not None
                and strict_winner(s.scores) is not None]
    first = sum(s.shown_order[0] == strict_winner(s.scores or ()) for s in decisive)
    return MethodResult(
        method=method, k=k, category=category, accuracy=proportion(correct, len(reads)),
        correct=correct,
        pairwise=pairwise_accuracy([(r.vote.totals, r.best) for r in reads]),
        pairs_correct=sum(right for right, _ in pairs),
        samples=len(samples),
        parse_failure_rate=_rate(failed, len(samples)),
        rescue_rate=_rate(rescued, len(samples)),
        invalid_rate=_rate(sum(not s.valid for s in samples), len(samples)),
        tie_rate=_rate(outcomes.count("tie"), len(reads)),
        first_win_rate=_rate(first, len(decisive)),
        unscored_rate=_rate(outcomes.count("unscored"), len(reads)),
    )


def _meta_scores(item: EvalItem, scorer: MetaScorer | None) -> list[float]:
    """The meta reward of each of the item's k_max samples: from `scorer` (each sample
    is rated on its own, so the first k of them serve every k), else as stored."""
    assert item.sampled is not None
    samples = item.sampled.samples
    if scorer is not None:
        scores = list(scorer.score(item.sampled.input, samples))
        if len(scores) != len(samples):
            raise ValueError(f"the meta scorer gave {len(scores)} scores for "
                             f"{len(samples)} samples (item {item.item_id})")
        return scores
    stored = item.meta_scores
    if len(stored) < len(samples) or any(s is None for s in stored):
        raise ValueError(
            "meta-guided voting needs a meta reward model (or meta scores stored with every "
            f"sample; item {item.item_id} has none): train one with `grm-studio meta train`"
        )
    return [float(s) for s in stored if s is not None]


def _reads(items: Sequence[EvalItem], method: Method, k: int,
           meta: dict[int, list[float]]) -> list[_Read]:
    reads = []
    for item in items:
        judgement = item.greedy if method == "greedy" else item.sampled
        if judgement is None:
            continue
        needed = 1 if method in ("greedy", "single") else k
        samples = judgement.samples[:needed]
        if len(samples) < needed:
            raise ValueError(f"item {item.item_id} has {len(judgement.samples)} sample(s), "
                             f"fewer than k={k}")
        rows = [s.scores for s in samples]
        n = len(judgement.input.responses)
        seed = judgement.params.seed
        if method == "meta":
            result = meta_guided_vote(rows, meta[item.item_id][:k], n,
                                      k_meta=k_meta_for(k), seed=seed)
        else:
            result = vote(rows, n, seed=seed)
        reads.append(_Read(result, item.best, tuple(samples)))
    return reads


def method_plan(ks: Sequence[int], votings: Sequence[Voting]) -> list[tuple[Method, int]]:
    """Which (method, k) an evaluation reports: greedy, the single sample, then
    voting@k and meta-guided@k for each k > 1 (at k = 1 both are the single sample)."""
    plan: list[tuple[Method, int]] = [("greedy", 1), ("single", 1)]
    for k in parse_ks(ks):
        if k > 1 and "sum" in votings:
            plan.append(("vote", k))
        if k > 1 and "meta" in votings:
            plan.append(("meta", k))
    return plan


def accuracy_results(
    items: Sequence[EvalItem],
    ks: Sequence[int],
    votings: Sequence[Voting] = ("sum",),
    *,
    meta_scorer: MetaScorer | None = None,
) -> tuple[MethodResult, ...]:
    """Every method of `method_plan` on all items, then per category (when the items
    fall in two or more; items without one form a group of their own). Methods with
    no judged item are left out (e.g. no greedy run)."""
    unknown = set(votings) - set(VOTINGS)
    if unknown:
        raise ValueError(f"unknown voting {sorted(unknown)}; choose from {', '.join(VOTINGS)}")
    categories = sorted({i.category or NO_CATEGORY for i in items})
    scopes: list[tuple[str | None, list[EvalItem]]] = [(None, list(items))]
    if len(categories) > 1:  # one category for every item would repeat the overall rows
        scopes += [(c, [i for i in items if (i.category or NO_CATEGORY) == c])
                   for c in categories]
    meta = {i.item_id: _meta_scores(i, meta_scorer) for i in items
            if "meta" in votings and i.sampled is not None}
    results = []
    for method, k in method_plan(ks, votings):
        reads = _reads(items, method, k, meta)
        if not reads:
            continue
        by_item = dict(zip([i.item_id for i in items if _judged(i, method)], reads, strict=True))
        for category, scoped in scopes:
            chosen = [by_item[i.item_id] for i in scoped if i.item_id in by_item]
            if chosen:
                results.append(_result(method, k, category, chosen))
    return tuple(results)


def _judged(item: EvalItem, method: Method) -> bool:
    return (item.greedy if method == "greedy" else item.sampled) is not None


def sample_position_bias(judgements: Sequence[Judgement]) -> PositionBias:
    """How often a valid sample's strict winner is the response it showed first
    (the same measure as `core.insights.position_bias`, over these judgements only)."""
    return position_bias_of([
        (s.scores, s.shown_order) for j in judgements if len(j.input.responses) >= 2
        for s in j.samples if s.scores is not None
    ])

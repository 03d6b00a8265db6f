"""Voting over sampled judgements (grm-method.md §3).

The reward of a response is the sum of its scores over the valid samples.
A tie at the top is not a win: it is flagged, and broken by a recorded
shuffle of the responses (the arg max in shuffled order), as the paper does
at evaluation. Invalid samples are excluded and counted, never scored.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from core.types import Vote


def strict_winner(scores: Sequence[float]) -> int | None:
    """The index of the single highest score, or None when the top is shared."""
    best = max(scores)
    top = [i for i, s in enumerate(scores) if s == best]
    return top[0] if len(top) == 1 else None


def tie_break_order(n_responses: int, seed: int) -> tuple[int, ...]:
    order = list(range(n_responses))
    random.Random(f"tie-break:{seed}").shuffle(order)
    return tuple(order)


def vote(rows: Sequence[Sequence[int] | None], n_responses: int, *, seed: int = 0) -> Vote:
    """Vote over `rows`: per sample, its scores in original order, or None if invalid."""
    valid = [tuple(r) for r in rows if r is not None]
    if any(len(r) != n_responses for r in valid):
        raise ValueError(f"every valid row must have {n_responses} scores")
    distribution = tuple(tuple(r[i] for r in valid) for i in range(n_responses))
    totals = tuple(sum(column) for column in distribution)
    means = tuple(sum(c) / len(c) if c else None for c in distribution)
    sample_winners = tuple(strict_winner(r) for r in valid) if n_responses > 1 else ()
    top: tuple[int, ...] = ()  # no valid sample: no top, no winner
    order: tuple[int, ...] | None = None
    winner: int | None = None
    runner_up: int | None = None
    if valid:
        best = max(totals)
        top = tuple(i for i, t in enumerate(totals) if t == best)
        order = tie_break_order(n_responses, seed) if len(top) > 1 else None
        winner = next(i for i in order if i in top) if order else top[0]
        others = [i for i in range(n_responses) if i != winner]
        runner_up = max(others, key=lambda i: totals[i]) if others else None
    return Vote(
        totals=totals,
        means=means,
        distribution=distribution,
        valid_samples=len(valid),
        invalid_samples=len(rows) - len(valid),
        top=top,
        tie=len(top) > 1,
        winner=winner,
        tie_break_order=order,
        runner_up=runner_up,
        margin=(totals[winner] - totals[runner_up]
                if winner is not None and runner_up is not None else None),
        sample_winners=sample_winners,
        split=len(set(sample_winners)) > 1,
    )


def meta_selected(
    rows: Sequence[Sequence[int] | None], meta_scores: Sequence[float], k_meta: int | None = None
) -> tuple[int, ...]:
    """The indices of the `k_meta` valid samples the meta RM rates highest (default:
    half of all samples, at least one); an earlier sample wins an equal rating."""
    if len(meta_scores) != len(rows):
        raise ValueError(f"{len(meta_scores)} meta scores for {len(rows)} samples")
    k_meta = max(1, len(rows) // 2) if k_meta is None else k_meta
    if k_meta < 1:
        raise ValueError("k_meta must be at least 1")
    valid = [i for i, r in enumerate(rows) if r is not None]
    ranked = sorted(valid, key=lambda i: (-meta_scores[i], i))
    return tuple(sorted(ranked[:k_meta]))


def meta_guided_vote(
    rows: Sequence[Sequence[int] | None],
    meta_scores: Sequence[float],
    n_responses: int,
    *,
    k_meta: int | None = None,
    seed: int = 0,
) -> Vote:
    """Meta-guided voting (grm-method.md §3): the plain vote over only the `k_meta`
    valid samples with the highest meta reward; the others count as excluded."""
    chosen = set(meta_selected(rows, meta_scores, k_meta))
    return vote([r if i in chosen else None for i, r in enumerate(rows)], n_responses, seed=seed)

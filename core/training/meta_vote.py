"""Meta-guided voting over one judgement (grm-method.md §3), and what a front
shows of it beside the plain vote. No model here: the meta rewards come in
(`core.training.meta_rm.score_judgement`, or `sample.meta_score` from the store)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field
from sqlalchemy import Engine

from core.types import Frozen, Judgement, Vote
from core.vote import meta_guided_vote, meta_selected


class MetaGuidedVote(Frozen):
    """The vote over the samples the meta RM rates highest, next to the plain vote."""

    meta_model: str | None = Field(None, description="which meta RM gave the rewards")
    k_meta: int = Field(description="how many samples were to be kept (default: k/2)")
    meta_scores: tuple[float, ...] = Field(description="per sample: probability it is correct")
    chosen: tuple[int, ...] = Field(description="indices of the samples voted over")
    vote: Vote = Field(description="the meta-guided vote")
    plain: Vote = Field(description="the plain vote over every valid sample")

    @property
    def changes_winner(self) -> bool:
        return self.vote.winner != self.plain.winner


def meta_guided(
    judgement: Judgement,
    meta_scores: Sequence[float],
    *,
    k_meta: int | None = None,
    meta_model: str | None = None,
) -> MetaGuidedVote:
    """Meta-guided voting for `judgement` with one meta reward per sample."""
    rows = [s.scores for s in judgement.samples]
    k_meta = max(1, len(rows) // 2) if k_meta is None else k_meta
    return MetaGuidedVote(
        meta_model=meta_model,
        k_meta=k_meta,
        meta_scores=tuple(float(m) for m in meta_scores),
        chosen=meta_selected(rows, meta_scores, k_meta),
        vote=meta_guided_vote(
            rows, meta_scores, len(judgement.input.responses), k_meta=k_meta,
            seed=judgement.params.seed,
        ),
        plain=judgement.vote,
    )


def render_meta_guided(view: MetaGuidedVote) -> str:
    """Plain text: the meta rewards, the samples kept and both votes side by side."""
    def totals(v: Vote) -> str:
        cells = "  ".join(f"R{i + 1}={t}" for i, t in enumerate(v.totals)) or "(no valid samples)"
        won = "none" if v.winner is None else f"R{v.winner + 1}" + (" (tie broken)" if v.tie else "")
        return f"{cells}  winner {won}"

    rewards = "  ".join(f"S{i + 1}={m:.3f}" for i, m in enumerate(view.meta_scores))
    chosen = ", ".join(f"S{i + 1}" for i in view.chosen) or "none"
    source = f" · meta RM {view.meta_model}" if view.meta_model else ""
    return "\n".join([
        f"── Meta-guided vote (k_meta={view.k_meta}{source})",
        f"  Meta rewards: {rewards}",
        f"  Voted over:   {chosen}",
        f"  Plain vote:   {totals(view.plain)}",
        f"  Meta-guided:  {totals(view.vote)}"
        + ("  (differs from the plain vote)" if view.changes_winner else ""),
    ])


def stored_meta_guided(
    engine: Engine, judgement_id: int, *, k_meta: int | None = None
) -> MetaGuidedVote | None:
    """The meta-guided vote of stored judgement `judgement_id` from the meta rewards
    stored with its samples; None until every sample has one (`grm-studio meta score`)."""
    from core.store.judgements import fetch_judgement
    from core.store.meta_scores import load_meta_scores, meta_score_source

    scores = load_meta_scores(engine, judgement_id)
    if not scores or any(s is None for s in scores):
        return None
    rewards = [float(s) for s in scores if s is not None]
    return meta_guided(fetch_judgement(engine, judgement_id), rewards, k_meta=k_meta,
                       meta_model=meta_score_source(engine, judgement_id))

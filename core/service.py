"""The application layer: what every front (the CLI, the web app, its JSON API)
calls to build a judge, judge and save, and meta-score and vote, so that each of
these is done one way. The store (`core.store`) saves and loads; the engine
(`core.engine`) judges; this module puts them together. No front-end here.

    judge = build_judge(settings)                         # the configured model, loaded now
    judgement_id, judgement = judge_and_save(engine, judge, item, params, account)
    view = meta_vote(meta, judgement, engine=engine, judgement_id=judgement_id)

torch and transformers are not imported here: a meta RM comes in already loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine

from core import backends
from core.config import Settings
from core.engine import Judge
from core.store.accounts import Account, Action
from core.store.judgements import store_judgement
from core.store.meta_scores import save_meta_scores
from core.types import JudgeInput, Judgement, Sample, SamplingParams

if TYPE_CHECKING:
    from core.training.meta_vote import MetaGuidedVote


def build_judge(settings: Settings, backend: backends.Backend | None = None) -> Judge:
    """A `Judge` with the settings' prompt template, score rescue and prefill, on
    `backend` (None: the configured model, loaded now by `load_backend`).

    Every front builds its judge here; only tests and benchmarks that choose
    rescue or prefill themselves build a `Judge` directly."""
    if backend is None:
        backend = backends.load_backend(settings)  # looked up now: tests swap the loader
    return Judge(
        backend,
        template=settings.template,
        rescue=settings.rescue_enabled,
        prefill=settings.prefill_enabled,
    )


def judge_and_save(
    engine: Engine, judge: Judge, item: JudgeInput, params: SamplingParams,
    account: Account | None,
) -> tuple[int | None, Judgement]:
    """Judge `item`, and save the judgement when `account` may save judgements;
    returns (its id, or None when not saved, the judgement)."""
    judgement = judge.judge(item, params)
    if account is None or not account.may(Action.JUDGE):
        return None, judgement
    return store_judgement(engine, judgement), judgement


class StoredMetaScorer(Protocol):
    """A meta reward model as `meta_vote` needs it (`core.training.meta_rm.MetaRewardModel`
    is one): it rates samples, and it has a place in the store's registry."""

    path: Path

    def score(self, item: JudgeInput, samples: Sequence[Sample]) -> list[float]: ...

    def register(self, engine: Engine) -> int: ...


def meta_vote(
    meta: StoredMetaScorer,
    judgement: Judgement,
    *,
    k_meta: int | None = None,
    meta_model: str | None = None,
    engine: Engine | None = None,
    judgement_id: int | None = None,
) -> MetaGuidedVote:
    """Meta-score every sample of `judgement` with `meta`, store the rewards with
    stored judgement `judgement_id` (only when both `engine` and `judgement_id` are
    given; marked with `meta`'s registry id), and return the meta-guided vote
    beside the plain one. `k_meta` None: k/2; `meta_model` names the meta RM in
    the result (None: its directory)."""
    from core.training.meta_vote import meta_guided

    rewards = tuple(meta.score(judgement.input, judgement.samples))
    if engine is not None and judgement_id is not None:
        save_meta_scores(engine, judgement_id, rewards, meta_model_id=meta.register(engine))
    return meta_guided(
        judgement, rewards, k_meta=k_meta,
        meta_model=str(meta.path) if meta_model is None else meta_model,
    )

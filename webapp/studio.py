"""Per-process state of the web app, passed into every tab builder (no globals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.backends import Backend, load_backend
from core.backends.studio_judge import SHIPPED_DIR
from core.config import Settings
from core.engine import Judge
from core.errors import InputError
from core.jobs import Jobs
from core.limits import JudgingSlots, judging_slots
from core.service import build_judge
from core.store.accounts import Account, Action, require
from core.store.judgements import judge_model_sources
from core.store.sessions import session_account

SESSION_COOKIE = "grm_studio_session"
DEMO_ACCOUNT = Account("demo", "demo")
BUILT_IN_CHOICES = (
    ("GRM Studio judge (built in: SmolLM2-135M trained by the studio's SPCT)", "studio"),
    ("SmolLM2-135M-Instruct (built in: the untrained base)", "embedded"),
)


@dataclass
class Studio:
    """The settings, the store and the judge models (each loaded once, on first use,
    and shared by every browser)."""

    settings: Settings
    engine: Engine
    backend: Backend | None = None  # the configured model's
    _other: tuple[str, Backend] | None = None  # the one other model picked last
    _meta: tuple[str, Any] | None = None  # (source, MetaRewardModel) picked last
    jobs: Jobs = field(default_factory=Jobs)  # long work started from the pages
    # judgements running at once (the read-only demo's limits; none otherwise)
    judging: JudgingSlots = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.judging = judging_slots(self.settings)

    # --- who is asking -------------------------------------------------------
    def account(self, request: Any) -> Account | None:
        """The account behind a web request (its session cookie), read afresh from
        the store; the demo account in read-only mode; None when signed out."""
        if self.settings.read_only:
            return DEMO_ACCOUNT
        cookies = getattr(request, "cookies", None) or {}
        return session_account(self.engine, cookies.get(SESSION_COOKIE))

    def require(self, request: Any, action: Action) -> Account:
        """The account behind `request` if its role allows `action`; NotAllowedError
        otherwise. Every handler that writes calls this first."""
        return require(self.account(request), action)

    # --- the judge -----------------------------------------------------------
    def model_choices(self) -> list[tuple[str, str]]:
        """(label, model) pairs the Judge tab offers: the configured model, the built-in
        ones (the studio's judge and its base), then every registered judge that can be
        loaded here (a directory or a server; the built-ins' own rows, their shipped
        adapter and their merges in the cache, are offered by name only)."""
        choices = [(f"{self.settings.model_shown} (configured)", self.settings.model)]
        choices += [(label, name) for label, name in BUILT_IN_CHOICES if name != self.settings.model]
        built_in = (self.settings.cache_dir.resolve(), SHIPPED_DIR.resolve())
        for name, source in judge_model_sources(self.engine):
            loadable = source.startswith(("http://", "https://")) or (
                Path(source).is_dir()
                and not any(Path(source).resolve().is_relative_to(b) for b in built_in))
            if loadable and source not in {m for _, m in choices}:
                choices.append((f"{name} ({source})", source))
        return choices

    def judge(self, model: str | None = None) -> Judge:
        """A Judge on `model` (one of `model_choices`; None: the configured one)."""
        settings = self.settings
        with self._lock:
            if model is None or model == settings.model:
                if self.backend is None:
                    self.backend = load_backend(settings)
                backend = self.backend
            else:
                if model not in {m for _, m in self.model_choices()}:
                    raise InputError(f"'{model}' is not a registered judge model")
                settings = settings.model_copy(update={"model": model})
                if self._other is None or self._other[0] != model:
                    self._other = None  # let the previous one go before loading
                    self._other = (model, load_backend(settings))
                backend = self._other[1]
        return build_judge(settings, backend)

    # --- the meta reward model ------------------------------------------------
    def meta_model_choices(self) -> list[tuple[str, str]]:
        """(label, source) of every registered meta RM whose directory is here."""
        from core.store.meta_scores import meta_models

        return [
            (f"{m.name} ({m.positives} correct / {m.negatives} wrong samples)", m.source)
            for m in meta_models(self.engine) if Path(m.source).is_dir()
        ]

    def meta(self, source: str) -> Any:
        """The registered meta RM at `source` (kept loaded until another is picked)."""
        from core.service import load_meta_model

        if source not in {s for _, s in self.meta_model_choices()}:
            raise InputError(f"'{source}' is not a registered meta reward model")
        with self._lock:
            if self._meta is None or self._meta[0] != source:
                self._meta = None
                self._meta = (source, load_meta_model(source, self.settings))
            return self._meta[1]

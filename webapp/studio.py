"""Per-process state of the web app, passed into every tab builder (no globals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.backends import Backend, load_backend
from core.backends.openai_compat import is_server_url
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
REGISTERED = "judge:"  # the Judge tab's key of a registered judge: judge:<id>
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
        """(label, key) pairs the Judge tab offers: the configured model, the built-in
        ones (the studio's judge and its base), then every registered judge that can be
        loaded here (a directory or a server; the built-ins' own rows, their shipped
        adapter and their merges in the cache, are offered by name only). A registered
        judge's key is `judge:<id>`, so the page never holds a server path."""
        return [(label, key) for label, key, _ in self._models()]

    def _models(self) -> list[tuple[str, str, str]]:
        """(label, key, model setting) of every judge the Judge tab offers."""
        configured = self.settings.model
        shown = self.settings.model_shown
        if not is_server_url(configured) and Path(configured).expanduser().exists():
            shown = Path(configured).name  # a directory or file: its name, not its path
        models = [(f"{shown} (configured)", configured, configured)]
        models += [(label, name, name) for label, name in BUILT_IN_CHOICES if name != configured]
        built_in = (self.settings.cache_dir.resolve(), SHIPPED_DIR.resolve())
        for judge_id, name, source in judge_model_sources(self.engine):
            loadable = source.startswith(("http://", "https://")) or (
                Path(source).is_dir()
                and not any(Path(source).resolve().is_relative_to(b) for b in built_in))
            if loadable and source not in {m for _, _, m in models}:
                models.append((name, f"{REGISTERED}{judge_id}", source))
        return models

    def judge(self, model: str | None = None) -> Judge:
        """A Judge on `model` (one of `model_choices`; None: the configured one)."""
        settings = self.settings
        with self._lock:
            if model is None or model == settings.model:
                if self.backend is None:
                    self.backend = load_backend(settings)
                backend = self.backend
            else:
                found = {key: source for _, key, source in self._models()}
                if model not in found:
                    raise InputError(f"'{model}' is not a registered judge model")
                settings = settings.model_copy(update={"model": found[model]})
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

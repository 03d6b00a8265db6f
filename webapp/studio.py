"""Per-process state of the web app, passed into every tab builder (no globals)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from core.backends import Backend, load_backend
from core.config import Settings
from core.engine import Judge


@dataclass
class Studio:
    """The settings, the store and the judge model (loaded once, on first use, shared)."""

    settings: Settings
    engine: Engine
    backend: Backend | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def judge(self) -> Judge:
        with self._lock:
            if self.backend is None:
                self.backend = load_backend(self.settings)
        return Judge(
            self.backend,
            template=self.settings.template,
            rescue=self.settings.rescue_enabled,
            prefill=self.settings.prefill_enabled,
        )

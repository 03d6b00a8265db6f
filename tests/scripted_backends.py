"""Scripted judges shared by the tab tests: a well-formed reply, and a backend that
generates only when the test lets it (to stop or watch a job mid-way)."""

from __future__ import annotations

import threading
from typing import Any

from core import ScriptedBackend


def scores_text(a: int, b: int) -> str:
    return f"Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{a}, {b}}}"


GOOD = scores_text(9, 2)


class GatedBackend(ScriptedBackend):
    """Generates only when the test releases a permit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.permits = threading.Semaphore(0)

    def generate(self, prompts: Any, params: Any, **kwargs: Any) -> Any:
        assert self.permits.acquire(timeout=10)
        return super().generate(prompts, params, **kwargs)

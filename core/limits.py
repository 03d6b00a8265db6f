"""How much judging the read-only demo gives its visitors: bounded compute.

Anyone may use the demo without signing in, so what one judgement may ask for
is capped (`judging_sampling`: k and new tokens), and so is how many run at
once (`JudgingSlots`: per visitor, and for all visitors together). A request
past a limit is refused at once with BusyError ("try again in a moment"),
never queued: a queue let one visitor's eight k = 16 judgements hold the
judge for minutes while everyone else waited. Outside the demo nothing here
limits anything (signed-in users are known, and their roles say what they may).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.config import Settings
from core.errors import BusyError, InputError
from core.types import SamplingParams


def judging_sampling(settings: Settings, *, k: int, temperature: float) -> SamplingParams:
    """The sampling parameters of a judgement asked for from a page: `settings`'
    with this k and temperature; in the read-only demo, k above `demo_max_k` is
    refused (InputError) and new tokens are at most `demo_max_new_tokens`."""
    if not settings.read_only:
        return settings.sampling(k=k, temperature=temperature)
    if k > settings.demo_max_k:
        raise InputError(f"the read-only demo judges with at most k = {settings.demo_max_k} "
                         "samples; lower k")
    tokens = min(settings.max_new_tokens, settings.demo_max_new_tokens)
    return settings.sampling(k=k, temperature=temperature, max_new_tokens=tokens)


class JudgingSlots:
    """How many judgements run at once: at most `per_visitor` for one visitor
    and `total` for all (None: no limit). `hold(visitor)` takes a slot for the
    length of a `with` block, or raises BusyError at once when none is free."""

    def __init__(self, *, per_visitor: int | None = None, total: int | None = None) -> None:
        self.per_visitor, self.total = per_visitor, total
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, visitor: str) -> Iterator[None]:
        with self._lock:
            mine = self._running.get(visitor, 0)
            if self.per_visitor is not None and mine >= self.per_visitor:
                raise BusyError("busy: your previous judgement is still running; try again "
                                "in a moment, once it has finished")
            if self.total is not None and sum(self._running.values()) >= self.total:
                raise BusyError("busy: the demo is judging for other visitors; try again in "
                                "a moment")
            self._running[visitor] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running[visitor] - 1
                if left:
                    self._running[visitor] = left
                else:
                    del self._running[visitor]

    def running(self) -> int:
        """Judgements running now, all visitors together."""
        with self._lock:
            return sum(self._running.values())


def judging_slots(settings: Settings) -> JudgingSlots:
    """The demo's limits in the read-only demo; no limits otherwise."""
    if not settings.read_only:
        return JudgingSlots()
    return JudgingSlots(per_visitor=settings.demo_judgements_per_visitor,
                        total=settings.demo_judgements_at_once)

"""How far long judging is, and how it is stopped: the one hook that a backend's
decode loop, the judge engine and a dataset run all report through.

    watch = Watch(on_progress=print, should_stop=stop_requested.is_set)
    judge.judge(item, params, watch=watch)    # GenerationProgress events; JudgingStopped

A backend calls `watch.report(event)` between two steps of a generation (a
prefill chunk, a decode step): it raises `JudgingStopped` if a stop was asked
for, and otherwise hands the event on. A layer that counts in its own terms
wraps the watch (`mapped`): a dataset run turns each generation event into a
`BatchProgress` (items done of the total, rate, time left). Nothing here knows
about a front; the events describe themselves in words (`describe`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from core.errors import JudgingStopped

E = TypeVar("E")
F = TypeVar("F")

Stage = Literal["prefill", "decode"]


@dataclass(frozen=True)
class GenerationProgress:
    """How far one generation call (`Backend.generate` or `rescue_scores`) is."""

    stage: Stage
    """'prefill': the prompts are being read; 'decode': the samples are being written."""
    done: int
    """prefill: prompt tokens read so far; decode: the token budget used, a finished
    sample counted at its whole budget (so `done` reaches `total` when all have ended)."""
    total: int
    """prefill: prompt tokens to read (a prefix that samples share counted once);
    decode: samples x max_new_tokens."""
    samples: int
    """Sequences generated together."""
    finished: int = 0
    """Of them, those that have ended (a stop token or the budget); decode only."""
    generated: int = 0
    """Tokens written so far, over all samples; decode only."""
    rescue: bool = False
    """True for the score rescue's generation (after the samples, for those without scores)."""

    @property
    def fraction(self) -> float:
        """`done` / `total`, in [0, 1]."""
        return min(1.0, self.done / self.total) if self.total > 0 else 1.0

    def describe(self) -> str:
        """The event in words, e.g. 'writing 4 samples: 312 tokens, 1 of 4 finished'."""
        what = (f"rescuing the scores of {_count(self.samples, 'sample')}" if self.rescue
                else f"writing {_count(self.samples, 'sample')}")
        if self.stage == "prefill":
            reading = f"reading the prompts ({self.done:,} of {self.total:,} tokens)"
            return f"{what}: {reading}" if self.rescue else reading
        return f"{what}: {self.generated:,} tokens, {self.finished} of {self.samples} finished"


@dataclass(frozen=True)
class BatchProgress:
    """How far a run over many items (a dataset) is: the items finished, and the
    ones in flight counted by how far their generation is."""

    done: int
    """Items finished in this run (judged, or refused as invalid)."""
    total: int
    """Items this run has to judge (those judged before are not counted)."""
    elapsed_s: float
    """Seconds since the run began judging."""
    in_flight: int = 0
    """Items being judged now (decoded together)."""
    in_flight_fraction: float = 0.0
    """How far their generation is, in [0, 1] (an estimate: see `BatchTracker`)."""
    generation: GenerationProgress | None = None
    """The in-flight generation's latest event."""

    @property
    def progressed(self) -> float:
        """Items done, the in-flight ones counted in part."""
        return self.done + self.in_flight * self.in_flight_fraction

    @property
    def fraction(self) -> float:
        """Of the run, how much is done, in [0, 1]."""
        return min(1.0, self.progressed / self.total) if self.total > 0 else 1.0

    @property
    def items_per_minute(self) -> float | None:
        """The pace so far; None until something has progressed."""
        if self.progressed <= 0 or self.elapsed_s <= 0:
            return None
        return self.progressed / self.elapsed_s * 60

    @property
    def seconds_left(self) -> float | None:
        """At the pace so far, the seconds the rest will take; None while unknown."""
        pace = self.items_per_minute
        if pace is None:
            return None
        return max(0.0, self.total - self.progressed) / pace * 60

    def describe(self) -> str:
        """E.g. '3 of 10 items · 1.5 items/min · about 5 min left'."""
        parts = [f"{self.done} of {_count(self.total, 'item')}"]
        pace, left = self.items_per_minute, self.seconds_left
        if pace is not None and left is not None and self.done < self.total:
            parts += [f"{pace:.1f} items/min", f"about {_duration(left)} left"]
        return " · ".join(parts)


class BatchTracker:
    """A run's `BatchProgress`, from the items done and the generation events of
    the items in flight. Their share done is estimated from the tokens their
    samples have written against the typical sample length of the items judged
    before in this run (a sample ends at a stop token, mostly long before its
    budget); until one generation has ended, against the token budget. A
    finished generation counts whole, its prefill as not begun, its score
    rescue as all but done; within one generation the estimate never falls."""

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self._clock = total, clock
        self._started = clock()
        self._samples = 0  # samples of the ended generations, and the tokens they wrote
        self._tokens = 0

    def progress(self, done: int, in_flight: int = 0,
                 event: GenerationProgress | None = None) -> BatchProgress:
        """The run's progress with `done` items finished and `in_flight` being judged,
        their generation last reported as `event`."""
        fraction = self._fraction(event)
        if (event is not None and event.stage == "decode" and not event.rescue
                and event.finished == event.samples):
            self._samples += event.samples
            self._tokens += event.generated
        return BatchProgress(done=done, total=self.total, elapsed_s=self._clock() - self._started,
                             in_flight=in_flight, in_flight_fraction=fraction, generation=event)

    def _fraction(self, event: GenerationProgress | None) -> float:
        if event is None:
            return 0.0
        if event.rescue:
            return 1.0
        if event.stage == "prefill":
            return 0.0
        if not self._samples or event.finished == event.samples:
            return event.fraction
        typical = max(1.0, self._tokens / self._samples)
        return max(event.fraction, min(0.95, event.generated / (event.samples * typical)))


@dataclass(frozen=True)
class Watch(Generic[E]):
    """What long work reports its progress to (`on_progress`, events of type E) and
    asks whether to go on (`should_stop`); both optional."""

    on_progress: Callable[[E], None] | None = None
    should_stop: Callable[[], bool] | None = None

    def check(self) -> None:
        """Raise JudgingStopped if a stop was asked for."""
        if self.should_stop is not None and self.should_stop():
            raise JudgingStopped("stopped at your request; nothing in flight was kept")

    def report(self, event: E) -> None:
        """The check between two steps: raise JudgingStopped if a stop was asked
        for, else hand `event` to `on_progress`."""
        self.check()
        if self.on_progress is not None:
            self.on_progress(event)

    def mapped(self, convert: Callable[[F], E]) -> Watch[F]:
        """This watch for work that reports F events: each reaches `on_progress`
        converted; the same stop check."""
        forward = self.on_progress
        if forward is None:
            return Watch(None, self.should_stop)
        return Watch(lambda event: forward(convert(event)), self.should_stop)


GenerationWatch = Watch[GenerationProgress]  # what a backend's generation reports to
BatchWatch = Watch[BatchProgress]  # what a dataset run reports to


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"

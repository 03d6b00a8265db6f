"""Long work in a background thread: progress, a stop request, a bounded log
tail, and how it ended (finished, stopped, or failed with its error kept as a
value). Front-neutral: the web app follows a job to draw it; nothing here
knows about Gradio.

    jobs = Jobs()
    job = jobs.start("count", lambda control: count_to(10, control))
    for line in job.follow():      # every line the work logs, as it is logged
        print(line.text)
    job.state().status             # JobStatus.FINISHED

A work function gets a `JobControl`: it reports with `progress` and `log`, and
honours a stop request by polling `should_stop()` and then raising `JobStopped`
(`raise_if_stopped()` does both), from its own code or from inside a callback.
The job's status says how the work ended: it returned (finished, even if a stop
was asked for too late to matter), raised JobStopped (stopped), or raised
anything else (failed, with the error kept).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.errors import InputError

LOG_LINES = 200  # lines a job keeps; older ones are dropped
KEPT_ENDED = 20  # ended jobs a registry remembers


class JobStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"  # the work function returned
    STOPPED = "stopped"  # it raised JobStopped (at a stop request)
    FAILED = "failed"  # it raised; the error is in `JobState.error`


class JobStopped(Exception):
    """Raised by a work function (or a callback inside it) to end at a stop request."""


@dataclass(frozen=True)
class Progress:
    done: int = 0
    total: int | None = None  # None: not known (yet)
    label: str = ""  # what is counted, e.g. "items judged"
    fraction: float | None = None  # how much is done, 0..1, where the work knows better
    note: str = ""  # more in words, e.g. "3 of 10 items · 1.5 items/min · about 5 min left"

    @property
    def share(self) -> float | None:
        """How much is done, 0..1: `fraction`, else done / total; None while unknown."""
        if self.fraction is not None:
            return self.fraction
        return min(1.0, self.done / self.total) if self.total else None


@dataclass(frozen=True)
class LogLine:
    number: int  # 1 for the job's first line; dropped lines are counted too
    text: str
    progress: Progress  # the job's progress when the line was logged


@dataclass(frozen=True)
class JobState:
    """A snapshot of a job."""

    id: int
    name: str
    status: JobStatus
    progress: Progress
    log: tuple[LogLine, ...]  # the last `log_lines` lines
    stop_requested: bool
    version: int  # how many changes the job has seen; grows with every change
    result: Any = None  # what the work function returned (finished jobs)
    error: BaseException | None = None  # what a failed job raised

    @property
    def message(self) -> str:
        """The error's message ('' unless failed)."""
        return "" if self.error is None else str(self.error) or type(self.error).__name__


class JobControl:
    """What a work function sees of its job."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def should_stop(self) -> bool:
        """True once a stop was requested; the work should end at its next safe point."""
        return self._job.stop_requested

    def raise_if_stopped(self) -> None:
        """Raise JobStopped if a stop was requested (for callbacks that cannot return)."""
        if self._job.stop_requested:
            raise JobStopped

    def progress(self, done: int, total: int | None = None, label: str = "", *,
                 fraction: float | None = None, note: str = "") -> None:
        self._job._change(progress=Progress(done, total, label, fraction, note))

    def log(self, text: str) -> None:
        self._job._change(line=text)


Work = Callable[[JobControl], Any]


class Job:
    """`work(control)` running in its own (daemon) thread named `name`, from creation."""

    def __init__(self, name: str, work: Work, *, job_id: int = 0,
                 log_lines: int = LOG_LINES) -> None:
        if log_lines < 1:
            raise ValueError(f"a job keeps at least one log line, not {log_lines}")
        self.id, self.name = job_id, name
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._status = JobStatus.RUNNING
        self._progress = Progress()
        self._log: deque[LogLine] = deque(maxlen=log_lines)
        self._lines = 0
        self._version = 0
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the work to stop; it ends at its next check (a no-op once ended)."""
        with self._changed:
            if self._status is not JobStatus.RUNNING or self._stop.is_set():
                return
            self._stop.set()
            self._bump()

    def state(self) -> JobState:
        with self._changed:
            return self._snapshot()

    def wait(self, after: int = 0, timeout: float | None = None) -> JobState:
        """The state once the job has changed since version `after` (at once if it
        has, or has ended), or when `timeout` seconds have passed."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._version > after or self._status is not JobStatus.RUNNING, timeout)
            return self._snapshot()

    def join(self, timeout: float | None = None) -> JobState:
        """The state once the job has ended (or `timeout` seconds have passed)."""
        self._thread.join(timeout)
        return self.state()

    def follow(self) -> Iterator[LogLine]:
        """Every line the job logs, in order, as it is logged (from the oldest still
        kept); ends when the job has ended. A reader that falls more than the
        kept lines behind skips the ones dropped."""
        version, seen = 0, 0
        while True:
            state = self.wait(version)
            version = state.version
            for line in state.log:
                if line.number > seen:
                    seen = line.number
                    yield line
            if state.status is not JobStatus.RUNNING:
                return

    # --- the worker's side ----------------------------------------------------
    def _run(self, work: Work) -> None:
        try:
            result = work(JobControl(self))
        except JobStopped:
            self._end(JobStatus.STOPPED)
        except BaseException as err:  # noqa: BLE001 - kept as a value for whoever follows
            self._end(JobStatus.FAILED, error=err)
        else:
            self._end(JobStatus.FINISHED, result=result)

    def _change(self, *, progress: Progress | None = None, line: str | None = None) -> None:
        with self._changed:
            if progress is not None:
                self._progress = progress
            if line is not None:
                self._lines += 1
                self._log.append(LogLine(self._lines, line, self._progress))
            self._bump()

    def _end(self, status: JobStatus, *, result: Any = None,
             error: BaseException | None = None) -> None:
        with self._changed:
            self._status, self._result, self._error = status, result, error
            self._bump()

    def _bump(self) -> None:  # with self._changed held
        self._version += 1
        self._changed.notify_all()

    def _snapshot(self) -> JobState:  # with self._changed held
        return JobState(
            id=self.id, name=self.name, status=self._status, progress=self._progress,
            log=tuple(self._log), stop_requested=self._stop.is_set(), version=self._version,
            result=self._result, error=self._error,
        )


class Jobs:
    """The jobs of one studio: each started here gets an id; at most one running
    job per name (a second is refused), and the last `kept_ended` ended ones are
    remembered."""

    def __init__(self, *, log_lines: int = LOG_LINES, kept_ended: int = KEPT_ENDED) -> None:
        self._log_lines, self._kept_ended = log_lines, kept_ended
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, name: str, work: Work) -> Job:
        """Start `work` as job `name`; InputError if a job of that name is running."""
        with self._lock:
            if any(j.name == name and j.state().status is JobStatus.RUNNING
                   for j in self._jobs.values()):
                raise InputError(
                    f"'{name}' is running already: wait until it ends, or stop it first")
            self._forget_ended()
            job = Job(name, work, job_id=next(self._ids), log_lines=self._log_lines)
            self._jobs[job.id] = job
            return job

    def get(self, job_id: int) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise InputError(f"there is no job {job_id} (it may have ended long ago)")
            return self._jobs[job_id]

    def all(self) -> list[Job]:
        """Every job remembered, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def latest(self, name_prefix: str) -> Job | None:
        """Of the jobs remembered whose name starts with `name_prefix`, the newest
        running one, else the newest ended one; None if there is none."""
        named = [j for j in self.all() if j.name.startswith(name_prefix)]
        running = [j for j in named if j.state().status is JobStatus.RUNNING]
        chosen = running or named
        return chosen[-1] if chosen else None

    def stop_all(self) -> None:
        for job in self.all():
            job.stop()

    def _forget_ended(self) -> None:  # with self._lock held
        ended = [i for i, j in self._jobs.items() if j.state().status is not JobStatus.RUNNING]
        for job_id in ended[: max(0, len(ended) - self._kept_ended)]:
            del self._jobs[job_id]

"""The web app's side of a background job (core.jobs): follow it into a
streaming handler (lines, Gradio's progress bar), stop it from a Stop button,
and turn a failure into the error the page shows (webapp.errors).

A tab's start handler starts a job in the studio's `Jobs`, yields what the job
logs together with the job's id (kept in a `gr.State`), and its Stop button
calls `stop_job` with that id; the job then ends at its next check and the
start handler shows that it stopped. Closing the handler's generator (the page
closed) stops the job too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from core.errors import GRMStudioError
from core.jobs import Job, Jobs, JobState, JobStatus, LogLine, Work
from core.store.accounts import Account, Action, require

ProgressBar = Callable[..., Any]  # gr.Progress, or any callable taking ((done, total), desc=)


def start_job(jobs: Jobs | None, name: str, work: Work) -> Job:
    """Start `work` in the studio's `jobs` (None: a job of its own, outside any registry)."""
    return Job(name, work) if jobs is None else jobs.start(name, work)


def follow(job: Job, progress: ProgressBar | None = None, *, after_error: str = "") -> Iterator[
        LogLine]:
    """Each line `job` logs as it comes, moving `progress` to the line's (done, total)
    when it has a total. Ends when the job does: normally when it finished or
    stopped (see `job.state()`), by raising when it failed: a GRMStudioError
    with its message (and `after_error`, what the user can do now), or the
    unexpected error itself. Closing the generator early stops the job."""
    try:
        for line in job.follow():
            if progress is not None and line.progress.total:
                progress((line.progress.done, line.progress.total), desc=line.progress.label)
            yield line
    except GeneratorExit:
        job.stop()
        raise
    state = job.state()
    if state.status is JobStatus.FAILED:
        raise failure(state, after_error)


def failure(state: JobState, after_error: str = "") -> BaseException:
    """What to raise for a failed job: its own error when unexpected (the error
    helper logs it), else a GRMStudioError saying the job stopped and why."""
    if not isinstance(state.error, GRMStudioError):
        return state.error or RuntimeError(f"job '{state.name}' failed")
    note = f" {after_error}" if after_error else ""
    return GRMStudioError(f"Stopped by an error: {state.message.rstrip('.')}.{note}")


def log_text(state: JobState) -> str:
    """The job's kept log lines as one text."""
    return "\n".join(line.text for line in state.log)


def stop_job(jobs: Jobs, account: Account | None, action: Action, job_id: int | None) -> None:
    """Stop job `job_id` if `account` may start such jobs (`action`); nothing to
    do when no job was started from this page."""
    require(account, action)
    if job_id is not None:
        jobs.get(int(job_id)).stop()

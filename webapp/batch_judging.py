"""Judging a whole dataset from the Datasets tab: a background job (core.jobs) in
the studio's `Jobs`, so that it belongs to the server, not to a page.

The page starts the job and then reads its state once a second (a `gr.Timer`
that runs while the job does): a progress bar with the items done of the
total, the pace and the time left (`core.progress.BatchProgress`), and the
job's log. Stop asks the job to stop; the judge checks between two generation
steps, so it ends within a step and keeps nothing in flight (items already
saved stay saved). A page loaded later (a reload, another tab) shows the
newest batch job of the studio, running or ended, and can stop it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr

from core.errors import GRMStudioError, InputError, JudgingStopped
from core.jobs import Job, JobControl, Jobs, JobState, JobStatus, JobStopped
from core.progress import BatchProgress, Watch
from core.service import BatchReport, judge_dataset
from core.store.accounts import Account, Action, require
from core.store.batch import require_dataset
from webapp.errors import shows_errors
from webapp.jobs import start_job, stop_job
from webapp.studio import Studio

_log = logging.getLogger(__name__)

JOB_PREFIX = "judge-dataset-"  # a batch job's name: this, then the dataset's
RESUME = "Finished items are saved; a rerun with the same settings judges only the items left."
SHOWN_LOG_LINES = 30
TICK_S = 1.0  # how often an open page reads the job's state while it runs


def start_batch_judging(
    studio: Studio,
    account: Account | None,
    dataset: str,
    limit: int | None,
    k: int,
    *,
    jobs: Jobs | None = None,
) -> Job:
    """Start judging `dataset` (its first `limit` items; 0/None: all) with k samples
    as a job in `jobs` if `account` may. Each item's judgement is saved as soon as
    it is done; a stop ends the job between two generation steps, keeping nothing
    in flight, and a rerun with the same settings skips every item already judged.
    Raises NotAllowedError or InputError (before the slow model load)."""
    require(account, Action.BATCH)
    if not dataset:
        raise InputError("choose a dataset to judge")
    require_dataset(studio.engine, dataset)
    settings = studio.settings
    params = settings.sampling(k=int(k))

    def work(control: JobControl) -> BatchReport:
        control.log(f"Loading the judge '{settings.model_shown}' …")
        judge = studio.judge()
        control.raise_if_stopped()
        control.log(f"Judging '{dataset}' with k={params.k} …")

        def on_progress(progress: BatchProgress) -> None:
            control.progress(progress.done, progress.total, "items judged",
                             fraction=progress.fraction, note=progress.describe())

        def on_item(report: BatchReport) -> None:
            control.log(_progress_line(dataset, report))

        try:
            return judge_dataset(studio.engine, judge, dataset, params,
                                 limit=int(limit or 0) or None, on_item=on_item,
                                 batch_items=settings.batch_items,
                                 watch=Watch(on_progress, control.should_stop))
        except JudgingStopped:
            raise JobStopped from None
        except GRMStudioError:
            raise
        except Exception:  # shown on the page as a reference to this log, never its text
            _log.exception("judging the dataset '%s' failed", dataset)
            raise

    return start_job(jobs, f"{JOB_PREFIX}{dataset}", work)


@dataclass(frozen=True)
class BatchView:
    """What the page shows of a batch job."""

    bar: str  # HTML: what the job is doing, a progress bar, its pace
    log: str  # the job's last log lines (and, once finished, its summary)
    running: bool


NO_RUN = BatchView("", "", running=False)


def batch_view(state: JobState | None) -> BatchView:
    """The page's view of a batch job's `state` (None: no job to show)."""
    if state is None:
        return NO_RUN
    dataset = state.name.removeprefix(JOB_PREFIX)
    progress = state.progress
    done_of = (f"{progress.done} of {progress.total} item(s)" if progress.total is not None
               else "")
    log = "\n".join(line.text for line in state.log[-SHOWN_LOG_LINES:])
    if state.status is JobStatus.RUNNING:
        head = (f"Stopping the judging of '{dataset}' …" if state.stop_requested
                else f"Judging '{dataset}' …")
        note = progress.note or (state.log[-1].text if state.log else "")
    elif state.status is JobStatus.FINISHED:
        head = f"Finished judging '{dataset}'."
        note = progress.note
        log = "\n".join([log, _final_lines(dataset, state.result)]).strip()
    elif state.status is JobStatus.STOPPED:
        head = f"Stopped judging '{dataset}'" + (f" after {done_of}." if done_of else ".")
        note = RESUME
    else:
        head = f"Judging '{dataset}' stopped by an error: {_failure(state)}"
        note = RESUME
    share = progress.share
    if state.status in (JobStatus.STOPPED, JobStatus.FAILED) and progress.total:
        share = progress.done / progress.total  # what was in flight was dropped
    value = "" if share is None else f' value="{share:.4f}"'  # no value: still starting
    bar = (f'<div class="grm-batch" data-status="{state.status.value}" '
           f'data-done="{progress.done}" data-total="{progress.total or 0}">'
           f"<div><b>{escape(head, quote=False)}</b></div>"
           f'<progress max="1"{value} style="width: 100%; height: 14px;"></progress>'
           f'<div class="grm-muted">{escape(note, quote=False)}</div></div>')
    return BatchView(bar, log, running=state.status is JobStatus.RUNNING)


def latest_batch_job(jobs: Jobs) -> Job | None:
    """The studio's newest batch job: a running one, else the newest ended one."""
    return jobs.latest(JOB_PREFIX)


def _failure(state: JobState) -> str:
    if isinstance(state.error, GRMStudioError):
        return state.message.rstrip(".") + "."
    return "something went wrong on the server; it is in the studio's log."


def _progress_line(dataset: str, report: BatchReport) -> str:
    todo = report.total - report.already_done
    return (
        f"Judging '{dataset}': {report.judged + len(report.failed)} of {todo} item(s) done, "
        f"{len(report.failed)} failed; {report.already_done} already judged with these "
        "settings were skipped."
    )


def _final_lines(dataset: str, report: BatchReport) -> str:
    lines = [
        (f"Done: judged {report.judged} item(s) of '{dataset}'; {report.already_done} of "
         f"{report.total} were already judged with these settings and were skipped; "
         f"{len(report.failed)} failed."),
        "Judging is resumable: a rerun with the same settings judges only the items left.",
    ]
    lines += [f"item {item_id}: {reason}" for item_id, reason in report.failed]
    return "\n".join(lines)


def build_batch_judging(
    studio: Studio, jobs: Jobs, dataset: gr.Dropdown, limit: gr.Number, k: gr.Slider,
) -> None:
    """The Start and Stop buttons, the progress bar and the log, below the
    dataset, limit and k inputs that the Datasets tab lays out."""
    with gr.Row():
        start = gr.Button("Judge dataset", variant="primary", elem_id="datasets-judge")
        stop = gr.Button("Stop", elem_id="datasets-judge-stop")
    bar = gr.HTML(elem_id="datasets-judge-bar")
    log = gr.Textbox(label="Progress", lines=4, max_lines=12, interactive=False,
                     elem_id="datasets-judge-progress")
    job_id = gr.State(None)  # the batch job this page shows
    timer = gr.Timer(TICK_S, active=False)
    shown = [bar, log, timer]

    def show(job: Job | None) -> list[Any]:
        view = batch_view(None if job is None else job.state())
        return [view.bar, view.log, gr.Timer(active=view.running)]

    @shows_errors
    def on_judge(ds: str, first: float, samples: float, request: gr.Request) -> list[Any]:
        job = start_batch_judging(studio, studio.account(request), ds, int(first or 0),
                                  int(samples), jobs=jobs)
        return [*show(job), job.id]

    @shows_errors
    def on_tick(shown_id: int | None) -> list[Any]:
        return show(_job(jobs, shown_id))

    @shows_errors
    def on_stop_judging(shown_id: int | None, request: gr.Request) -> list[Any]:
        stop_job(jobs, studio.account(request), Action.BATCH, shown_id)
        return show(_job(jobs, shown_id))

    @shows_errors
    def on_page_load(request: gr.Request) -> list[Any]:
        account = studio.account(request)
        if account is None or not account.may(Action.BATCH):
            return [gr.skip()] * (len(shown) + 1)
        job = latest_batch_job(jobs)
        return [*show(job), None if job is None else job.id]

    start.click(on_judge, [dataset, limit, k], [*shown, job_id], show_progress_on=bar)
    stop.click(on_stop_judging, job_id, shown, show_progress="hidden")
    timer.tick(on_tick, job_id, shown, show_progress="hidden")
    gr.on(None, on_page_load, None, [*shown, job_id], show_progress="hidden")


def _job(jobs: Jobs, job_id: int | None) -> Job | None:
    """Job `job_id` of `jobs` (None: none shown, or forgotten since)."""
    if job_id is None:
        return None
    try:
        return jobs.get(int(job_id))
    except InputError:
        return None

"""core.jobs: a job finishes with its result, reports progress and log lines in
order, stops when asked, keeps an exception as a failed status with its
message, keeps only the last N log lines; a registry runs one job per name."""

from __future__ import annotations

import threading
import time

import pytest

from core.errors import InputError
from core.jobs import Job, JobControl, Jobs, JobStatus, JobStopped, LogLine, Progress

WAIT = 10  # seconds; every wait below ends long before unless something is broken


def test_a_job_finishes_with_its_result_and_reports_progress_in_order():
    def work(control: JobControl) -> str:
        control.log("starting")
        for done in range(1, 4):
            control.progress(done, 3, "items")
            control.log(f"item {done}")
        return "all done"

    job = Job("count", work)
    lines = list(job.follow())
    state = job.join(WAIT)
    assert state.status is JobStatus.FINISHED and state.result == "all done"
    assert state.error is None and state.message == ""
    assert state.progress == Progress(3, 3, "items") and not state.stop_requested
    assert lines == [
        LogLine(1, "starting", Progress()),
        LogLine(2, "item 1", Progress(1, 3, "items")),
        LogLine(3, "item 2", Progress(2, 3, "items")),
        LogLine(4, "item 3", Progress(3, 3, "items")),
    ]
    assert list(job.follow()) == lines  # an ended job replays what it kept


def test_a_follower_sees_each_line_as_it_is_logged():
    step = threading.Semaphore(0)

    def work(control: JobControl) -> None:
        for n in range(3):
            assert step.acquire(timeout=WAIT)
            control.log(f"line {n}")

    job = Job("slow", work)
    follower = job.follow()
    for n in range(3):
        step.release()
        assert next(follower).text == f"line {n}"
    assert list(follower) == [] and job.join(WAIT).status is JobStatus.FINISHED


def test_a_job_stops_when_asked_at_its_next_check():
    started, checked = threading.Event(), []

    def work(control: JobControl) -> None:
        started.set()
        while True:  # a loop that only ends by a stop request
            checked.append(control.should_stop())
            if checked[-1]:
                raise JobStopped
            control.progress(len(checked))
            time.sleep(0.001)

    job = Job("forever", work)
    assert started.wait(WAIT)
    assert job.state().status is JobStatus.RUNNING
    job.stop()
    state = job.join(WAIT)
    assert state.status is JobStatus.STOPPED and state.stop_requested
    assert checked[-1] is True and checked.count(True) == 1  # it ended at the first check
    assert state.result is None and state.error is None
    job.stop()  # stopping an ended job changes nothing
    assert job.state() == state


def test_stop_is_raised_from_inside_a_callback_the_work_cannot_return_from():
    gate = threading.Event()

    def library(on_item) -> None:  # like judge_dataset: reports through a callback
        for item in range(100):
            gate.wait(WAIT)
            on_item(item)

    def work(control: JobControl) -> None:
        def on_item(item: int) -> None:
            control.log(f"item {item}")
            control.raise_if_stopped()

        library(on_item)

    job = Job("callback", work)
    job.stop()
    gate.set()
    state = job.join(WAIT)
    assert state.status is JobStatus.STOPPED
    assert [line.text for line in state.log] == ["item 0"]  # the item in flight, then no more


def test_an_exception_is_kept_as_a_failed_status_with_its_message():
    def work(control: JobControl) -> None:
        control.log("about to fail")
        raise InputError("the dataset 'x' has no labelled items")

    job = Job("fails", work)
    assert [line.text for line in job.follow()] == ["about to fail"]  # follow() does not raise
    state = job.join(WAIT)
    assert state.status is JobStatus.FAILED and state.result is None
    assert isinstance(state.error, InputError)
    assert state.message == "the dataset 'x' has no labelled items"
    assert Job("bare", lambda control: 1 / 0).join(WAIT).message == "division by zero"
    assert Job("no words", lambda control: _raise(KeyError())).join(WAIT).message == "KeyError"


def _raise(error: BaseException) -> None:
    raise error


def test_only_the_last_n_log_lines_are_kept():
    def work(control: JobControl) -> None:
        for n in range(1, 11):
            control.log(f"line {n}")

    state = Job("chatty", work, log_lines=3).join(WAIT)
    assert [(line.number, line.text) for line in state.log] == [
        (8, "line 8"), (9, "line 9"), (10, "line 10")]  # numbers count the dropped lines
    with pytest.raises(ValueError, match="at least one log line"):
        Job("mute", lambda control: None, log_lines=0)


def test_wait_returns_at_a_change_or_at_the_timeout():
    go = threading.Event()

    def work(control: JobControl) -> None:
        go.wait(WAIT)
        control.progress(1, 2)

    job = Job("waits", work)
    unchanged = job.wait(after=job.state().version, timeout=0.05)
    assert unchanged.status is JobStatus.RUNNING and unchanged.progress == Progress()
    go.set()
    changed = job.wait(after=unchanged.version, timeout=WAIT)
    assert changed.version > unchanged.version
    assert job.join(WAIT).status is JobStatus.FINISHED


def test_the_registry_runs_one_job_per_name_and_finds_jobs_by_id():
    jobs = Jobs()
    release = threading.Event()
    first = jobs.start("export", lambda control: release.wait(WAIT))
    with pytest.raises(InputError, match="'export' is running already"):
        jobs.start("export", lambda control: None)
    other = jobs.start("training", lambda control: "trained")
    assert jobs.get(first.id) is first and jobs.get(other.id) is other
    assert first.id != other.id and first.name == "export"
    assert threading.current_thread().name != first.name  # the work runs in its own thread
    with pytest.raises(InputError, match="there is no job 999"):
        jobs.get(999)
    release.set()
    first.join(WAIT)
    again = jobs.start("export", lambda control: "second")  # once ended, the name is free
    assert again.join(WAIT).result == "second"
    jobs.stop_all()  # ended jobs: nothing happens
    assert [j.state().status for j in jobs.all()] == [JobStatus.FINISHED] * 3


def test_the_registry_forgets_the_oldest_ended_jobs_only():
    jobs = Jobs(kept_ended=2)
    gate = threading.Event()
    running = jobs.start("long", lambda control: gate.wait(WAIT))
    for n in range(4):
        jobs.start(f"short {n}", lambda control: None).join(WAIT)
    jobs.start("last", lambda control: None).join(WAIT)
    assert [j.name for j in jobs.all()] == ["long", "short 2", "short 3", "last"]
    jobs.stop_all()
    assert running.state().stop_requested
    gate.set()
    assert running.join(WAIT).status is JobStatus.FINISHED  # it returned: stopped too late


def test_job_stopped_raised_without_a_request_still_counts_as_stopped():
    def work(control: JobControl) -> None:
        raise JobStopped

    assert Job("gives up", work).join(WAIT).status is JobStatus.STOPPED

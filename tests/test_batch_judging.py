"""Judging a dataset from the Datasets tab as a job of the studio (issue 17, item 6):
a progress bar with items done of the total, pace and time left; Stop ends the
generation within a step and nothing is saved after it; the run's state is the
studio's, so a page loaded later shows it. A slow scripted backend stands in
for the model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import ScriptedBackend, Settings
from core.errors import InputError, NotAllowedError
from core.jobs import Job, Jobs, JobStatus
from core.store.accounts import Account, Action
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.schema import JudgementRow
from tests.scripted_backends import GOOD
from webapp.batch_judging import batch_view, latest_batch_job, start_batch_judging
from webapp.jobs import stop_job
from webapp.studio import Studio

ADMIN = Account("root", "admin")
WORDY = GOOD + " " + " ".join(["word"] * 20)  # ~25 decode steps per sample


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}?", "responses": [f"a{i}", f"b{i}"]}) + "\n"
        for i in range(4)))
    import_file(engine, path, "toy")
    yield Studio(Settings(batch_items=1), engine, backend=ScriptedBackend([WORDY] * 50))
    engine.dispose()


def judged(studio) -> list[int]:
    with Session(studio.engine) as session:
        return list(session.scalars(select(JudgementRow.item_id).order_by(JudgementRow.item_id)))


def wait_for(job: Job, condition, timeout: float = 20) -> None:
    deadline, version = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        state = job.wait(version, timeout=0.5)
        version = state.version
        if condition(state):
            return
    raise AssertionError(f"not reached in {timeout} s: {job.state()}")


def test_the_job_reports_items_done_of_the_total_with_pace_and_time_left(studio):
    studio.backend.step_s = 0.002
    job = start_batch_judging(studio, ADMIN, "toy", 0, 2, jobs=Jobs())
    shares: list[float] = []
    notes: list[str] = []
    version = 0
    while (state := job.wait(version, timeout=10)).status is JobStatus.RUNNING:
        version = state.version
        if state.progress.share is not None:
            shares.append(state.progress.share)
            notes.append(state.progress.note)
    assert state.status is JobStatus.FINISHED and len(judged(studio)) == 4
    assert shares == sorted(shares) and len(set(shares)) > 4  # it moves within items too
    assert (state.progress.done, state.progress.total, state.progress.share) == (4, 4, 1.0)
    assert any(" items/min · about " in note and note.endswith(" left") for note in notes)
    view = batch_view(state)
    assert 'data-status="finished" data-done="4" data-total="4"' in view.bar
    assert 'value="1.0000"' in view.bar and not view.running
    assert "Done: judged 4 item(s) of 'toy'" in view.log


def test_stop_ends_the_generation_within_a_step_and_nothing_is_saved_after(studio):
    studio.backend.step_s = 0.1  # a slow model: ~2.7 s an item
    jobs = Jobs()
    job = start_batch_judging(studio, ADMIN, "toy", 0, 2, jobs=jobs)
    wait_for(job, lambda s: s.progress.done == 1 and (s.progress.share or 0) > 0.27)
    with pytest.raises(InputError, match="'judge-dataset-toy' is running already"):
        start_batch_judging(studio, ADMIN, "toy", 0, 2, jobs=jobs)  # not twice at once
    with pytest.raises(NotAllowedError):  # stopping needs the role that starts it
        stop_job(jobs, Account("ann", "annotator"), Action.BATCH, job.id)
    asked = time.monotonic()
    stop_job(jobs, ADMIN, Action.BATCH, job.id)
    assert batch_view(job.state()).bar.startswith('<div class="grm-batch" data-status="running"')
    assert "Stopping the judging of 'toy'" in batch_view(job.state()).bar
    state = job.join(timeout=5)
    assert state.status is JobStatus.STOPPED and time.monotonic() - asked < 1
    assert judged(studio) == [1]  # the item in flight was dropped
    time.sleep(1)
    assert judged(studio) == [1]  # and nothing more comes later
    # a page loaded now (a reload) finds the run and shows that it stopped
    assert latest_batch_job(jobs) is job
    view = batch_view(job.state())
    assert "Stopped judging 'toy' after 1 of 4 item(s)." in view.bar and not view.running
    assert 'data-status="stopped"' in view.bar and "a rerun with the same settings" in view.bar
    assert 'value="0.2500"' in view.bar  # the bar shows what is saved, not what was in flight
    rerun = start_batch_judging(studio, ADMIN, "toy", 0, 2, jobs=jobs)
    studio.backend.step_s = 0
    assert rerun.join(timeout=20).result.already_done == 1 and judged(studio) == [1, 2, 3, 4]
    assert latest_batch_job(jobs) is rerun


def test_a_failed_run_says_why_and_that_finished_items_are_saved(studio):
    studio.backend = ScriptedBackend([GOOD] * 2)  # the first item's samples, no more
    state = start_batch_judging(studio, ADMIN, "toy", 0, 2).join(timeout=20)
    assert state.status is JobStatus.FAILED and judged(studio) == [1]
    view = batch_view(state)
    assert "stopped by an error: scripted backend has 0 completion(s) left" in view.bar
    assert "Finished items are saved" in view.bar and 'data-status="failed"' in view.bar


def test_a_missing_dataset_or_role_is_refused_before_any_job(studio):
    jobs = Jobs()
    with pytest.raises(InputError, match="choose a dataset to judge"):
        start_batch_judging(studio, ADMIN, "", 0, 2, jobs=jobs)
    with pytest.raises(InputError, match="there is no dataset 'ghost'"):
        start_batch_judging(studio, ADMIN, "ghost", 0, 2, jobs=jobs)
    with pytest.raises(NotAllowedError):
        start_batch_judging(studio, Account("vic", "viewer"), "toy", 0, 2, jobs=jobs)
    assert jobs.all() == [] and latest_batch_job(jobs) is None
    assert batch_view(None).bar == "" and studio.backend.prompts == []


def test_a_page_shows_the_running_run_before_an_older_ended_one(studio, tmp_path):
    jobs = Jobs()
    first = start_batch_judging(studio, ADMIN, "toy", 1, 2, jobs=jobs)
    first.join(timeout=20)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"prompt": "q?", "responses": ["a", "b"]}) + "\n")
    import_file(studio.engine, Path(other), "other")
    studio.backend.step_s = 0.05
    running = start_batch_judging(studio, ADMIN, "other", 0, 2, jobs=jobs)
    assert latest_batch_job(jobs) is running
    running.stop()
    running.join(timeout=5)
    assert latest_batch_job(jobs) is running  # the newest, ended too

"""Batch judging a dataset into the store: resumable, even after kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend
from core.service import judge_dataset
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.schema import JudgementRow

GOOD = "Specific Criteria: c\nAnalysis: a\nScores: \\boxed{8, 3}"


def make_dataset(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}?", "responses": [f"a{i}", f"b{i}"], "best": 0}) + "\n"
        for i in range(n)
    ))
    return path


def judged_items(engine) -> list[int]:
    with Session(engine) as session:
        return list(session.scalars(select(JudgementRow.item_id).order_by(JudgementRow.item_id)))


def test_rerun_skips_finished_items_and_an_interruption_loses_nothing(store, tmp_path):
    import_file(store, make_dataset(tmp_path, 6), "toy")
    params = SamplingParams(k=2)
    judge = Judge(ScriptedBackend([GOOD] * 100))
    first = judge_dataset(store, judge, "toy", params, limit=2)
    assert (first.total, first.already_done, first.judged) == (2, 0, 2)

    def stop_after_one_more(report) -> None:
        if report.judged == 1:
            raise KeyboardInterrupt

    with contextlib.suppress(KeyboardInterrupt):
        judge_dataset(store, judge, "toy", params, on_item=stop_after_one_more)
    assert len(judged_items(store)) == 3
    rest = judge_dataset(store, judge, "toy", params)
    assert (rest.total, rest.already_done, rest.judged) == (6, 3, 3)
    ids = judged_items(store)
    assert len(ids) == len(set(ids)) == 6
    other = judge_dataset(store, judge, "toy", SamplingParams(k=2, seed=9))  # new settings
    assert other.judged == 6
    prefilled = Judge(ScriptedBackend([GOOD] * 20), prefill=True)
    assert judge_dataset(store, prefilled, "toy", SamplingParams(k=2)).judged == 6


SLOW_RUN = textwrap.dedent(
    """
    import sys, time
    from core import Judge, SamplingParams, ScriptedBackend
    from core.service import judge_dataset
    from core.store.db import make_engine

    class Slow(ScriptedBackend):
        def generate(self, prompts, params, *, assistant_prefix=""):
            time.sleep(0.3)
            return super().generate(prompts, params, assistant_prefix=assistant_prefix)

    text = "Scores: \\\\boxed{8, 3}"
    judge_dataset(make_engine(sys.argv[1]), Judge(Slow([text] * 200)), "toy", SamplingParams(k=2))
    """
)


def test_kill_9_mid_run_then_rerun_finishes_without_duplicates(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    import_file(engine, make_dataset(tmp_path, 12), "toy")
    script = tmp_path / "run.py"
    script.write_text(SLOW_RUN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, str(script), url], env=env)
    deadline = time.monotonic() + 60
    while len(judged_items(engine)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = judged_items(engine)
    assert 3 <= len(partial) < 12
    subprocess.run([sys.executable, str(script), url], env=env, check=True, timeout=120)
    ids = judged_items(engine)
    assert len(ids) == len(set(ids)) == 12
    assert set(partial) <= set(ids)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(JudgementRow)) == 12

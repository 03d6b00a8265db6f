"""Scale-out: two reward-server replicas on one PostgreSQL store, as behind a load
balancer. Every reward served by either lands once in the shared store, tagged
with its run and step, and `grm-studio rewards` sees both replicas' rows; the
replicas' first judgements at once record the judge once. Both replicas start
at once on an empty database (the migrations take turns)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bench.reward_load import served
from bench.rule_judge import RuleJudgeBackend, length_score
from cli import app as cli_app
from core.config import Settings
from core.engine import Judge
from core.store import open_store
from core.store.judgements import fetch_judgement
from core.store.rewards import reward_runs
from core.store.schema import JudgeModel, ServedReward
from webapp.reward_server import reward_app

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 24  # over 6 steps, 4 a step, sent 8 at a time to the two replicas in turn


def start_together(settings: Settings) -> list[Engine]:
    """Both replicas' stores opened at once (each migrates the empty database, as
    `serve-reward` does at start): they take turns, neither fails nor waits forever."""
    pool = ThreadPoolExecutor(2)
    try:
        opening = [pool.submit(open_store, settings) for _ in range(2)]
        return [future.result(timeout=120) for future in opening]
    finally:
        pool.shutdown(wait=False)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_replicas_share_one_postgres_store(store_url, tmp_path, monkeypatch):
    settings = Settings(data_dir=tmp_path, database_url=store_url, k=2, demo_file=None)
    engines = start_together(settings)
    with ExitStack() as replicas:
        urls = [replicas.enter_context(served(reward_app(
            settings, engine, judge=Judge(RuleJudgeBackend(), rescue=True))))
            for engine in engines]
        for url in urls:
            assert httpx.get(f"{url}/ready", timeout=30).json()["ready"] is True

        def send(i: int) -> tuple[int, dict]:
            replica = i % 2  # round-robin, as a load balancer would
            body = {"query": f"prompt {i // 2}", "responses": ["a", "a b " * (1 + i % 4)],
                    "run": "replicas", "step": i // 4, "k": 2}
            answer = httpx.post(f"{urls[replica]}/v1/reward", json=body, timeout=60)
            assert answer.status_code == 200, answer.text
            return replica, answer.json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(REQUESTS)))

    engine = engines[0]
    with Session(engine) as session:
        rows = list(session.scalars(select(ServedReward).order_by(ServedReward.id)))
        judges = session.scalars(select(JudgeModel)).all()
    by_request = {answer["request_id"]: (i, replica, answer)
                  for i, (replica, answer) in enumerate(answers)}
    assert Counter(replica for replica, _ in answers) == {0: REQUESTS // 2, 1: REQUESTS // 2}
    # each served reward is stored once, under the request that got it, with run and step
    assert Counter(r.request_id for r in rows) == dict.fromkeys(by_request, 1)
    for row in rows:
        i, _, answer = by_request[row.request_id]
        assert (row.run, row.step, row.responses) == ("replicas", i // 4, [0, 1])
        assert row.rewards == answer["rewards"]
        assert row.judgement_id == answer["judgements"][0]["judgement_id"]
        judgement = fetch_judgement(engine, row.judgement_id)
        assert row.rewards == [float(length_score(r)) for r in judgement.input.responses]
    assert len({r.judgement_id for r in rows}) == REQUESTS
    assert [(j.name, j.backend) for j in judges] == [("rule-judge", "scripted")]  # once

    # what `grm-studio rewards` reads: both replicas' rows, one run, by step
    (run,) = reward_runs(engine)
    assert (run.run, run.requests, run.judgements) == ("replicas", REQUESTS, REQUESTS)
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", store_url)
    monkeypatch.setenv("GRM_STUDIO_DATA_DIR", str(tmp_path))
    listed = CliRunner().invoke(cli_app, ["rewards", "--run", "replicas", "--json"])
    assert listed.exit_code == 0, listed.output
    figures = json.loads(listed.output)
    assert [(s["step"], s["requests"]) for s in figures["steps"]] == [(s, 4) for s in range(6)]
    assert figures["total"]["requests"] == REQUESTS
    assert figures["total"]["responses"] == 2 * REQUESTS
    for engine in engines:
        engine.dispose()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_processes_starting_at_once_on_an_empty_store_both_start(store_url):
    """What `serve-reward` replicas started together do first: migrate the store.
    Without the migration lock one failed: "alembic_version already exists"."""
    code = ("from core.config import Settings; from core.store import open_store; "
            f"open_store(Settings(database_url={store_url!r}, demo_file=None)); print('opened')")
    started = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(2)]
    for process in started:
        out, err = process.communicate(timeout=180)
        assert (process.returncode, out.strip()) == (0, "opened"), err[-2000:]

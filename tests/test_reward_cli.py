"""`grm-studio rewards`: the runs served, and one run's figures per step."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bench.rule_judge import GARBLE, RuleJudgeBackend
from cli import app
from core.config import Settings
from core.engine import Judge
from core.reward import RewardJob, RewardRequest, serve_rewards
from core.store import open_store
from core.types import SamplingParams

runner = CliRunner()


def test_rewards_lists_runs_and_summarises_one_per_step(tmp_path, monkeypatch):
    monkeypatch.setenv("GRM_STUDIO_DATA_DIR", str(tmp_path))
    assert "no rewards served yet" in runner.invoke(app, ["rewards"]).output
    engine = open_store(Settings(data_dir=tmp_path))
    judge = Judge(RuleJudgeBackend(), rescue=True)
    k2 = SamplingParams(k=2)
    serve_rewards(engine, judge, [
        RewardJob(RewardRequest(query="q", responses=("a b", "c d"), run="r1", step=0), k2),
        RewardJob(RewardRequest(query="q", responses=("a", GARBLE), run="r1", step=1), k2),
    ])
    engine.dispose()
    listed = runner.invoke(app, ["rewards"])
    assert listed.exit_code == 0 and listed.output.startswith("r1") and "2 requests" in listed.output
    table = runner.invoke(app, ["rewards", "--run", "r1", "--close", "5"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[2].split()[:5] == ["0", "1", "2", "2.00", "2.0"]
    assert lines[3].split()[:4] == ["1", "1", "2", "-"]  # step 1: both unscored
    assert lines[4].startswith("   all")
    assert "judgement 1 (step 0): tie" in table.output
    data = json.loads(runner.invoke(app, ["rewards", "--run", "r1", "--json"]).output)
    assert [s["unscored"] for s in data["steps"]] == [0, 2]
    assert data["steps"][1]["parse_failure_rate"] == 1.0
    sent = runner.invoke(app, ["rewards", "--run", "r1", "--close", "5", "--annotate"])
    assert "sent 1 close vote(s) to annotation as items of dataset 'rewards-r1'" in sent.output
    missing = runner.invoke(app, ["rewards", "--run", "nope"])
    assert missing.exit_code == 2 and "no rewards were served to run 'nope'" in missing.output

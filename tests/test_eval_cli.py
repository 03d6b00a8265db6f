"""`grm-studio eval` as a user runs it, and one small real evaluation on the
embedded model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app
from core import Judge, SamplingParams, ScriptedBackend
from core.service import run_evaluation
from core.store.db import make_engine, upgrade
from core.store.evals import eval_runs
from core.store.importing import import_file
from tests.scripted_eval import RECORDS, script

runner = CliRunner()


@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    """A SQLite store with the toy dataset, configured through the environment."""
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GRM_STUDIO_PREFILL", "false")
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    result = runner.invoke(app, ["import", str(path), "--dataset", "toy"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_eval_prints_and_writes_the_report(cli_store, monkeypatch):
    # The model loader gives a replaying backend, so the numbers are known exactly.
    monkeypatch.setattr("core.backends.load_backend", lambda settings: ScriptedBackend(script()))
    out = cli_store / "report"
    result = runner.invoke(app, ["eval", "--dataset", "toy", "--k", "1,2,4", "--no-rescue",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "# Evaluation #1: toy" in result.output
    # No human label here, so item B keeps its ground truth (response 2): greedy gets it right,
    # voting@4 (21-20 for response 1) wrong.
    assert "| greedy | (all) | 3 | 2 | 66.7% |" in result.output
    assert "| voting@4 | (all) | 3 | 0 | 0.0% |" in result.output
    assert "excluded: unlabelled: 1" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_vs_k.html", "report.md", "results.csv"]
    engine = make_engine(f"sqlite:///{cli_store / 'cli.db'}")
    (run,) = eval_runs(engine)
    assert (run.status, run.ks, run.params["rescue"]) == ("finished", (1, 2, 4), False)
    engine.dispose()


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "nope"], "there is no dataset 'nope'"),
    (["--dataset", "toy", "--k", "1,x"], "--k takes whole numbers"),
    (["--dataset", "toy", "--k", "0,4"], "at least 1"),
    (["--dataset", "toy", "--voting", "meta"], "needs a meta reward model (--meta-model PATH)"),
    (["--dataset", "toy", "--voting", "sum,meta", "--meta-model", "/no/such/meta"],
     "train one with `grm-studio meta train`"),
    (["--dataset", "toy", "--meta-model", "/no/such/meta"], "--meta-model is for --voting meta"),
])
def test_bad_options_are_one_clear_line(cli_store, monkeypatch, args, message):
    def no_model(settings):
        raise AssertionError("the model must not load for bad options")

    monkeypatch.setattr("core.backends.load_backend", no_model)
    result = runner.invoke(app, ["eval", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.model
def test_a_small_real_evaluation_on_the_embedded_model(embedded_backend, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'real.db'}")
    upgrade(engine)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"prompt": "What is 2+2?", "responses": ["4", "5"], "best": 0},
        {"prompt": "Capital of France?", "responses": ["Berlin.", "Paris."], "best": 1},
    ]))
    import_file(engine, path, "tiny")
    judge = Judge(embedded_backend, rescue=True, prefill=True)
    evaluation = run_evaluation(engine, judge, "tiny", SamplingParams(max_new_tokens=24),
                                ks=(1, 2))
    assert evaluation.run.status == "finished" and evaluation.run.evaluated == 2
    assert [(r.method, r.k) for r in evaluation.overall()] == [
        ("greedy", 1), ("single", 1), ("vote", 2)]
    for result in evaluation.overall():
        assert result.accuracy.n == 2 and result.correct in (0, 1, 2)
        assert result.accuracy.value == result.correct / 2
        assert result.samples == (2 if result.k == 1 else 4)
    engine.dispose()

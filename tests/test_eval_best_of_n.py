"""Evaluating best-of-n items (issues 18 and 20) with a scripted judge: best-of-n
accuracy by the strict rule, pairwise accuracy beside it from the same votes, ties
and unscored items explicit, and `grm-studio eval` reporting both."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app
from core import Judge, SamplingParams, ScriptedBackend
from core.evaluation import Evaluation, accuracy_results
from core.evaluation.report import render_markdown
from core.service import judge_setup, run_evaluation
from core.store.db import make_engine, upgrade
from core.store.evals import evaluation_items, load_evaluation
from core.store.importing import import_file
from tests.scripted_best_of_n import PLAN, ROWS, TOO_MANY, script, write_rb2

TOO_MANY_REASON = "more than 9 responses (the most one prompt shows)"


@pytest.fixture
def rb2(tmp_path):
    return write_rb2(tmp_path / "rb2.parquet", [*ROWS, TOO_MANY])


def evaluate(tmp_path, path) -> Evaluation:
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    upgrade(engine)
    import_file(engine, path, "rb2", shape="rewardbench2")
    judge = Judge(ScriptedBackend(script(path, PLAN)), rescue=False)
    try:
        return run_evaluation(engine, judge, "rb2", SamplingParams(k=1), ks=(2,),
                              votings=("sum",), greedy=False)
    finally:
        engine.dispose()


def test_best_of_n_accuracy_and_pairwise_accuracy_from_the_same_votes(tmp_path, rb2):
    evaluation = evaluate(tmp_path, rb2)
    overall = {r.label: r for r in evaluation.overall()}
    single, voted = overall["single sample"], overall["voting@2"]
    # single: f-1 right, t-1 right (its correct answers tie 8-8 among themselves, above
    # the rest), t-2 has no valid sample
    assert (single.correct, single.accuracy.n) == (2, 3)
    assert (single.tie_rate, single.unscored_rate) == (0.0, pytest.approx(1 / 3))
    # pairs: f-1 3 of 3, t-1 4 of 4, t-2's 6 pairs tie 0-0: wrong
    assert (single.pairs_correct, single.pairwise.n) == (7, 13)
    # voting@2: f-1 votes sample 1 alone (right); t-1's lowest correct total (12) ties
    # the highest incorrect one (12): a tie, wrong; t-2 unscored
    assert (voted.correct, voted.accuracy.n) == (1, 3)
    assert voted.tie_rate == pytest.approx(1 / 3) and voted.unscored_rate == pytest.approx(1 / 3)
    assert (voted.pairs_correct, voted.pairwise.n) == (3 + 3 + 0, 13)
    assert voted.pairwise.value == pytest.approx(6 / 13)
    # three items give 13 pairs: too few items to resample for a CI
    assert voted.pairwise.low is None and "too few items" in (voted.pairwise.note or "")
    ties = {r.label: r for r in evaluation.results if r.category == "Ties"}
    assert (ties["voting@2"].correct, ties["voting@2"].pairs_correct) == (0, 3)


def test_the_run_says_what_it_left_out_and_reads_back(tmp_path, rb2):
    evaluation = evaluate(tmp_path, rb2)
    run = evaluation.run
    assert (run.considered, run.evaluated) == (4, 3)
    assert run.excluded == ((TOO_MANY_REASON, 1),)
    assert run.params["best_of_n_items"] == 2  # t-1 and t-2; f-1 has one correct answer
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    judge = Judge(ScriptedBackend([]), rescue=False)  # everything is judged already
    items, _, _ = evaluation_items(engine, judge_setup(judge), "rb2",
                                   SamplingParams(k=2))
    computed = accuracy_results(items, (2,), ("sum",))
    assert set(load_evaluation(engine, run.id).results) == set(computed)  # stored as computed
    engine.dispose()
    markdown = render_markdown(evaluation)
    assert "2 best-of-n item(s) with several correct responses" in markdown
    assert "every correct response strictly above every incorrect one" in markdown


def test_grm_studio_eval_reports_pairwise_beside_best_of_n(tmp_path, rb2, monkeypatch):
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GRM_STUDIO_PREFILL", "false")
    runner = CliRunner()
    imported = runner.invoke(app, ["import", str(rb2), "--dataset", "rb2"])
    assert imported.exit_code == 0, imported.output
    monkeypatch.setattr("core.backends.load_backend",
                        lambda settings: ScriptedBackend(script(rb2, PLAN)))
    result = runner.invoke(app, ["eval", "--dataset", "rb2", "--k", "2", "--no-rescue",
                                 "--no-greedy"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.split("|")[1:10]] == [
        "method", "category", "n", "correct", "accuracy", "95% CI", "pairs", "pairwise",
        "pairwise 95% CI"]
    row = next(line for line in result.output.splitlines()
               if line.startswith("| voting@2 | (all) |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2:5] == ["3", "1", "33.3%"] and cells[6:8] == ["13", "46.2%"]
    assert f"excluded: {TOO_MANY_REASON}: 1" in result.output

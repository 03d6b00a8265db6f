"""Evaluation: accuracy at k by the strict rule on a store judged by a replaying
backend (so every number is known exactly), the stored run, the report files and
the migration."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend
from core.engine import shown_orders
from core.errors import InputError
from core.evaluation import (
    NO_CATEGORY,
    EvalItem,
    Evaluation,
    accuracy_results,
    accuracy_vs_k_figure,
    method_plan,
    write_report,
)
from core.evaluation.report import CSV_COLUMNS, render_markdown
from core.store.db import current_revision, head_revision, make_engine, upgrade
from core.store.evals import eval_runs, load_evaluation
from core.types import JudgeInput
from tests.scripted_eval import (
    K_MAX,
    RECORDS,
    SAMPLED,
    evaluate,
    script,
    shown_text,
    toy_store,
)


@pytest.fixture
def engine(tmp_path):
    with toy_store(tmp_path) as engine:
        yield engine


def accuracies(evaluation: Evaluation, category: str | None = None) -> dict[str, float | None]:
    return {r.label: r.accuracy.value for r in evaluation.results if r.category == category}


def test_accuracy_at_k_by_the_strict_rule(engine):
    evaluation = evaluate(engine)
    assert accuracies(evaluation) == {
        "greedy": pytest.approx(1 / 3),  # A right; B wrong; C a three-way tie: wrong
        "single sample": pytest.approx(2 / 3),  # B's first sample ties 5-5: wrong
        "voting@2": pytest.approx(2 / 3),  # A's 2nd sample has no scores: A votes 8-3 alone
        "meta-guided@2": pytest.approx(1 / 3),  # keeps the 2nd sample, the valid one for A
        "voting@4": pytest.approx(1 / 3),  # A 16-17 wrong, B 21-20 right, C 17-25-18 wrong
        "meta-guided@4": pytest.approx(1 / 3),  # samples 3+4: A wrong, B right, C 14-14 tie
    }
    overall = {r.label: r for r in evaluation.overall()}
    assert overall["voting@4"].correct == 1 and overall["voting@4"].accuracy.n == 3
    assert overall["single sample"].tie_rate == pytest.approx(1 / 3)  # B's 5-5 decides B
    # C's 14-14 is between two wrong responses and the labelled best has 6: wrong, no tie
    assert overall["meta-guided@4"].tie_rate == 0.0
    assert overall["voting@4"].unscored_rate == 0.0
    # every item here has one best response: pairwise accuracy counts its n-1 pairs
    assert (overall["voting@4"].pairs_correct, overall["voting@4"].pairwise.n) == (2, 4)
    assert overall["voting@2"].parse_failure_rate == pytest.approx(1 / 6)
    assert overall["voting@4"].parse_failure_rate == pytest.approx(1 / 12)
    assert overall["voting@4"].invalid_rate == pytest.approx(1 / 12)
    assert overall["voting@4"].rescue_rate == 0.0 and overall["voting@4"].samples == 12
    ci = overall["voting@4"].accuracy
    assert ci.low is not None and ci.high is not None and ci.low <= 1 / 3 <= ci.high


def test_per_category_results_and_exclusions(engine):
    evaluation = evaluate(engine)
    assert evaluation.categories() == ("code", "math")
    assert accuracies(evaluation, "math") == {
        "greedy": 0.5, "single sample": 0.5, "voting@2": 0.5, "meta-guided@2": 0.5,
        "voting@4": 0.5, "meta-guided@4": 0.5}
    assert accuracies(evaluation, "code") == {
        "greedy": 0.0, "single sample": 1.0, "voting@2": 1.0, "meta-guided@2": 0.0,
        "voting@4": 0.0, "meta-guided@4": 0.0}
    run = evaluation.run
    assert (run.status, run.considered, run.evaluated) == ("finished", 4, 3)
    assert run.excluded == (("unlabelled", 1),)
    assert run.params["label_sources"] == {"dataset": 2, "human": 1}
    assert run.params["ks"] == [1, 2, 4] and run.params["k_max"] == 4


def test_position_bias_counts_the_shown_first_winner(engine):
    bias = evaluate(engine).position_bias
    decisive = first = 0
    for name in "ABC":  # the evaluated items (D has no label)
        rows = SAMPLED[name]
        for scores, order in zip(rows, shown_orders(len(rows[0] or ()), K_MAX, 0), strict=True):
            if scores is not None and max(scores) != sorted(scores)[-2]:
                decisive += 1
                first += scores.index(max(scores)) == order[0]
    assert bias is not None and (bias.decisive, bias.first_wins) == (decisive, first)
    assert bias.samples == 11 and bias.first_win_rate.value == pytest.approx(first / decisive)


def test_the_run_is_stored_and_reads_back_the_same(engine):
    evaluation = evaluate(engine)
    again = load_evaluation(engine, evaluation.run.id)
    assert again == evaluation == load_evaluation(engine)  # the latest by default
    assert [r.id for r in eval_runs(engine)] == [evaluation.run.id]
    plan = method_plan((1, 2, 4), ("sum", "meta"))
    assert [(r.method, r.k) for r in evaluation.overall()] == plan


def test_a_rerun_judges_nothing_again(engine):
    first = evaluate(engine)
    second = evaluate(engine, backend=ScriptedBackend([]))  # would fail if asked to generate
    assert second.run.id != first.run.id
    assert accuracies(second) == accuracies(first)
    assert len(eval_runs(engine)) == 2


def test_meta_voting_without_a_scorer_or_stored_scores_is_refused(engine):
    with pytest.raises(InputError, match="grm-studio meta train"):
        evaluate(engine, meta_scorer=None)
    (run,) = eval_runs(engine)
    assert run.status == "failed" and "meta reward model" in (run.error or "")


@pytest.mark.parametrize(("ks", "votings", "message"), [
    ((), ("sum",), "at least one k"), ((0, 2), ("sum",), "at least 1"),
    ((1, 2), ("max",), "one or more of sum, meta"),
])
def test_bad_options_are_refused_before_judging(engine, ks, votings, message):
    with pytest.raises(InputError, match=message):
        evaluate(engine, backend=ScriptedBackend([]), ks=ks, votings=votings)
    assert eval_runs(engine) == []


def test_without_a_greedy_run_greedy_is_left_out(engine):
    texts = script()[: 4 * K_MAX]
    evaluation = evaluate(engine, backend=ScriptedBackend(texts), greedy=False,
                          votings=("sum",), ks=(4,))
    assert accuracies(evaluation) == {"single sample": pytest.approx(2 / 3),
                                      "voting@4": pytest.approx(1 / 3)}


def test_the_report_files(engine, tmp_path):
    evaluation = evaluate(engine)
    paths = write_report(evaluation, tmp_path / "out")
    assert [p.name for p in paths] == ["report.md", "results.csv", "accuracy_vs_k.html"]
    markdown = paths[0].read_text()
    assert markdown == render_markdown(evaluation)
    assert "| voting@4 | (all) | 3 | 1 | 33.3% |" in markdown
    assert "## Per category" in markdown and "| single sample | code | 1 | 1 | 100.0% |" in (
        markdown)
    assert "excluded: unlabelled: 1" in markdown and "Position bias:" in markdown
    with paths[1].open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == len(evaluation.results) == 18
    vote4 = next(r for r in rows if r["method"] == "vote" and r["k"] == "4" and not r["category"])
    assert float(vote4["accuracy"]) == pytest.approx(1 / 3) and vote4["n"] == "3"
    html = paths[2].read_text()
    assert "<html" in html and "Plotly.newPlot" in html
    assert '<script src="http' not in html and len(html) > 1_000_000  # plotly.js is inline
    assert not list((tmp_path / "out").glob(".*partial"))


def test_the_accuracy_vs_k_figure(engine):
    figure = accuracy_vs_k_figure(evaluate(engine))
    traces = {t.name: t for t in figure.data}
    assert set(traces) == {"voting (sum of k)", "meta-guided@k", "greedy"}
    voting = traces["voting (sum of k)"]
    assert voting.x == (1, 2, 4)
    assert voting.y == (pytest.approx(2 / 3), pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert traces["meta-guided@k"].x == (1, 2, 4)  # starts from the single sample
    assert traces["greedy"].y == (pytest.approx(1 / 3),) * 2
    assert figure.layout.height is None and figure.layout.xaxis.type == "log"


def test_the_migration_adds_and_removes_the_eval_tables(store_url):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store.db import alembic_config
    from core.store.schema import Base

    engine = make_engine(store_url)
    upgrade(engine, "0006")
    assert not {"eval_run", "eval_result"} & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    columns = {c["name"] for c in inspect(engine).get_columns("eval_result")}
    assert columns == {
        "id", "run_id", "method", "k", "category", "n", "correct", "accuracy", "ci_low",
        "ci_high", "note", "samples", "parse_failure_rate", "rescue_rate", "invalid_rate",
        "tie_rate", "first_win_rate", "unscored_rate", "pairwise"}
    assert {c["name"] for c in inspect(engine).get_columns("eval_run")} == {
        "id", "dataset_id", "judge_model_id", "params", "status", "error", "considered",
        "evaluated", "excluded", "position_bias", "created_at", "finished_at", "runner_host",
        "runner_pid"}
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    command.downgrade(alembic_config(engine), "0006")
    assert not {"eval_run", "eval_result"} & set(inspect(engine).get_table_names())
    engine.dispose()


def test_a_breakdown_needs_two_categories():
    texts = [shown_text((8, 3), order) for order in shown_orders(2, 2, 0)]
    judgement = Judge(ScriptedBackend(texts), rescue=False).judge(
        JudgeInput(query="q?", responses=("a", "b")), SamplingParams(k=2))
    same = [EvalItem(i, "llmbar", 0, "dataset", judgement) for i in (1, 2)]
    assert {r.category for r in accuracy_results(same, (1, 2))} == {None}
    mixed = [EvalItem(1, "llmbar", 0, "dataset", judgement),
             EvalItem(2, None, 1, "human", judgement)]
    results = accuracy_results(mixed, (1, 2))
    assert {r.category for r in results} == {None, "llmbar", NO_CATEGORY}
    assert {r.category: r.accuracy.value for r in results if r.method == "vote"} == {
        None: 0.5, "llmbar": 1.0, NO_CATEGORY: 0.0}


KILLED_CHILD = """
import sys, time
from core import Judge, SamplingParams, ScriptedBackend
from core.store.db import make_engine
from core.service import run_evaluation

class Stuck(ScriptedBackend):
    def generate(self, *args, **kwargs):
        print("judging", flush=True)
        time.sleep(600)  # killed before it returns

engine = make_engine(sys.argv[1])
run_evaluation(engine, Judge(Stuck([]), rescue=False), "toy", SamplingParams(k=1), ks=(1, 2))
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="POSIX signals")
def test_a_run_whose_process_was_killed_is_closed_as_interrupted(engine, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from core.store.schema import EvalRun as EvalRunRow

    root = Path(__file__).resolve().parent.parent
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, url], cwd=root, text=True,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert child.stdout is not None and child.stdout.readline() == "judging\n"
        with Session(engine) as session:  # the child's run, as the store has it mid-way
            (row,) = session.scalars(select(EvalRunRow))
            assert (row.status, row.runner_pid) == ("running", child.pid)
        with Session(engine) as session, session.begin():  # one of this (live) process
            session.add(EvalRunRow(dataset_id=row.dataset_id, judge_model_id=row.judge_model_id,
                                   params=row.params, status="running", excluded={},
                                   runner_host=row.runner_host, runner_pid=os.getpid()))
        assert [r.status for r in eval_runs(engine)] == ["running", "running"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    child.stdout.close()
    ours, killed = eval_runs(engine)  # newest first; reading stores nothing
    assert (killed.status, ours.status) == ("interrupted", "running")
    assert f"pid {child.pid}" in (killed.error or "") and killed.finished_at is None
    assert load_evaluation(engine, killed.id).run.status == "interrupted"
    with Session(engine) as session:
        assert session.get_one(EvalRunRow, killed.id).status == "running"
    evaluate(engine)  # the next evaluation stores the orphan as interrupted
    with Session(engine) as session:
        stored = session.get_one(EvalRunRow, killed.id)
        assert stored.status == "interrupted" and stored.finished_at is not None
        assert session.get_one(EvalRunRow, ours.id).status == "running"  # alive: untouched


def test_meta_voting_on_stored_scores_records_their_meta_model_and_refuses_a_mix(engine):
    from sqlalchemy import func

    from core.store.meta_scores import register_meta_model, save_meta_scores
    from core.store.schema import SampleRow

    with_scorer = evaluate(engine)
    with Session(engine) as session:
        sampled = list(session.scalars(select(SampleRow.judgement_id)
                                       .group_by(SampleRow.judgement_id)
                                       .having(func.count() == K_MAX)))
    assert len(sampled) == len(RECORDS)
    first, second = (register_meta_model(engine, name=n, source=f"/m/{n}", base_model="b",
                                         content_hash=n * 64, positives=1, negatives=1)
                     for n in "ab")
    for judgement_id in sampled:  # what LaterIsBetter rates: the sample's index
        save_meta_scores(engine, judgement_id, [0.0, 1.0, 2.0, 3.0], meta_model_id=first)
    stored = evaluate(engine, backend=ScriptedBackend([]), meta_scorer=None)
    assert stored.run.params["stored_meta_model_id"] == first
    assert accuracies(stored) == accuracies(with_scorer)
    assert f"by meta model #{first}" in render_markdown(stored)

    save_meta_scores(engine, sampled[0], [3.0, 2.0, 1.0, 0.0], meta_model_id=second)
    with pytest.raises(InputError, match=f"different meta reward models \\({first}, {second}\\)"):
        evaluate(engine, backend=ScriptedBackend([]), meta_scorer=None)
    assert eval_runs(engine)[0].status == "failed"

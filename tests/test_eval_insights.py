"""The Evaluations section of the Insights tab, over a real store with stored runs."""

from __future__ import annotations

import gradio as gr
import pytest

from core import Settings
from core.errors import GRMStudioError
from core.store.db import make_engine, upgrade
from tests.scripted_eval import evaluate, toy_store
from webapp import insight_charts as charts
from webapp.insights_tab import (
    NO_EVALUATIONS,
    build_insights_tab,
    evaluation_choices,
    evaluation_view,
)
from webapp.studio import Studio


@pytest.fixture
def engine(tmp_path):
    with toy_store(tmp_path) as engine:
        yield engine


def test_no_runs_explains_instead_of_failing(tmp_path):
    store = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    upgrade(store)
    view = evaluation_view(Studio(Settings(), store), None)
    assert view.message == NO_EVALUATIONS
    assert view.runs.empty and view.results.empty and view.plot.data == ()
    assert view.plot.layout.height is None
    store.dispose()


def test_the_latest_run_and_a_chosen_one(engine):
    studio = Studio(Settings(), engine)
    first = evaluate(engine)
    second = evaluate(engine, ks=(1, 4), votings=("sum",))  # judged already: nothing new
    assert [value for _, value in evaluation_choices(studio)] == [second.run.id, first.run.id]
    latest = evaluation_view(studio, None)
    assert f"**#{second.run.id}**" in latest.message
    assert "3 of 4 items evaluated (unlabelled: 1 left out)" in latest.message
    assert latest.runs["run"].tolist() == [f"#{second.run.id}", f"#{first.run.id}"]
    assert latest.results["method"].tolist()[:3] == ["greedy", "single sample", "voting@4"]
    assert latest.results.iloc[2][["n", "correct", "accuracy"]].tolist() == [3, 1, "33.3%"]
    (voting, greedy) = latest.plot.data
    assert voting.x == (1, 4) and greedy.name == "greedy"
    chosen = evaluation_view(studio, float(first.run.id))
    assert {t.name for t in chosen.plot.data} == {"voting (sum of k)", "meta-guided@k",
                                                  "greedy"}
    assert len(chosen.results) == len(first.results) and list(chosen.results.columns) == (
        charts.EVAL_RESULT_COLUMNS)


def test_an_unknown_run_is_an_error_that_names_it(engine):
    evaluate(engine)
    with pytest.raises(GRMStudioError, match="no evaluation run with id 999"):
        evaluation_view(Studio(Settings(), engine), 999)


def test_the_section_builds_and_its_events_fill_every_output(engine):
    studio = Studio(Settings(), engine)
    run = evaluate(engine).run
    with gr.Blocks() as demo:
        build_insights_tab(studio)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert {"insights-eval-run", "insights-eval-refresh", "insights-eval-status",
            "insights-eval-plot", "insights-eval-results", "insights-eval-runs"} <= set(by_id)
    status = by_id["insights-eval-status"]
    shows = [f for f in demo.fns.values() if status._id in [o._id for o in f.outputs]]
    assert shows and all(len(f.outputs) == 4 for f in shows)
    message, runs, results, plot = shows[0].fn(None)
    assert f"**#{run.id}**" in message and len(runs) == 1 and not results.empty
    assert plot.data
    chooser = by_id["insights-eval-run"]
    refreshes = [f for f in demo.fns.values() if [o._id for o in f.outputs] == [chooser._id]]
    assert refreshes and refreshes[0].fn()["choices"] == evaluation_choices(studio)


@pytest.mark.parametrize("value", [None])
def test_the_empty_figure_never_sets_a_height(value):
    assert charts.eval_accuracy_figure(value).layout.height is None

"""The Insights tab: what the judge gets right, and how, from `core.insights`.

The handlers (`dataset_choices`, `insights_view`, `consistency_view`,
`diversity_view`, `evaluation_choices`, `evaluation_view`; judge against judge in
`webapp.compare_view`) are plain
functions of the studio and plain values that return plain values and figures,
so tests call them without a browser. They raise core's errors (a dataset or
judgement that is not there, an id that is not one); the handlers show them the
one way (`webapp.errors.shows_errors`: one pop-up, the panels left as they were).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.errors import InputError
from core.estimates import MIN_BOOTSTRAP_ITEMS
from core.evaluation import EvalRun, Evaluation
from core.insights import (
    accuracy_by_dataset,
    agreement_matrix,
    margin_vs_accuracy,
    position_bias,
    principle_diversity,
    score_distributions,
    self_consistency,
)
from core.references import references_words
from core.store.evals import eval_runs, load_evaluation
from core.store.judgements import fetch_judgement
from core.store.stats import dataset_counts
from webapp import insight_charts as charts
from webapp.compare_view import build_compare_section
from webapp.errors import shows_errors
from webapp.studio import Studio

ALL = "all"
EMPTY_STORE = (
    "The store holds no datasets yet. Import one (`grm-studio import FILE --dataset NAME`) "
    "and judge it (`grm-studio judge --dataset NAME`) to see insights here."
)
NO_EVALUATIONS = (
    "No evaluation runs yet: `grm-studio eval --dataset NAME --k 1,8` judges a labelled "
    "dataset and scores greedy, one sample and voting@k; its results show here."
)
CI_NOTE = (
    "CIs are 95%: Wilson intervals for rates such as accuracy, a bootstrap over items for "
    f"kappa, given from {MIN_BOOTSTRAP_ITEMS} shared items up (fewer say \"too few items\")."
)
NO_JUDGEMENTS = (
    "No judgements in {scope} yet: judge its items (`grm-studio judge --dataset NAME`) "
    "or use the Judge tab."
)


@dataclass(frozen=True)
class InsightsView:
    """Everything the tab shows for one dataset choice."""

    message: str  # Markdown: what is shown, or why nothing is
    accuracy_plot: go.Figure
    accuracy_table: pd.DataFrame
    agreement_plot: go.Figure
    agreement_table: pd.DataFrame
    scores_plot: go.Figure
    margin_plot: go.Figure
    bias_plot: go.Figure
    bias_text: str


@dataclass(frozen=True)
class DiversityView:
    """The principle diversity of one judgement's samples."""

    message: str
    plot: go.Figure
    terms: pd.DataFrame


@dataclass(frozen=True)
class EvaluationView:
    """The latest evaluation runs and the results of one of them."""

    message: str
    runs: pd.DataFrame
    results: pd.DataFrame
    plot: go.Figure


def dataset_choices(studio: Studio) -> list[str]:
    """'all', then the store's dataset names."""
    return [ALL, *(counts.dataset for counts in dataset_counts(studio.engine))]


def _scope(dataset: str | None) -> str | None:
    return None if not dataset or dataset == ALL else dataset


def _empty_view(message: str) -> InsightsView:
    blank = charts.empty_figure("", "nothing to draw yet")  # the message says what to do
    return InsightsView(
        message=message, accuracy_plot=blank,
        accuracy_table=pd.DataFrame(columns=charts.ACCURACY_COLUMNS), agreement_plot=blank,
        agreement_table=pd.DataFrame(columns=charts.AGREEMENT_COLUMNS), scores_plot=blank,
        margin_plot=blank, bias_plot=blank, bias_text="",
    )


def insights_view(studio: Studio, dataset: str | None) -> InsightsView:
    """The Insights of one dataset (or of all, for `ALL` / None); a dataset that is
    not there raises InputError (the handler shows it)."""
    scope = _scope(dataset)
    engine = studio.engine
    accuracy = [a for a in accuracy_by_dataset(engine) if scope in (None, a.dataset)]
    matrix = agreement_matrix(engine, scope)
    scores = score_distributions(engine, scope)
    margins = margin_vs_accuracy(engine, scope)
    bias = position_bias(engine, scope)
    if not accuracy and scores.samples == 0:
        return _empty_view(EMPTY_STORE)
    where = "the store" if scope is None else f"dataset `{scope}`"
    if scores.samples == 0 and not any(a.judged for a in accuracy):
        message = NO_JUDGEMENTS.format(scope=where)
    else:
        judged = sum(a.judged for a in accuracy)
        message = (f"Insights of {where}: {judged} judged items, {scores.samples} valid samples "
                   "(the latest judgement of an item is its verdict, scored against the item's "
                   "label: its annotators' majority, else the dataset's). "
                   f"{CI_NOTE}")
    return InsightsView(
        message=message,
        accuracy_plot=charts.accuracy_figure(accuracy),
        accuracy_table=charts.accuracy_table(accuracy),
        agreement_plot=charts.agreement_figure(matrix),
        agreement_table=charts.agreement_table(matrix),
        scores_plot=charts.score_figure(scores),
        margin_plot=charts.margin_figure(margins),
        bias_plot=charts.position_bias_figure(bias),
        bias_text=charts.position_bias_sentence(bias),
    )


def _judgement_id(raw: float | str | None) -> int:
    if raw is None or str(raw).strip() == "":
        raise InputError("enter a judgement id (the Judge tab shows it, e.g. #12)")
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"'{raw}' is not a judgement id") from None
    if not value.is_integer() or value < 1:
        raise InputError(f"'{raw}' is not a judgement id: ids are whole numbers from 1")
    return int(value)


def diversity_view(studio: Studio, raw_id: float | str | None) -> DiversityView:
    """How different the principles of judgement `raw_id`'s samples are (InputError
    for an id that is not one)."""
    judgement_id = _judgement_id(raw_id)
    judgement = fetch_judgement(studio.engine, judgement_id)
    diversity = principle_diversity(judgement)
    parts = [(f"Judgement **#{judgement_id}**: {len(judgement.samples)} samples, "
              f"{len(diversity.samples)} with principles.")]
    if diversity.mean_similarity is not None:
        parts.append(f"Mean pairwise similarity {diversity.mean_similarity:.2f} "
                     "(TF-IDF cosine; 1 = the same terms, 0 = none shared).")
    if diversity.missing:
        parts.append("No principles in sample(s) "
                     + ", ".join(str(i + 1) for i in diversity.missing) + ".")
    if diversity.note:
        parts.append(f"Note: {diversity.note}.")
    return DiversityView(" ".join(parts), charts.diversity_figure(diversity),
                         charts.term_table(diversity))


def evaluation_choices(studio: Studio) -> list[tuple[str, int]]:
    """(label, run id) of the latest evaluation runs, newest first."""
    def label(r: EvalRun) -> str:
        hidden = " · references hidden" if r.references == "hidden" else ""
        return f"#{r.id} · {r.dataset} · {r.judge} · k={','.join(map(str, r.ks))}{hidden} · {r.status}"

    return [(label(r), r.id) for r in eval_runs(studio.engine)]


def _evaluation_message(evaluation: Evaluation) -> str:
    run = evaluation.run
    excluded = "; ".join(f"{why}: {n}" for why, n in run.excluded)
    text = (f"Evaluation **#{run.id}** of `{run.dataset}` by {run.judge} ({run.status}, "
            f"{references_words(run.references, run.params.get('reference_items'))}): "
            f"{run.evaluated} of {run.considered} items evaluated"
            + (f" ({excluded} left out)" if excluded else "")
            + ". Strict rule (a tie is wrong); CIs are 95%.")
    return text + (f" Error: {run.error}" if run.error else "")


def evaluation_view(studio: Studio, run_id: float | None) -> EvaluationView:
    """The latest runs, and the results of run `run_id` (default: the latest; a run
    that is not there raises InputError)."""
    runs = eval_runs(studio.engine)
    if not runs:
        return EvaluationView(NO_EVALUATIONS, charts.eval_runs_table([]),
                              pd.DataFrame(columns=charts.EVAL_RESULT_COLUMNS),
                              charts.eval_accuracy_figure(None))
    evaluation = load_evaluation(studio.engine, None if run_id is None else int(run_id))
    return EvaluationView(_evaluation_message(evaluation), charts.eval_runs_table(runs),
                          charts.eval_results_table(evaluation),
                          charts.eval_accuracy_figure(evaluation))


@dataclass(frozen=True)
class ConsistencyView:
    """How much the judge's samples agree over a dataset, and accuracy against it."""

    text: str
    distribution: go.Figure
    accuracy: go.Figure


def consistency_view(studio: Studio, dataset: str | None) -> ConsistencyView:
    """Self-consistency of one dataset's judgements (or all, for `ALL` / None)."""
    result = self_consistency(studio.engine, _scope(dataset))
    return ConsistencyView(charts.consistency_sentence(result), charts.consistency_figure(result),
                           charts.consistency_accuracy_figure(result))


@dataclass(frozen=True)
class _Panel:
    """The components an `InsightsView` is shown in."""

    message: gr.Markdown
    accuracy_plot: gr.Plot
    accuracy_table: gr.Dataframe
    agreement_plot: gr.Plot
    agreement_table: gr.Dataframe
    scores_plot: gr.Plot
    margin_plot: gr.Plot
    bias_plot: gr.Plot
    bias_text: gr.Markdown

    @property
    def components(self) -> list[Any]:
        return [getattr(self, name) for name in self.__dataclass_fields__]

    def show(self, view: InsightsView) -> dict[Any, Any]:
        return {getattr(self, name): getattr(view, name) for name in self.__dataclass_fields__}


def _build_panel() -> _Panel:
    message = gr.Markdown(elem_id="insights-status")
    with gr.Row():
        accuracy_plot = gr.Plot(label="Judge accuracy", elem_id="insights-accuracy")
        margin_plot = gr.Plot(label="Accuracy by margin", elem_id="insights-margin")
    accuracy_table = gr.Dataframe(label="Accuracy per dataset and category", interactive=False,
                                  headers=charts.ACCURACY_COLUMNS,
                                  elem_id="insights-accuracy-table")
    with gr.Row():
        agreement_plot = gr.Plot(label="Agreement (Cohen's kappa)", elem_id="insights-agreement")
        scores_plot = gr.Plot(label="Score distributions", elem_id="insights-scores")
    agreement_table = gr.Dataframe(label="Agreement per pair of raters", interactive=False,
                                   headers=charts.AGREEMENT_COLUMNS,
                                   elem_id="insights-agreement-table")
    with gr.Row():
        bias_plot = gr.Plot(label="Position bias", elem_id="insights-position-bias", scale=1)
        bias_text = gr.Markdown(elem_id="insights-position-bias-text")
    return _Panel(message, accuracy_plot, accuracy_table, agreement_plot, agreement_table,
                  scores_plot, margin_plot, bias_plot, bias_text)


def _build_consistency(studio: Studio, dataset: gr.Dropdown, refresh: gr.Button) -> None:
    gr.Markdown("### Self-consistency of the judge")
    text = gr.Markdown(elem_id="insights-consistency-text")
    with gr.Row():
        distribution = gr.Plot(label="Self-consistency", elem_id="insights-consistency")
        accuracy = gr.Plot(label="Accuracy against self-consistency",
                           elem_id="insights-consistency-accuracy")

    @shows_errors
    def on_show(chosen: str | None) -> tuple[str, go.Figure, go.Figure]:
        view = consistency_view(studio, chosen)
        return view.text, view.distribution, view.accuracy

    outputs = [text, distribution, accuracy]
    gr.on(None, on_show, inputs=dataset, outputs=outputs)  # page load + a change of dataset
    refresh.click(on_show, inputs=dataset, outputs=outputs)


def _build_diversity(studio: Studio) -> None:
    gr.Markdown("### Principle diversity of one judgement's samples")
    with gr.Row():
        judgement_id = gr.Number(label="Judgement id", precision=0,
                                 elem_id="insights-judgement-id")
        show = gr.Button("Show", elem_id="insights-diversity-show")
    message = gr.Markdown(elem_id="insights-diversity-status")
    with gr.Row():
        plot = gr.Plot(label="Principle similarity", elem_id="insights-diversity")
        terms = gr.Dataframe(label="Shared and distinct terms", interactive=False,
                             headers=charts.TERM_COLUMNS, elem_id="insights-diversity-terms")

    @shows_errors
    def on_show(raw: float | None) -> tuple[str, go.Figure, pd.DataFrame]:
        view = diversity_view(studio, raw)
        return view.message, view.plot, view.terms

    gr.on([show.click, judgement_id.submit], on_show, inputs=judgement_id,
          outputs=[message, plot, terms])


def _build_evaluations(studio: Studio) -> None:
    gr.Markdown("### Evaluations")
    with gr.Row():
        run = gr.Dropdown(choices=[], value=None, label="Evaluation run (latest first)",
                          scale=3, elem_id="insights-eval-run")
        refresh = gr.Button("↻ evaluations", size="sm", scale=0, elem_id="insights-eval-refresh")
    message = gr.Markdown(elem_id="insights-eval-status")
    plot = gr.Plot(label="Accuracy against k", elem_id="insights-eval-plot")
    results = gr.Dataframe(label="Results (all items, then per category)", interactive=False,
                           headers=charts.EVAL_RESULT_COLUMNS, elem_id="insights-eval-results")
    runs = gr.Dataframe(label="Latest evaluation runs", interactive=False,
                        headers=charts.EVAL_RUN_COLUMNS, elem_id="insights-eval-runs")

    @shows_errors
    def on_show(chosen: int | None) -> tuple[str, pd.DataFrame, pd.DataFrame, go.Figure]:
        view = evaluation_view(studio, chosen)
        return view.message, view.runs, view.results, view.plot

    @shows_errors
    def on_refresh() -> Any:
        return gr.update(choices=evaluation_choices(studio), value=None)

    outputs = [message, runs, results, plot]
    gr.on(None, on_show, inputs=run, outputs=outputs)  # page load and a change of run
    refresh.click(on_refresh, outputs=run).then(on_show, inputs=run, outputs=outputs)
    gr.on(None, on_refresh, outputs=run)  # page load


def build_insights_tab(studio: Studio) -> None:
    """The Insights tab's components and events; call it inside a `gr.Tab`."""
    with gr.Row():
        dataset = gr.Dropdown(choices=[ALL], value=ALL, label="Dataset", scale=3,
                              elem_id="insights-dataset")
        reload_names = gr.Button("↻ datasets", size="sm", scale=0,
                                 elem_id="insights-datasets-refresh")
        refresh = gr.Button("Refresh", variant="primary", scale=0, elem_id="insights-refresh")
    panel = _build_panel()
    _build_consistency(studio, dataset, refresh)
    _build_evaluations(studio)
    build_compare_section(studio)
    _build_diversity(studio)

    @shows_errors
    def on_names(current: str | None) -> Any:
        choices = dataset_choices(studio)
        return gr.update(choices=choices, value=current if current in choices else ALL)

    @shows_errors
    def on_refresh(chosen: str | None) -> dict[Any, Any]:
        return panel.show(insights_view(studio, chosen))

    @shows_errors
    def on_load() -> Any:
        return gr.update(choices=dataset_choices(studio))

    gr.on(None, on_load, outputs=dataset)  # page load
    reload_names.click(on_names, inputs=dataset, outputs=dataset)
    gr.on(None, on_refresh, inputs=dataset, outputs=panel.components)  # page load + change
    refresh.click(on_refresh, inputs=dataset, outputs=panel.components)

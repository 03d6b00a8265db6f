"""The "Judge against judge" section of the Insights tab (`core.compare`): pick two
sides (evaluation runs, read over all or their first k samples, or judge models)
and a dataset; see both accuracies, their paired difference, Cohen's kappa, who is
right where, and the items whose verdicts differ, each opened side by side with
both judgements' vote panels and sample cards (`webapp.cards`).

The handlers (`side_choices`, `compare_view`, `side_by_side`) are plain functions
of the studio and plain values, so tests call them without a browser; they raise
core's errors, which the section shows the one way (`webapp.errors.shows_errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.compare import JudgeComparison, PairedVerdict, first_samples
from core.errors import InputError
from core.estimates import Estimate
from core.service import compare_judges
from core.store.judgements import fetch_judgement
from core.store.stats import dataset_counts
from core.store.verdicts import side_choices as stored_sides
from webapp import insight_charts as charts
from webapp.cards import sample_cards_html, vote_panel_html
from webapp.errors import shows_errors
from webapp.studio import Studio

RUNS_DATASET = "(the runs' dataset)"
FIGURE_COLUMNS = ["figure", "value", "95% CI", "n", "note"]
CONFUSION_COLUMNS = ["", "B right", "B wrong"]
DIFFERING_COLUMNS = ["item", "category", "label", "A says", "B says", "outcome",
                     "judgements (A, B)"]
SIDE_INFO = "a run or judge, or type run:ID@K / judge:NAME@K (its first K samples)"
CHOOSE = ("Choose two sides, evaluation runs (`run:ID`, `@K` for their first K samples) or "
          "judge models, and a dataset, then Compare.")


@dataclass(frozen=True)
class CompareView:
    """Everything the section shows for one comparison."""

    message: str
    plot: go.Figure
    figures: pd.DataFrame
    confusion: pd.DataFrame
    differing: pd.DataFrame
    items: list[tuple[str, int]]  # (label, item id) of the differing items, to open
    comparison: JudgeComparison  # what the side-by-side view opens items of


def side_choices(studio: Studio) -> list[tuple[str, str]]:
    """(label, side) of the latest evaluation runs (one per k) and of the judge models."""
    return stored_sides(studio.engine)


def dataset_choices(studio: Studio) -> list[str]:
    return [RUNS_DATASET, *(c.dataset for c in dataset_counts(studio.engine))]


def _says(winner: int | None) -> str:
    return "no winner" if winner is None else f"R{winner + 1}"


def _figure_row(name: str, e: Estimate, spec: str) -> list[Any]:
    value = "" if e.value is None else f"{e.value:{spec}}"
    interval = "" if e.low is None or e.high is None else f"{e.low:{spec}} to {e.high:{spec}}"
    return [name, value, interval, e.n, e.note or ""]


def _item_label(p: PairedVerdict) -> str:
    return (f"item {p.item_id} · {p.outcome} · A: {_says(p.a.winner)}, B: {_says(p.b.winner)}"
            f" (label R{p.best + 1})")


def _message(c: JudgeComparison) -> str:
    left = "; ".join(f"{why}: {n}" for why, n in c.excluded)
    return (f"**A** {escape(c.a.label)}  \n**B** {escape(c.b.label)}  \n"
            f"On `{escape(c.dataset)}`: {len(c.items)} labelled items judged by both"
            + (f" (left out: {escape(left)})" if left else "")
            + f", {len(c.differing)} with different verdicts. Strict rule (a tie is wrong); "
            "accuracy CIs are Wilson 95%, the difference's and kappa's a bootstrap over items.")


def compare_view(studio: Studio, a: str | None, b: str | None,
                 dataset: str | None) -> CompareView:
    """Sides `a` and `b` on `dataset` (None or RUNS_DATASET: the runs' own)."""
    if not a or not b:
        raise InputError("choose two sides to compare (an evaluation run or a judge each)")
    chosen = None if not dataset or dataset == RUNS_DATASET else dataset
    c = compare_judges(studio.engine, a, b, chosen)
    figures = pd.DataFrame([
        _figure_row("accuracy A", c.accuracy_a, ".1%"),
        _figure_row("accuracy B", c.accuracy_b, ".1%"),
        _figure_row("A - B (paired)", c.difference, "+.1%"),
        _figure_row("Cohen's kappa (verdicts)", c.kappa, ".2f"),
    ], columns=FIGURE_COLUMNS)
    k = c.confusion
    confusion = pd.DataFrame([["A right", k.both_right, k.only_a],
                              ["A wrong", k.only_b, k.both_wrong]], columns=CONFUSION_COLUMNS)
    differing = pd.DataFrame([
        [p.item_id, p.category or "", f"R{p.best + 1}", _says(p.a.winner), _says(p.b.winner),
         p.outcome, f"#{p.a.judgement_id}, #{p.b.judgement_id}"] for p in c.differing
    ], columns=DIFFERING_COLUMNS)
    return CompareView(_message(c), charts.comparison_figure(c), figures, confusion, differing,
                       [(_item_label(p), p.item_id) for p in c.differing], c)


def _item_html(p: PairedVerdict, responses: tuple[str, ...], query: str) -> str:
    rows = "".join(
        f"<tr><th>R{i + 1}{' (label)' if i == p.best else ''}</th>"
        f'<td><div class="grm-text">{escape(r)}</div></td></tr>'
        for i, r in enumerate(responses))
    return (f'<div class="grm-compare-item" data-item="{p.item_id}"><div class="grm-label">'
            f'Item {p.item_id}: {escape(p.outcome)}</div><div class="grm-text">{escape(query)}'
            f'</div><table class="grm-table">{rows}</table></div>')


def _side_html(name: str, label: str, k: int | None, judgement_id: int,
               studio: Studio) -> str:
    stored = fetch_judgement(studio.engine, judgement_id)
    judgement = first_samples(stored, k)
    reading = (f"The verdict compared reads its first {k} of {len(stored.samples)} samples, "
               "shown here." if judgement is not stored else "")
    return (f'<div class="grm-compare-side" data-side="{name}"><div class="grm-label">'
            f"{name}: {escape(label)} · judgement #{judgement_id}</div>"
            f'<div class="grm-muted">{escape(reading)}</div>'
            f"{vote_panel_html(judgement)}{sample_cards_html(judgement)}</div>")


def side_by_side(studio: Studio, comparison: JudgeComparison | None,
                 item_id: int | None) -> tuple[str, str, str]:
    """(the item, A's judgement, B's judgement) as HTML, for one differing item."""
    if comparison is None or item_id is None:
        return "", "", ""
    paired = next((p for p in comparison.items if p.item_id == int(item_id)), None)
    if paired is None:
        raise InputError(f"item {item_id} is not in this comparison; compare again")
    a_html = _side_html("A", comparison.a.label, comparison.a.k, paired.a.judgement_id, studio)
    b_html = _side_html("B", comparison.b.label, comparison.b.k, paired.b.judgement_id, studio)
    shown = fetch_judgement(studio.engine, paired.a.judgement_id).input
    return _item_html(paired, shown.responses, shown.query), a_html, b_html


def build_compare_section(studio: Studio) -> None:
    """The section's components and events; call it inside the Insights tab."""
    gr.Markdown("### Judge against judge")
    with gr.Row():
        a = gr.Dropdown(choices=[], value=None, label="A", scale=3, allow_custom_value=True,
                        info=SIDE_INFO, elem_id="compare-a")
        b = gr.Dropdown(choices=[], value=None, label="B", scale=3, allow_custom_value=True,
                        info=SIDE_INFO, elem_id="compare-b")
        dataset = gr.Dropdown(choices=[RUNS_DATASET], value=RUNS_DATASET, label="Dataset",
                              scale=2, elem_id="compare-dataset")
        reload = gr.Button("↻", size="sm", scale=0, elem_id="compare-refresh")
        run = gr.Button("Compare", variant="primary", scale=0, elem_id="compare-run")
    message = gr.Markdown(CHOOSE, elem_id="compare-status")
    with gr.Row():
        plot = gr.Plot(label="Accuracy of A and B", elem_id="compare-plot")
        with gr.Column():
            figures = gr.Dataframe(label="Figures", interactive=False, headers=FIGURE_COLUMNS,
                                   elem_id="compare-figures")
            confusion = gr.Dataframe(label="Who is right (items)", interactive=False,
                                     headers=CONFUSION_COLUMNS, elem_id="compare-confusion")
    differing = gr.Dataframe(label="Items where the verdicts differ", interactive=False,
                             headers=DIFFERING_COLUMNS, elem_id="compare-differing")
    item = gr.Dropdown(choices=[], value=None, label="Open an item side by side",
                       elem_id="compare-item")
    item_html = gr.HTML(elem_id="compare-item-text")
    with gr.Row(equal_height=False):
        a_html = gr.HTML(elem_id="compare-side-a")
        b_html = gr.HTML(elem_id="compare-side-b")
    state = gr.State(None)

    @shows_errors
    def on_reload() -> tuple[Any, Any, Any]:
        sides, names = side_choices(studio), dataset_choices(studio)
        return (gr.update(choices=sides), gr.update(choices=sides),
                gr.update(choices=names))

    @shows_errors
    def on_compare(a_side: str | None, b_side: str | None, name: str | None) -> dict[Any, Any]:
        view = compare_view(studio, a_side, b_side, name)
        first = view.items[0][1] if view.items else None
        return {message: view.message, plot: view.plot, figures: view.figures,
                confusion: view.confusion, differing: view.differing,
                item: gr.update(choices=view.items, value=first), state: view.comparison}

    @shows_errors
    def on_item(comparison: JudgeComparison | None, chosen: int | None) -> tuple[str, str, str]:
        return side_by_side(studio, comparison, chosen)

    gr.on(None, on_reload, outputs=[a, b, dataset])  # page load
    reload.click(on_reload, outputs=[a, b, dataset])
    run.click(on_compare, inputs=[a, b, dataset],
              outputs=[message, plot, figures, confusion, differing, item, state]).then(
        on_item, inputs=[state, item], outputs=[item_html, a_html, b_html])
    item.input(on_item, inputs=[state, item], outputs=[item_html, a_html, b_html])

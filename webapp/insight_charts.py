"""Plotly figures and tables of the Insights numbers: pure functions of the result
objects of `core.insights`, no store access, no Gradio.

A figure never sets a fixed `height` (gr.Plot collapses such figures). Names
that come from users or data (datasets, categories, annotators) are
HTML-escaped before they go into a figure; principle terms go only into tables.
An estimate whose value is undefined is drawn as no bar, never as a zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.agreement import Estimate
from core.compare import JudgeComparison
from core.consistency import SelfConsistency
from core.evaluation import EvalRun, Evaluation, accuracy_vs_k_figure
from core.evaluation.report import RESULT_COLUMNS, result_cells
from core.insights import (
    AgreementMatrix,
    DatasetAccuracy,
    MarginBin,
    PositionBias,
    PrincipleDiversity,
    ScoreDistribution,
)

DATASET_COLOUR = "#1565c0"
CATEGORY_COLOUR = "#90caf9"
BEST_COLOUR = "#2e7d32"
OTHER_COLOUR = "#90a4ae"
UNKNOWN_COLOUR = "#cfd8dc"
EXPECTED_COLOUR = "#ef6c00"
NO_CATEGORY = "(no category)"
ACCURACY_COLUMNS = ["dataset", "category", "judged", "n (with a label)", "accuracy",
                    "95% CI", "note"]
AGREEMENT_COLUMNS = ["rater A", "rater B", "kappa", "95% CI", "n (shared items)", "note"]
TERM_COLUMNS = ["kind", "term", "samples"]
EVAL_RUN_COLUMNS = ["run", "dataset", "judge", "k", "status", "evaluated", "excluded", "started"]
EVAL_RESULT_COLUMNS = RESULT_COLUMNS
_PERCENT_AXIS = {"range": [0, 1.05], "tickformat": ".0%", "title": "accuracy"}


def empty_figure(title: str, message: str) -> go.Figure:
    """A blank figure that explains, in its middle, why there is nothing to draw."""
    figure = go.Figure()
    figure.update_layout(
        title=title, xaxis={"visible": False}, yaxis={"visible": False},
        plot_bgcolor="rgba(0,0,0,0)",
        annotations=[{"text": message, "showarrow": False, "xref": "paper", "yref": "paper",
                      "x": 0.5, "y": 0.5}],
    )
    return figure


def format_estimate(estimate: Estimate | None, percent: bool = False) -> str:
    """'0.67 (95% CI 0.40 to 0.90, n=6)'; without a CI, the value and why there is none
    ('0.50 (too few items for a 95% CI (n = 2; needs ≥ 10))'); or why there is no value."""
    if estimate is None or estimate.value is None:
        why = estimate.note if estimate is not None and estimate.note else "not enough data"
        return f"n/a ({why})"
    spec = ".0%" if percent else ".2f"
    if estimate.low is None or estimate.high is None:
        return f"{estimate.value:{spec}} ({estimate.note or f'no 95% CI, n={estimate.n}'})"
    caveat = f"; {estimate.note}" if estimate.note else ""
    return (f"{estimate.value:{spec}} (95% CI {estimate.low:{spec}} to {estimate.high:{spec}}, "
            f"n={estimate.n}{caveat})")


def _cells(estimate: Estimate, percent: bool = False) -> tuple[str, str, str]:
    """An estimate as the table cells value, 95% CI and note. Without a value both are
    '' and the note says why; without a CI the CI cell says why (e.g. too few items)."""
    if estimate.value is None:
        return "", "", estimate.note or ""
    spec = ".0%" if percent else ".2f"
    value = f"{estimate.value:{spec}}"
    if estimate.low is None or estimate.high is None:
        return value, estimate.note or "none", ""
    return value, f"{estimate.low:{spec}} to {estimate.high:{spec}}", estimate.note or ""


def _error_bars(estimates: Sequence[Estimate]) -> dict[str, object]:
    """Asymmetric error bars from each estimate's CI (none where undefined)."""
    def part(e: Estimate, upper: bool) -> float | None:
        if e.value is None or e.low is None or e.high is None:
            return None
        return e.high - e.value if upper else e.value - e.low

    return {"type": "data", "symmetric": False, "array": [part(e, True) for e in estimates],
            "arrayminus": [part(e, False) for e in estimates]}


def _accuracy_bars(
    labels: list[str], estimates: list[Estimate], name: str, colour: str
) -> go.Bar:
    return go.Bar(
        x=labels, y=[e.value for e in estimates], name=name, marker={"color": colour},
        error_y=_error_bars(estimates),
        hovertext=[f"{label}: {format_estimate(e, percent=True)}"
                   for label, e in zip(labels, estimates, strict=True)],
        hoverinfo="text",
    )


def accuracy_figure(results: Sequence[DatasetAccuracy]) -> go.Figure:
    """Judge accuracy per dataset and per category against the items' labels (the
    annotators' majority, else the dataset's), with 95% CI error bars; n on the axis."""
    title = "Judge accuracy vs the item's label (95% CI)"
    if not any(r.accuracy.value is not None for r in results):
        return empty_figure(title, "No judged item has a label yet.")
    order: list[str] = []
    ticks: list[str] = []
    overall: tuple[list[str], list[Estimate]] = ([], [])
    split: tuple[list[str], list[Estimate]] = ([], [])
    for result in results:
        name = escape(result.dataset)
        for label, estimate, group in [(name, result.accuracy, overall)] + [
            (f"{name} · {escape(c.category or NO_CATEGORY)}", c.accuracy, split)
            for c in result.by_category
        ]:
            order.append(label)
            ticks.append(f"{label}<br>n={estimate.n}")
            group[0].append(label)
            group[1].append(estimate)
    figure = go.Figure([_accuracy_bars(*overall, "dataset", DATASET_COLOUR),
                        _accuracy_bars(*split, "category", CATEGORY_COLOUR)])
    figure.update_layout(
        title=title, barmode="overlay", yaxis=_PERCENT_AXIS,
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": order,
               "tickmode": "array", "tickvals": order, "ticktext": ticks},
        legend={"orientation": "h", "y": -0.3},
    )
    return figure


def accuracy_table(results: Sequence[DatasetAccuracy]) -> pd.DataFrame:
    rows = []
    for result in results:
        for category, judged, e in [("(all)", result.judged, result.accuracy)] + [
            (c.category or NO_CATEGORY, c.judged, c.accuracy) for c in result.by_category
        ]:
            rows.append([result.dataset, category, judged, e.n, *_cells(e, percent=True)])
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def _pair_hover(matrix: AgreementMatrix, i: int, j: int) -> str:
    a, b = escape(matrix.raters[i]), escape(matrix.raters[j])
    if i == j:
        return f"{a}: labels {matrix.shared[i][i]} items"
    kappa = matrix.kappa[i][j]
    if kappa is None:
        return f"{a} × {b}: too few shared items for kappa (n={matrix.shared[i][j]})"
    return f"{a} × {b}<br>Cohen's kappa {format_estimate(kappa)}"


def agreement_figure(matrix: AgreementMatrix) -> go.Figure:
    """Heatmap of Cohen's kappa between every two raters (symmetric); CI and n on hover."""
    title = "Agreement: Cohen's kappa (95% CI and n on hover)"
    if len(matrix.raters) < 2:
        return empty_figure(title, f"Agreement needs two raters: {matrix.note or 'too few'}.<br>"
                                   "Label items, judge them, or import labelled data.")
    size = len(matrix.raters)
    z = [[k.value if k is not None else None for k in row] for row in matrix.kappa]
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
    names = [escape(r) for r in matrix.raters]
    figure = go.Figure(go.Heatmap(
        z=z, x=names, y=names, text=text, texttemplate="%{text}",
        hovertext=[[_pair_hover(matrix, i, j) for j in range(size)] for i in range(size)],
        hoverinfo="text", zmin=-1, zmax=1, zmid=0, colorscale="RdBu",
        colorbar={"title": "kappa"}, xgap=2, ygap=2,
    ))
    figure.update_layout(title=title, yaxis={"autorange": "reversed", "type": "category"},
                         xaxis={"type": "category", "side": "top"}, margin={"t": 90})
    return figure


def agreement_table(matrix: AgreementMatrix) -> pd.DataFrame:
    """One row per pair of raters."""
    rows = []
    for i, a in enumerate(matrix.raters):
        for j in range(i + 1, len(matrix.raters)):
            kappa, n = matrix.kappa[i][j], matrix.shared[i][j]
            value, interval, note = (("", "", "fewer than 2 shared items") if kappa is None
                                     else _cells(kappa))
            rows.append([a, matrix.raters[j], value, interval, n, note])
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def score_figure(distribution: ScoreDistribution) -> go.Figure:
    """Grouped histogram of per-sample scores: the labelled best vs the other responses."""
    title = f"Per-sample scores ({distribution.samples} valid samples)"
    if not distribution.values:
        return empty_figure(title, f"No scores to show: {distribution.note or 'no samples'}.")
    groups = [("labelled best", distribution.best, BEST_COLOUR),
              ("other responses", distribution.other, OTHER_COLOUR),
              ("no label / labelled a tie", distribution.unknown, UNKNOWN_COLOUR)]
    figure = go.Figure([
        go.Bar(x=list(distribution.values), y=list(counts), name=name, marker={"color": colour},
               hovertemplate=f"{name}: score %{{x}} given %{{y}} times<extra></extra>")
        for name, counts, colour in groups if any(counts)
    ])
    figure.update_layout(title=title, barmode="group", xaxis={"title": "score", "dtick": 1},
                         yaxis={"title": "count"}, legend={"orientation": "h", "y": -0.2})
    return figure


def margin_figure(bins: Sequence[MarginBin]) -> go.Figure:
    """Accuracy by vote margin (summed score points), with 95% CI error bars."""
    title = "Accuracy by vote margin (95% CI)"
    if not any(b.accuracy.n for b in bins):
        return empty_figure(title, "No judged item with a label has a vote margin yet.")
    labels = [b.label for b in bins]
    figure = go.Figure(_accuracy_bars(labels, [b.accuracy for b in bins], "accuracy",
                                      DATASET_COLOUR))
    figure.update_layout(
        title=title, yaxis=_PERCENT_AXIS,
        xaxis={"title": "vote margin (score points)", "type": "category", "tickmode": "array",
               "tickvals": labels,
               "ticktext": [f"{b.label}<br>n={b.accuracy.n}" for b in bins]},
    )
    return figure


def position_bias_figure(bias: PositionBias) -> go.Figure:
    """The rate at which the response shown first wins (Wilson 95% CI) vs no bias."""
    title = "Position bias: does the response shown first win?"
    rate = bias.first_win_rate
    if rate.value is None or bias.expected is None:
        return empty_figure(title, f"Nothing to measure: {rate.note or bias.note}.")
    figure = go.Figure([
        go.Bar(x=["shown first wins"], y=[rate.value], name="observed",
               marker={"color": DATASET_COLOUR}, error_y=_error_bars([rate]),
               hovertext=[f"observed: {format_estimate(rate, percent=True)}"], hoverinfo="text"),
        go.Bar(x=["expected with no bias"], y=[bias.expected], name="expected",
               marker={"color": EXPECTED_COLOUR}, hoverinfo="text",
               hovertext=[f"expected: {bias.expected:.0%} (mean 1/n over decisive samples)"]),
    ])
    figure.update_layout(title=title, showlegend=False, yaxis={
        "range": [0, 1.05], "tickformat": ".0%", "title": "share of decisive samples"})
    return figure


def position_bias_sentence(bias: PositionBias) -> str:
    """One or two plain sentences that read the position-bias numbers."""
    rate = bias.first_win_rate
    if rate.value is None or rate.low is None or rate.high is None or bias.expected is None:
        return f"Position bias cannot be measured yet: {rate.note or bias.note}."
    if rate.low > bias.expected:
        verdict = "more often than chance: a bias towards the first position"
    elif rate.high < bias.expected:
        verdict = "less often than chance: a bias against the first position"
    else:
        verdict = "about as often as chance: no clear position bias (the CI holds the expected rate)"
    wins = ", ".join(f"position {p + 1}: {w}" for p, w in enumerate(bias.wins_by_shown_position))
    return (
        f"The response shown first won {bias.first_wins} of {bias.decisive} decisive samples "
        f"({rate.value:.0%}, 95% CI {rate.low:.0%} to {rate.high:.0%}) against "
        f"{bias.expected:.0%} expected with no bias: {verdict}. "
        f"Wins by shown position: {wins}. {bias.samples - bias.decisive} of {bias.samples} "
        f"valid samples had no strict winner."
    )


def diversity_figure(diversity: PrincipleDiversity) -> go.Figure:
    """Heatmap of the TF-IDF cosine similarity between the samples' principles."""
    if not diversity.similarity:
        return empty_figure("Principle similarity", f"Nothing to compare: {diversity.note}.")
    mean = diversity.mean_similarity
    names = [f"sample {i + 1}" for i in diversity.samples]
    z = [list(row) for row in diversity.similarity]
    figure = go.Figure(go.Heatmap(
        z=z, x=names, y=names, text=[[f"{v:.2f}" for v in row] for row in z],
        texttemplate="%{text}", zmin=0, zmax=1, colorscale="Viridis",
        colorbar={"title": "cosine"}, xgap=2, ygap=2,
        hovertemplate="%{y} × %{x}: similarity %{z:.2f}<extra></extra>",
    ))
    figure.update_layout(
        title="Principle similarity between samples (1 = same terms)"
        + (f" · mean {mean:.2f}" if mean is not None else ""),
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"type": "category", "side": "top"}, margin={"t": 90},
    )
    return figure


def term_table(diversity: PrincipleDiversity) -> pd.DataFrame:
    """The shared terms (most shared first), then the distinct ones (rarest first)."""
    rows = [["shared", t.term, t.samples] for t in diversity.shared_terms]
    rows += [["distinct", t.term, t.samples] for t in diversity.distinct_terms]
    return pd.DataFrame(rows, columns=TERM_COLUMNS)


def eval_runs_table(runs: Sequence[EvalRun]) -> pd.DataFrame:
    """One row per evaluation run, newest first as given."""
    rows = [[f"#{r.id}", r.dataset, r.judge, ", ".join(map(str, r.ks)), r.status,
             f"{r.evaluated} of {r.considered}",
             "; ".join(f"{why}: {n}" for why, n in r.excluded),
             f"{r.created_at:%Y-%m-%d %H:%M}"] for r in runs]
    return pd.DataFrame(rows, columns=EVAL_RUN_COLUMNS)


def eval_results_table(evaluation: Evaluation) -> pd.DataFrame:
    """Every result of the run: all items first, then per category."""
    return pd.DataFrame([result_cells(r) for r in evaluation.results],
                        columns=EVAL_RESULT_COLUMNS)


def eval_accuracy_figure(evaluation: Evaluation | None) -> go.Figure:
    """Accuracy against k of one run (the same figure as the report's)."""
    title = "Accuracy against k"
    if evaluation is None or not any(r.accuracy.value is not None
                                     for r in evaluation.overall()):
        return empty_figure(title, "no evaluation with results yet")  # the section says how
    return accuracy_vs_k_figure(evaluation)


def consistency_figure(result: SelfConsistency) -> go.Figure:
    """How much each judgement's samples agree, over the dataset: histograms of
    Krippendorff's alpha (samples × responses) and of the share of valid samples
    that pick the vote's winner."""
    title = f"Self-consistency of {len(result.judgements)} judgements"
    if not result.judgements:
        return empty_figure(title, "No judgement with two or more valid samples yet.")
    alphas = [j.alpha.value for j in result.judgements if j.alpha.value is not None]
    shares = [j.winner_share for j in result.judgements if j.winner_share is not None]
    figure = make_subplots(rows=1, cols=2, subplot_titles=(
        f"Krippendorff's alpha (n={len(alphas)})",
        f"samples that pick the winner (n={len(shares)})"))
    figure.add_trace(go.Histogram(x=alphas, name="alpha", marker={"color": DATASET_COLOUR},
                                  xbins={"size": 0.1}), 1, 1)
    figure.add_trace(go.Histogram(x=shares, name="share", marker={"color": CATEGORY_COLOUR},
                                  xbins={"start": 0.0, "end": 1.0001, "size": 0.125}), 1, 2)
    figure.update_layout(title=title, showlegend=False, bargap=0.05)
    figure.update_xaxes(title_text="alpha (1: the samples score alike)", row=1, col=1)
    figure.update_xaxes(title_text="share of valid samples", tickformat=".0%", row=1, col=2)
    figure.update_yaxes(title_text="judgements", row=1, col=1)
    return figure


def consistency_accuracy_figure(result: SelfConsistency) -> go.Figure:
    """Is a consistent vote more often right? Accuracy (strict rule, Wilson 95% CI) by
    winner share and by alpha; n under each bin."""
    title = "Accuracy against self-consistency (95% CI)"
    if not any(b.accuracy.n for b in (*result.by_share, *result.by_alpha)):
        return empty_figure(title, "No labelled item has a judgement of two or more "
                                   "valid samples yet.")
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=(
        "by winner share (100%: unanimous)", "by alpha"))
    for col, bins, colour in [(1, result.by_share, DATASET_COLOUR),
                              (2, result.by_alpha, CATEGORY_COLOUR)]:
        labels = [f"{b.label}<br>n={b.accuracy.n}" for b in bins]
        figure.add_trace(_accuracy_bars(labels, [b.accuracy for b in bins], "accuracy",
                                        colour), 1, col)
        figure.update_xaxes(type="category", tickangle=0, tickfont={"size": 10}, row=1, col=col)
    figure.update_layout(title=title, showlegend=False)
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%", title_text="accuracy", row=1, col=1)
    return figure


def consistency_sentence(result: SelfConsistency) -> str:
    """The self-consistency numbers in words, with what was left out."""
    if not result.judgements:
        left = "; ".join(f"{why}: {n}" for why, n in result.left_out)
        return ("Self-consistency needs judgements of two or more samples (e.g. "
                "`grm-studio judge --k 8`)" + (f"; left out: {left}." if left else "."))
    median = result.median_alpha
    parts = [(f"{len(result.judgements)} judgements of two or more valid samples (each "
             f"item's latest such): median alpha {'n/a' if median is None else f'{median:.2f}'}"
             f", {result.unanimous} unanimous (every valid sample picks the winner).")]
    if result.tied:
        parts.append(f"{result.tied} tied vote(s) have no winner to agree with "
                     "(left out of the share bins).")
    if result.undefined_alpha:
        parts.append(f"{result.undefined_alpha} have no alpha (every score the same).")
    if result.left_out:
        parts.append("Left out: " + "; ".join(f"{why}: {n}" for why, n in result.left_out)
                     + ".")
    return " ".join(parts)


def comparison_figure(comparison: JudgeComparison) -> go.Figure:
    """Judge against judge: both sides' accuracy on the same items (strict rule, Wilson
    95% CIs), the paired difference in the title; each side's name on hover."""
    diff = comparison.difference
    title = "Accuracy of A and B on the same items" + (
        f" · A - B {diff.value:+.1%}" if diff.value is not None else "")
    if not comparison.items:
        return empty_figure(title, "No labelled item is judged by both.")
    figure = go.Figure()
    for name, side, accuracy, colour in [("A", comparison.a, comparison.accuracy_a,
                                          DATASET_COLOUR),
                                         ("B", comparison.b, comparison.accuracy_b,
                                          CATEGORY_COLOUR)]:
        bars = _accuracy_bars([name], [accuracy], name, colour)
        bars.hovertext = [f"{escape(side.label)}: {format_estimate(accuracy, percent=True)}"]
        figure.add_trace(bars)
    figure.update_layout(title=title, yaxis=_PERCENT_AXIS, showlegend=False,
                         xaxis={"type": "category"})
    return figure

"""An evaluation as a Markdown report, a CSV table and a plot of accuracy against k.

`write_report` writes `report.md`, `results.csv` and `accuracy_vs_k.html` (plotly
with plotly.js inline, so it opens offline), each atomically. The figure never
sets a fixed height (the studio's gr.Plot collapses such figures); names from
the data are HTML-escaped before they go into it.
"""

from __future__ import annotations

import csv
from html import escape
from pathlib import Path

import plotly.graph_objects as go

from core.agreement import Estimate
from core.evaluation.metrics import NO_CATEGORY, MethodResult
from core.evaluation.records import Evaluation
from core.files import atomic_write
from core.insights import PositionBias
from core.references import references_words

CSV_COLUMNS = [
    "method", "k", "category", "n", "correct", "accuracy", "ci_low", "ci_high", "samples",
    "parse_failure_rate", "rescue_rate", "invalid_rate", "tie_rate", "first_win_rate", "note",
    "unscored_rate", "pairs", "pairs_correct", "pairwise_accuracy", "pairwise_ci_low",
    "pairwise_ci_high", "pairwise_note",
]
RESULT_COLUMNS = ["method", "category", "n", "correct", "accuracy", "95% CI", "pairs",
                  "pairwise", "pairwise 95% CI", "parse failures", "rescued", "no scores",
                  "ties", "unscored", "shown-first wins"]
SERIES = {"vote": ("voting (sum of k)", "#1565c0"), "meta": ("meta-guided@k", "#2e7d32")}
GREEDY_COLOUR = "#ef6c00"


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def interval(estimate: Estimate) -> str:
    if estimate.low is None or estimate.high is None:
        return ""
    return f"{estimate.low:.1%} to {estimate.high:.1%}"


def category_name(category: str | None) -> str:
    return "(all)" if category is None else category or "(no category)"


def result_cells(result: MethodResult) -> list[str | int]:
    """One row of `RESULT_COLUMNS`."""
    e, pairwise = result.accuracy, result.pairwise
    return [result.label, category_name(result.category), e.n, result.correct, percent(e.value),
            interval(e), pairwise.n, percent(pairwise.value), interval(pairwise),
            percent(result.parse_failure_rate), percent(result.rescue_rate),
            percent(result.invalid_rate), percent(result.tie_rate),
            percent(result.unscored_rate), percent(result.first_win_rate)]


def _table(results: tuple[MethodResult, ...]) -> list[str]:
    def line(cells: list[str | int]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(list(RESULT_COLUMNS)), line(["---"] * len(RESULT_COLUMNS)),
            *(line(result_cells(r)) for r in results)]


def position_bias_line(bias: PositionBias | None) -> str:
    rate = bias.first_win_rate if bias else None
    if bias is None or rate is None or rate.value is None or bias.expected is None:
        return "Position bias: nothing to measure (no valid sample has a strict winner)."
    ci = "" if rate.low is None or rate.high is None else (
        f" (95% CI {rate.low:.0%} to {rate.high:.0%})")
    return (f"Position bias: the response shown first won {bias.first_wins} of {bias.decisive} "
            f"decisive samples, {rate.value:.0%}{ci}, against {bias.expected:.0%} with no bias; "
            f"{bias.samples - bias.decisive} of {bias.samples} valid samples had no strict "
            "winner.")


def _header(evaluation: Evaluation) -> list[str]:
    run, params = evaluation.run, evaluation.run.params
    excluded = "; ".join(f"{reason}: {count}" for reason, count in run.excluded) or "none"
    votings = ", ".join(params.get("votings", []))
    error = f" ({run.error})" if run.error else ""
    meta = ("; meta-guided@k votes over the k/2 of them that the meta reward model rates "
            "highest" if "meta" in params.get("votings", []) else "")
    if "stored_meta_model_id" in params:  # meta-guided voting read the stored meta scores
        stored = params["stored_meta_model_id"]
        meta += (f" (the meta scores stored with the samples, by meta model #{stored})"
                 if stored is not None else
                 " (the meta scores stored with the samples; their meta model unrecorded)")
    return [
        f"# Evaluation #{run.id}: {run.dataset}",
        "",
        (f"- judge: {run.judge} · template {params.get('template', '?')} · "
         f"rescue {'on' if params.get('rescue') else 'off'} · "
         f"{references_words(run.references, params.get('reference_items'))}"),
        (f"- k = {', '.join(map(str, run.ks))} · votings {votings} · "
         f"temperature {params.get('temperature')} · top_p {params.get('top_p')} · "
         f"max_new_tokens {params.get('max_new_tokens')} · seed {params.get('seed')}"),
        f"- items: {run.considered} considered, {run.evaluated} evaluated; excluded: {excluded}",
        (f"- labels: {_sources(params.get('label_sources', {}))} (the annotators' majority "
         f"wins over the dataset's labels){_best_of_n(params.get('best_of_n_items', 0))}"),
        f"- status: {run.status}{error}",
        "",
        ("Accuracy by the strict rule: the labelled best response must score strictly "
         "above every other (a best-of-n item with several correct responses: every correct "
         "response strictly above every incorrect one); a tie is wrong (ties), and so is a "
         "vote without a valid sample (unscored). Pairwise accuracy reads the same votes as "
         "pairs, each correct response against each incorrect one of the same item (a tied "
         "pair is wrong); its CI resamples items when an item gives several pairs. The "
         "single sample is each item's first sample; "
         f"voting@k sums its first k samples{meta}. 95% CIs are Wilson score "
         "intervals over items. With one seed, every item's first sample (and its greedy "
         "one) shows the responses in the same order, so position bias moves those rows; "
         "the k samples of a pair alternate the two orders."),
    ]


def render_markdown(evaluation: Evaluation) -> str:
    """The whole report as Markdown (also what `grm-studio eval` prints)."""
    lines = [*_header(evaluation), "", "## All items", "", *_table(evaluation.overall())]
    categories = evaluation.categories()
    if categories:
        lines += ["", "## Per category", ""]
        lines += _table(tuple(sorted(
            (r for r in evaluation.results if r.category is not None),
            key=lambda r: (r.category or "", evaluation.results.index(r)))))
    lines += ["", position_bias_line(evaluation.position_bias), ""]
    return "\n".join(lines)


def _best_of_n(items: int) -> str:
    return f"; {items} best-of-n item(s) with several correct responses" if items else ""


def _sources(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {source}" for source, n in counts.items()) or "none"


def csv_rows(evaluation: Evaluation) -> list[list[object]]:
    """The results as rows of `CSV_COLUMNS` (rates as fractions, empty when undefined)."""
    def cell(value: object) -> object:
        return "" if value is None else value

    rows = []
    for r in evaluation.results:
        e, pw = r.accuracy, r.pairwise
        rows.append([cell(x) for x in (
            r.method, r.k, None if r.category is None else category_name(r.category), e.n,
            r.correct, e.value, e.low, e.high, r.samples, r.parse_failure_rate, r.rescue_rate,
            r.invalid_rate, r.tie_rate, r.first_win_rate, e.note, r.unscored_rate, pw.n,
            r.pairs_correct, pw.value, pw.low, pw.high, pw.note)])
    return rows


def _errors(results: list[MethodResult]) -> dict[str, object]:
    def part(e: Estimate, upper: bool) -> float | None:
        if e.value is None or e.low is None or e.high is None:
            return None
        return e.high - e.value if upper else e.value - e.low

    return {"type": "data", "symmetric": False,
            "array": [part(r.accuracy, True) for r in results],
            "arrayminus": [part(r.accuracy, False) for r in results]}


def accuracy_vs_k_figure(evaluation: Evaluation) -> go.Figure:
    """Accuracy against k (log axis) for voting and meta-guided voting, starting from
    the single sample at k = 1, with greedy as a dashed line; 95% CI error bars."""
    overall = {(r.method, r.k): r for r in evaluation.overall()}
    figure = go.Figure()
    single = overall.get(("single", 1))
    ks = sorted({k for (_, k) in overall} | {1})
    for method, (name, colour) in SERIES.items():
        points = [single] if single else []
        points += [overall[m, k] for (m, k) in sorted(overall) if m == method]
        if len(points) < 2 and method == "meta":
            continue
        figure.add_trace(go.Scatter(
            x=[p.k for p in points], y=[p.accuracy.value for p in points], name=name,
            mode="lines+markers", line={"color": colour}, error_y=_errors(points),
            hovertext=[f"{p.label}: {percent(p.accuracy.value)} [{interval(p.accuracy)}], "
                       f"n={p.accuracy.n}" for p in points], hoverinfo="text",
        ))
    greedy = overall.get(("greedy", 1))
    if greedy is not None and greedy.accuracy.value is not None:
        figure.add_trace(go.Scatter(
            x=[ks[0], ks[-1]], y=[greedy.accuracy.value] * 2, name="greedy", mode="lines",
            line={"color": GREEDY_COLOUR, "dash": "dash"}, hoverinfo="text",
            hovertext=[(f"greedy: {percent(greedy.accuracy.value)} "
                        f"[{interval(greedy.accuracy)}], n={greedy.accuracy.n}")] * 2,
        ))
    run = evaluation.run
    figure.update_layout(
        title=f"Accuracy against k: {escape(run.dataset)}, {escape(run.judge)} "
              f"(strict rule, 95% CI)",
        xaxis={"title": "k (samples per item)", "type": "log", "tickmode": "array",
               "tickvals": ks, "ticktext": [str(k) for k in ks]},
        yaxis={"title": "accuracy", "range": [0, 1.05], "tickformat": ".0%"},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def write_report(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """Write report.md, results.csv and accuracy_vs_k.html into `out_dir`."""
    paths = [out_dir / "report.md", out_dir / "results.csv", out_dir / "accuracy_vs_k.html"]
    with atomic_write(paths[0]) as handle:
        handle.write(render_markdown(evaluation))
    with atomic_write(paths[1]) as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_rows(evaluation))
    with atomic_write(paths[2]) as handle:
        handle.write(accuracy_vs_k_figure(evaluation).to_html(include_plotlyjs=True,
                                                                full_html=True))
    return paths


__all__ = ["NO_CATEGORY", "accuracy_vs_k_figure", "csv_rows", "render_markdown",
           "write_report"]

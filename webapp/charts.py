"""Plotly figures of a judgement: the vote (bars + per-sample dots) and the
samples x responses score heatmap. Pure functions of `core` objects.

Responses are always in ORIGINAL order (R1..Rn); a sample's shown position of
a response is looked up in its recorded `shown_order`, never computed.
Scores are drawn on the template's score range (1 to 10), not the data's own
spread, so an 8 never looks like a top score. The winner's bar is coloured by
how far the verdict can be trusted (`core.confidence`, as the vote panel):
green only for a strong one. No untrusted text (query, responses, model
output) is put into a figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from core.confidence import ConfidenceLevel, verdict_confidence
from core.templates import TEMPLATES, default_template
from core.types import Judgement, Sample

WINNER_COLOUR = "#2e7d32"  # a strong verdict's winner (the cards' WINNER flag)
MODERATE_COLOUR = "#689f38"  # a moderate one's (the cards' lighter green)
LEANING_COLOUR = "#78909c"  # a weak verdict's pick: neutral, never green (the cards' LEANING)
TIE_COLOUR = "#ef6c00"
OTHER_COLOUR = "#90a4ae"
DOT_COLOUR = "#263238"
_JITTER = 0.3  # dots spread over +-0.3 of a bar's width, by sample
_NO_VALID = "No valid samples: no sample produced usable scores, so there is nothing to vote on."
_PICK_COLOUR = {ConfidenceLevel.STRONG: WINNER_COLOUR, ConfidenceLevel.MODERATE: MODERATE_COLOUR,
                ConfidenceLevel.WEAK: LEANING_COLOUR}
BARS_DOMAIN = (0.46, 1.0)  # the vote figure: totals above...
DOTS_DOMAIN = (0.0, 0.34)  # ...each sample's scores below, on their own axis


def response_label(index: int) -> str:
    """R1, R2, ... for an original (0-based) response index."""
    return f"R{index + 1}"


def shown_position(sample: Sample, response: int) -> int:
    """1-based position at which `sample` showed original response `response`."""
    return sample.shown_order.index(response) + 1


def score_range(judgement: Judgement) -> tuple[int, int]:
    """The lowest and highest score the judgement's template asks for (1 to 10),
    widened to any stored score outside it; the default template's range for a
    template this studio no longer has."""
    template = TEMPLATES.get(judgement.template.name)
    lo, hi = (template or default_template(len(judgement.input.responses))).score_range
    scores = [v for s in judgement.samples if s.scores is not None for v in s.scores]
    return min([lo, *scores]), max([hi, *scores])


def _valid(judgement: Judgement) -> list[tuple[Sample, tuple[int, ...]]]:
    """The valid samples, each with its scores (original order)."""
    return [(s, s.scores) for s in judgement.samples if s.scores is not None]


def _empty_figure(title: str, message: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title=title,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
        ],
    )
    return figure


def _bar_colours(judgement: Judgement) -> list[str]:
    vote = judgement.vote
    colours = [OTHER_COLOUR] * len(judgement.input.responses)
    if vote.tie:
        for i in vote.top:
            colours[i] = TIE_COLOUR
    elif vote.winner is not None:
        colours[vote.winner] = _PICK_COLOUR[verdict_confidence(judgement).level]
    return colours


def vote_title(judgement: Judgement) -> str:
    """Winner (LEANING for a weak verdict, or TIE), margin, split, and the sample
    counts, as a figure title."""
    vote = judgement.vote
    if vote.winner is None:
        return "No winner"
    weak = verdict_confidence(judgement).level is ConfidenceLevel.WEAK
    pick = f"{'Leaning' if weak else 'Winner'} {response_label(vote.winner)}"
    if vote.tie:
        tied = ", ".join(response_label(i) for i in vote.top)
        headline = (
            f"TIE between {tied} (not a win; tie-break pick {response_label(vote.winner)})"
        )
    elif vote.runner_up is None:
        headline = f"{pick} (the only response)"
    else:
        headline = f"{pick} · margin {vote.margin} over {response_label(vote.runner_up)}"
        if weak:
            headline += " (a weak verdict)"
    if len(judgement.input.responses) > 1:
        headline += " · SPLIT: samples disagree" if vote.split else " · samples agree"
    counts = (
        f"{vote.valid_samples} valid / {vote.invalid_samples} failed / "
        f"{judgement.rescued_samples} rescued of k={len(judgement.samples)}"
    )
    return f"{headline}<br><sup>{counts}</sup>"


def _mean(mean: float | None) -> str:
    return "n/a" if mean is None else f"{mean:.2f}"


def _jitter(rank: int, count: int) -> float:
    """Deterministic spread of `count` dots across a bar: same judgement, same figure."""
    return 0.0 if count <= 1 else -_JITTER + 2 * _JITTER * rank / (count - 1)


def _dot_trace(judgement: Judgement) -> go.Scatter:
    valid = _valid(judgement)
    xs: list[float] = []
    ys: list[int] = []
    hover: list[str] = []
    for response in range(len(judgement.input.responses)):
        for rank, (sample, scores) in enumerate(valid):
            score = scores[response]
            xs.append(response + _jitter(rank, len(valid)))
            ys.append(score)
            hover.append(
                f"sample {sample.index + 1}: score {score}, "
                f"shown at position {shown_position(sample, response)}"
            )
    return go.Scatter(
        x=xs,
        y=ys,
        xaxis="x2",
        yaxis="y2",
        mode="markers",
        name="score in one sample",
        marker={"color": DOT_COLOUR, "size": 7, "opacity": 0.7},
        hovertext=hover,
        hoverinfo="text",
    )


def vote_figure(judgement: Judgement) -> go.Figure:
    """Bars (upper panel): each response's summed score over the valid samples
    (original order), its total written above it; dots (lower panel, on the score
    range): each valid sample's score for it. The two panels share the responses'
    axis and never overlap, so no dot covers a total. Winner (coloured by the
    verdict's confidence) or tie highlighted."""
    if judgement.vote.valid_samples == 0:
        return _empty_figure("No winner", _NO_VALID)
    vote = judgement.vote
    n = len(judgement.input.responses)
    labels = [response_label(i) for i in range(n)]
    bars = go.Bar(
        x=list(range(n)),
        y=list(vote.totals),
        name="total (sum over valid samples)",
        marker={"color": _bar_colours(judgement)},
        text=[str(t) for t in vote.totals],
        textposition="outside",
        cliponaxis=False,
        hovertemplate=[
            f"{label}: total {total}, mean {_mean(mean)}<extra></extra>"
            for label, total, mean in zip(labels, vote.totals, vote.means, strict=True)
        ],
        opacity=0.85,
    )
    figure = go.Figure([bars, _dot_trace(judgement)])
    lo, hi = score_range(judgement)
    ticks = {"tickmode": "array", "tickvals": list(range(n)), "ticktext": labels,
             "range": [-0.5, n - 0.5]}
    top = max([*vote.totals, 1])
    figure.update_layout(
        title=vote_title(judgement),
        xaxis={**ticks, "anchor": "y"},
        xaxis2={**ticks, "anchor": "y2", "matches": "x"},
        yaxis={"title": "total score", "domain": list(BARS_DOMAIN), "anchor": "x",
               "range": [min(0, *vote.totals), top * 1.2]},  # room for the totals above
        yaxis2={"title": "per sample", "domain": list(DOTS_DOMAIN), "anchor": "x2",
                "range": [lo - 0.5, hi + 0.5]},
        legend={"orientation": "h", "y": -0.15},
        bargap=0.35,
        margin={"t": 80},
    )
    return figure


def _row_label(sample: Sample) -> str:
    if sample.scores is None:
        return f"sample {sample.index + 1} (no scores)"
    if sample.rescue is not None:
        return f"sample {sample.index + 1} (rescued)"
    return f"sample {sample.index + 1}"


def _heatmap_rows(judgement: Judgement) -> tuple[list[list[int | None]], list[list[str]]]:
    n = len(judgement.input.responses)
    z: list[list[int | None]] = []
    hover: list[list[str]] = []
    for sample in judgement.samples:
        z.append(list(sample.scores) if sample.scores is not None else [None] * n)
        hover.append([_cell_hover(sample, r) for r in range(n)])
    return z, hover


def _cell_hover(sample: Sample, response: int) -> str:
    where = f"{response_label(response)} shown at position {shown_position(sample, response)}"
    if sample.scores is None:
        return f"sample {sample.index + 1}: no scores · {where}"
    return f"sample {sample.index + 1}: score {sample.scores[response]} · {where}"


def _cell_text(z: Sequence[Sequence[int | None]]) -> list[list[str]]:
    return [["" if v is None else str(v) for v in row] for row in z]


def heatmap_figure(judgement: Judgement) -> go.Figure:
    """Samples x responses (original order) scores, coloured on the template's score
    range (`score_range`); invalid samples are empty rows."""
    n = len(judgement.input.responses)
    z, hover = _heatmap_rows(judgement)
    any_valid = judgement.vote.valid_samples > 0
    lo, hi = score_range(judgement)  # the template's: an 8 of 10 is not drawn as the top
    heatmap = go.Heatmap(
        z=z,
        x=[response_label(i) for i in range(n)],
        y=[_row_label(s) for s in judgement.samples],
        text=_cell_text(z),
        texttemplate="%{text}",
        hovertext=hover,
        hoverinfo="text",
        colorscale="Viridis",
        zmin=lo,
        zmax=hi,
        showscale=any_valid,
        colorbar={"title": "score"},
        xgap=2,
        ygap=2,
    )
    figure = go.Figure(heatmap)
    figure.update_layout(
        title="Scores per sample (responses in original order)",
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"type": "category", "side": "top"},
        margin={"t": 90},
    )
    if not any_valid:
        figure.add_annotation(
            text=_NO_VALID, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5
        )
    return figure

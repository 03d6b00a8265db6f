"""Plotly figures of a judgement: the vote (bars + per-sample dots) and the
samples x responses score heatmap. Pure functions of `core` objects.

Responses are always in ORIGINAL order (R1..Rn); a sample's shown position of
a response is looked up in its recorded `shown_order`, never computed.
No untrusted text (query, responses, model output) is put into a figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from core.types import Judgement, Sample

WINNER_COLOUR = "#2e7d32"
TIE_COLOUR = "#ef6c00"
OTHER_COLOUR = "#90a4ae"
DOT_COLOUR = "#263238"
_JITTER = 0.3  # dots spread over +-0.3 of a bar's width, by sample
_NO_VALID = "No valid samples: no sample produced usable scores, so there is nothing to vote on."


def response_label(index: int) -> str:
    """R1, R2, ... for an original (0-based) response index."""
    return f"R{index + 1}"


def shown_position(sample: Sample, response: int) -> int:
    """1-based position at which `sample` showed original response `response`."""
    return sample.shown_order.index(response) + 1


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
        colours[vote.winner] = WINNER_COLOUR
    return colours


def vote_title(judgement: Judgement) -> str:
    """Winner (or TIE), margin, split, and the sample counts, as a figure title."""
    vote = judgement.vote
    if vote.winner is None:
        return "No winner"
    if vote.tie:
        tied = ", ".join(response_label(i) for i in vote.top)
        headline = (
            f"TIE between {tied} (not a win; tie-break pick {response_label(vote.winner)})"
        )
    elif vote.runner_up is None:
        headline = f"Winner {response_label(vote.winner)} (the only response)"
    else:
        headline = (
            f"Winner {response_label(vote.winner)} · margin {vote.margin} "
            f"over {response_label(vote.runner_up)}"
        )
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
        yaxis="y2",
        mode="markers",
        name="score in one sample",
        marker={"color": DOT_COLOUR, "size": 7, "opacity": 0.7},
        hovertext=hover,
        hoverinfo="text",
    )


def vote_figure(judgement: Judgement) -> go.Figure:
    """Bars: each response's summed score over the valid samples (original order);
    dots (right axis): each valid sample's score for it. Winner or tie highlighted."""
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
        hovertemplate=[
            f"{label}: total {total}, mean {_mean(mean)}<extra></extra>"
            for label, total, mean in zip(labels, vote.totals, vote.means, strict=True)
        ],
        opacity=0.85,
    )
    figure = go.Figure([bars, _dot_trace(judgement)])
    figure.update_layout(
        title=vote_title(judgement),
        xaxis={"tickmode": "array", "tickvals": list(range(n)), "ticktext": labels},
        yaxis={"title": "total score", "rangemode": "tozero"},
        yaxis2={"title": "score in one sample", "overlaying": "y", "side": "right",
                "rangemode": "tozero", "showgrid": False},
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
    """Samples x responses (original order) scores; invalid samples are empty rows."""
    n = len(judgement.input.responses)
    z, hover = _heatmap_rows(judgement)
    any_valid = judgement.vote.valid_samples > 0
    heatmap = go.Heatmap(
        z=z,
        x=[response_label(i) for i in range(n)],
        y=[_row_label(s) for s in judgement.samples],
        text=_cell_text(z),
        texttemplate="%{text}",
        hovertext=hover,
        hoverinfo="text",
        colorscale="Viridis",
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

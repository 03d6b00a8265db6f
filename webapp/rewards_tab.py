"""The Rewards tab: what the reward server told an RL run's policy, step by step
(`core.store.rewards`): the reward distribution over steps, parse-failure and
rescue rates, split and low-margin votes, position bias, responses flagged as
trying to steer the judge, and the close votes worth a human look.

`run_choices`, `rewards_view` and `annotate_close_votes` are plain functions of
the studio that return plain values and a figure, so tests call them without a
browser. Sending the close votes to annotation makes them items of the dataset
`rewards-<run>` (admins only: it imports items), where the annotation queues
find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.errors import InputError
from core.store.accounts import Action
from core.store.rewards import (
    annotation_dataset,
    close_votes,
    reward_runs,
    reward_summary,
    send_to_annotation,
)
from webapp.errors import shows_errors
from webapp.insight_charts import empty_figure
from webapp.studio import Studio

NO_RUNS = (
    "**No reward has been served yet.** Start the reward server, e.g. "
    "`grm-studio serve-reward --port 8100 --k 4`, and point an RL run at it: OpenRLHF "
    "`--remote_rm_url http://HOST:8100/get_reward?run=NAME`, TRL "
    "`GRMReward(\"http://HOST:8100\", run=\"NAME\")`, verl `core/reward_clients.py` "
    "(the README's reward-server section has the lines). Each run's rewards then show "
    "here by step: press Refresh.")
RATES = ("parse_failure_rate", "rescue_rate", "split_rate", "low_margin_rate",
         "first_shown_win_rate")
# the tables' columns, shown as headers also while they are empty
STEP_COLUMNS = ["step", "requests", "responses", "unscored", "mean", "p10", "p50", "p90",
                *(name.replace("_rate", " %") for name in RATES), "flagged_responses"]
CLOSE_COLUMNS = ["judgement", "step", "margin", "valid samples", "split", "tie", "query"]


@dataclass(frozen=True)
class RewardsView:
    """Everything the tab shows for one run."""

    message: str
    plot: go.Figure
    steps: pd.DataFrame
    close: pd.DataFrame


def run_choices(studio: Studio) -> list[str]:
    """The runs the store has served rewards to, the latest first."""
    return [r.run for r in reward_runs(studio.engine)]


def rewards_view(studio: Studio, run: str | None) -> RewardsView:
    """`run`'s figures (none chosen: say how to get some)."""
    if not run:
        return RewardsView(NO_RUNS, empty_figure("Rewards over steps", "no reward served yet"),
                           pd.DataFrame(columns=STEP_COLUMNS), pd.DataFrame(columns=CLOSE_COLUMNS))
    summary = reward_summary(studio.engine, run)
    if not summary.steps:
        raise InputError(f"no rewards were served to run '{run}'")
    labels = [*(_step_label(s.step) for s in summary.steps), "all"]
    table = pd.DataFrame([s.figures() for s in (*summary.steps, summary.total)])
    table["step"] = labels
    for name in RATES:
        table[name] = [None if v is None else round(100 * v, 1) for v in table[name]]
    table = table.rename(columns={name: name.replace("_rate", " %") for name in RATES})
    close = pd.DataFrame([[v.judgement_id, v.step, v.margin, v.valid_samples, v.split, v.tie,
                           v.query[:120]] for v in close_votes(studio.engine, run)],
                         columns=CLOSE_COLUMNS)
    total = summary.total
    message = (f"**{run}**: {total.requests} requests, {total.responses} responses "
               f"({total.unscored} unscored), rewards on the judge's scale (1–10). "
               "Rates: of samples (parse failure, rescue), of judgements of two or more "
               "responses (split, low margin), of samples with a strict winner (first shown).")
    return RewardsView(message, _distribution(summary.steps), table[STEP_COLUMNS], close)


def _step_label(step: int | None) -> str:
    return "unstepped" if step is None else str(step)


def annotate_close_votes(studio: Studio, run: str | None, request: Any) -> str:
    """Send `run`'s close votes to the annotation queues (admins); what was done."""
    studio.require(request, Action.IMPORT)
    if not run:
        raise InputError("choose a run first")
    votes = close_votes(studio.engine, run)
    if not votes:
        return f"Run {run} has no close votes to send."
    items = send_to_annotation(studio.engine, run, [v.judgement_id for v in votes])
    return (f"Sent {len(items)} close vote(s) to annotation as items of dataset "
            f"`{annotation_dataset(run)}`: the Annotate tab's queues have them.")


def _distribution(steps: Any) -> go.Figure:
    figure = go.Figure()
    for step in steps:
        if step.rewards:
            figure.add_trace(go.Box(y=step.rewards, name=str(step.step), boxmean=True,
                                    showlegend=False))
    figure.update_layout(title="Rewards over steps", xaxis_title="step",
                         yaxis_title="reward (mean vote score)", yaxis_range=[0.5, 10.5])
    return figure


def build_rewards_tab(studio: Studio) -> None:
    """The Rewards tab's components and events; call it inside a `gr.Tab`."""
    with gr.Row():
        run = gr.Dropdown(choices=[], label="RL run", scale=3, elem_id="rewards-run")
        refresh = gr.Button("Refresh", variant="primary", scale=0, elem_id="rewards-refresh")
    empty = rewards_view(studio, None)  # until a run is chosen: how to get one, and headers
    message = gr.Markdown(empty.message, elem_id="rewards-message")
    plot = gr.Plot(empty.plot, label="Reward distribution by step")
    steps = gr.Dataframe(empty.steps, headers=STEP_COLUMNS, label="Per step", interactive=False,
                         elem_id="rewards-steps")
    close = gr.Dataframe(empty.close, headers=CLOSE_COLUMNS, interactive=False,
                         elem_id="rewards-close",
                         label="Close votes (split, tied or low margin): worth a human look")
    with gr.Row():
        send = gr.Button("Send the close votes to annotation", scale=0,
                         elem_id="rewards-annotate")
        sent = gr.Markdown()
    outputs = [message, plot, steps, close]

    @shows_errors
    def on_runs(current: str | None) -> Any:
        choices = run_choices(studio)
        return gr.update(choices=choices, value=current if current in choices else
                         (choices[0] if choices else None))

    @shows_errors
    def on_show(chosen: str | None) -> list[Any]:
        view = rewards_view(studio, chosen)
        return [view.message, view.plot, view.steps, view.close]

    @shows_errors
    def on_send(chosen: str | None, request: gr.Request) -> str:
        return annotate_close_votes(studio, chosen, request)

    gr.on(None, on_runs, inputs=run, outputs=run)  # page load
    send.click(on_send, inputs=run, outputs=sent)
    run.change(on_show, inputs=run, outputs=outputs)
    refresh.click(on_runs, inputs=run, outputs=run).then(on_show, inputs=run, outputs=outputs)

"""`grm-studio serve-reward` (the judge as an RL run's reward server) and
`grm-studio rewards` (what it told the policy, per run and step)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors
from cli.options import build_config, config_option
from core.reward_batcher import RewardServerConfig
from core.store.rewards import CloseVote, StepSummary


@app.command("serve-reward")
def serve_reward(
    host: Annotated[str, typer.Option(help="address to bind; 127.0.0.1 keeps it local")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8100,
    model: Annotated[
        str | None,
        typer.Option(help="'studio' (default), 'embedded', a directory, a .gguf, the URL of "
                     "an OpenAI-compatible server (vLLM, SGLang) or several URLs, "
                     "comma-separated: a fleet, round-robin"),
    ] = None,
    k: Annotated[int | None, typer.Option(min=1, max=256, help="samples per judgement (default: "
                                          "GRM_STUDIO_K); a request's own k wins")] = None,
    meta: Annotated[
        Path | None, typer.Option(help="a meta reward model: requests may then ask voting 'meta'")
    ] = None,
    sample_rate: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="share of requests whose judgements are saved "
                     "(default: GRM_STUDIO_REWARD_SAMPLE_RATE, 1.0)"),
    ] = None,
    batch_window_ms: Annotated[
        float | None, config_option(RewardServerConfig, "batch_window_ms")] = None,
    batch_size: Annotated[int | None, config_option(RewardServerConfig, "batch_size")] = None,
    max_pending: Annotated[int | None, config_option(RewardServerConfig, "max_pending")] = None,
    timeout_s: Annotated[float | None, config_option(RewardServerConfig, "timeout_s")] = None,
    max_body_mb: Annotated[float | None, config_option(RewardServerConfig, "max_body_mb")] = None,
    max_responses: Annotated[
        int | None, config_option(RewardServerConfig, "max_responses")] = None,
    failure_reward: Annotated[
        float | None, config_option(RewardServerConfig, "failure_reward")] = None,
) -> None:
    """Serve the judge's voted rewards over HTTP to RL runs (OpenRLHF, verl, TRL), saving
    every served judgement tagged with its run and step."""
    from core.service import load_meta_model
    from webapp.reward_server import serve

    settings = load_settings(model=model, k=k, reward_sample_rate=sample_rate)
    config = build_config(
        RewardServerConfig, batch_window_ms=batch_window_ms, batch_size=batch_size,
        max_pending=max_pending, timeout_s=timeout_s, max_body_mb=max_body_mb,
        max_responses=max_responses, failure_reward=failure_reward)
    with reported_errors():
        meta_model = load_meta_model(meta, settings) if meta is not None else None
        serve(settings, config, host=host, port=port, meta=meta_model)


@app.command("rewards")
def rewards(
    run: Annotated[str | None, typer.Option(help="the RL run; none: list the runs")] = None,
    close: Annotated[int, typer.Option(min=0, help="list this many close (split, tied, "
                                       "low-margin) votes of the run")] = 0,
    annotate: Annotated[bool, typer.Option(
        "--annotate", help="send the close votes listed (--close) to the annotation queues, "
        "as items of dataset rewards-RUN")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """What the reward server told an RL run: per step, the rewards, parse failures and
    rescues, split and low-margin votes, position bias and steering flags."""
    from core.store import open_store
    from core.store.rewards import (
        annotation_dataset,
        close_votes,
        reward_runs,
        reward_summary,
        send_to_annotation,
    )

    settings = load_settings()
    with reported_errors():
        engine = open_store(settings)
        if run is None:
            runs = reward_runs(engine)
            if as_json:
                typer.echo(json.dumps([asdict(r) for r in runs], default=str, indent=2))
            for r in [] if as_json else runs:
                typer.echo(f"{r.run:30} {r.requests:7} requests {r.judgements:7} judgements  "
                           f"{r.first_at:%Y-%m-%d %H:%M} .. {r.last_at:%Y-%m-%d %H:%M}")
            if not runs and not as_json:
                typer.echo("no rewards served yet: start `grm-studio serve-reward`")
            return
        summary = reward_summary(engine, run)
        votes = close_votes(engine, run, limit=close) if close else []
        if not summary.steps:
            raise typer.Exit(_no_run(run))
        if annotate:
            items = send_to_annotation(engine, run, [v.judgement_id for v in votes])
            typer.echo(f"sent {len(items)} close vote(s) to annotation as items of dataset "
                       f"'{annotation_dataset(run)}'", err=True)
    if as_json:
        typer.echo(json.dumps({"run": run, "steps": [s.figures() for s in summary.steps],
                               "total": summary.total.figures(),
                               "close_votes": [asdict(v) for v in votes]}, indent=2))
        return
    typer.echo(f"run {run}: rewards on the judge's scale; rates of samples (failed, rescued), "
               "of judgements (split, low margin) and of strict sample winners (first shown)")
    typer.echo(f"{'step':>6} {'req':>5} {'resp':>5} {'mean':>6} {'p10':>5} {'p50':>5} "
               f"{'p90':>5} {'unsc':>5} {'fail%':>6} {'resc%':>6} {'split%':>6} {'low%':>6} "
               f"{'first%':>6} {'flag':>5}")
    for figures in (*summary.steps, summary.total):
        typer.echo(_row(figures, "all" if figures is summary.total else figures.step))
    for vote in votes:
        typer.echo(_close(vote))


def _no_run(run: str) -> int:
    typer.secho(f"error: no rewards were served to run '{run}'; `grm-studio rewards` lists "
                "the runs", fg=typer.colors.RED, err=True)
    return 2


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _row(s: StepSummary, step: int | str | None) -> str:
    f = s.figures()

    def num(name: str, form: str) -> str:
        value = f[name]
        return "-" if value is None else format(value, form)

    return (f"{'-' if step is None else step!s:>6} {s.requests:5} {s.responses:5} "
            f"{num('mean', '.2f'):>6} {num('p10', '.1f'):>5} {num('p50', '.1f'):>5} "
            f"{num('p90', '.1f'):>5} {s.unscored:5} "
            + " ".join(f"{_pct(f[name]):>6}" for name in (
                "parse_failure_rate", "rescue_rate", "split_rate", "low_margin_rate",
                "first_shown_win_rate"))
            + f" {s.flagged:5}")


def _close(vote: CloseVote) -> str:
    why = ", ".join(w for w, on in (("split", vote.split), ("tie", vote.tie)) if on) or "low margin"
    query = vote.query.replace("\n", " ")[:60]
    return (f"  judgement {vote.judgement_id} (step {vote.step}): {why}, margin {vote.margin} "
            f"over {vote.valid_samples} samples: {query}")

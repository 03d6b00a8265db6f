"""`grm-studio judge`: one query's responses, or a whole dataset into the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.app import app, fail, load_settings, reported_errors
from core.config import Settings
from core.errors import InputError

if TYPE_CHECKING:
    from core.types import Turn


@app.command()
def judge(
    query: Annotated[str | None, typer.Option("--query", "-q", help="the user's query")] = None,
    response: Annotated[
        list[str] | None, typer.Option("--response", "-r", help="a response (repeat for more)")
    ] = None,
    responses_file: Annotated[
        Path | None,
        typer.Option(help="JSON list / object with 'responses' (and 'query'), or JSONL"),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="judge a stored dataset into the database instead")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="with --dataset: first N items")] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", min=1, help="samples to vote over")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0, help="0 = greedy")] = None,
    top_p: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    seed: Annotated[int | None, typer.Option(min=0)] = None,
    template: Annotated[str | None, typer.Option(help="prompt template name")] = None,
    model: Annotated[
        str | None, typer.Option(help="'studio' (default), 'embedded' (the base), a model directory or a .gguf file")
    ] = None,
    rescue: Annotated[
        bool | None, typer.Option("--rescue/--no-rescue", help="score rescue for weak models")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the judgement as JSON")] = False,
    meta_model: Annotated[
        Path | None, typer.Option(help="a meta RM directory: show the meta-guided vote too")
    ] = None,
    k_meta: Annotated[
        int | None, typer.Option(min=1, help="with --meta-model: samples to keep; default k/2")
    ] = None,
) -> None:
    """Judge one query's responses (k shuffled samples, then the vote), or with
    --dataset every item of a stored dataset (resumable)."""
    settings = load_settings(
        model=model, k=k, temperature=temperature, top_p=top_p,
        max_new_tokens=max_new_tokens, seed=seed, template=template, rescue=rescue,
    )
    if dataset is not None:
        if query or response or responses_file:
            raise fail("--dataset judges stored items: leave out --query/--response/--responses-file")
        if meta_model is not None:
            raise fail("--meta-model judges one query; for stored judgements use `grm-studio meta score`")
        with reported_errors():
            _judge_dataset(settings, dataset, limit)
        return
    with reported_errors():
        _judge_one(settings, query, response or [], responses_file, as_json, meta_model, k_meta)


def _judge_one(
    settings: Settings,
    query: str | None,
    responses: list[str],
    responses_file: Path | None,
    as_json: bool,
    meta_model: Path | None = None,
    k_meta: int | None = None,
) -> None:
    from core import judge as run_judge
    from core.injection import flagged_responses, warning_line
    from core.inputs import read_responses_file
    from core.report import render_judgement

    responses = list(responses)
    context: list[Turn] = []
    if responses_file is not None:
        file_responses, file_query, context = read_responses_file(responses_file)
        responses += file_responses
        query = query if query is not None else file_query
    if query is None:
        raise InputError("no query: pass --query (or a 'query' in the responses file)")
    for index, flags in flagged_responses(responses).items():
        typer.secho(f"warning: {warning_line(index, flags)}", fg=typer.colors.YELLOW, err=True)
    if not as_json:
        typer.echo(f"Loading judge '{settings.model_shown}' ...", err=True)
    from core.service import load_meta_model

    # before the slow judge: fail fast
    meta = load_meta_model(meta_model, settings) if meta_model is not None else None
    result = run_judge(query, responses, context=context, settings=settings)
    if meta is None:
        typer.echo(result.model_dump_json(indent=2) if as_json else render_judgement(result))
        return
    from core.service import meta_vote
    from core.training.meta_vote import render_meta_guided

    view = meta_vote(meta, result, k_meta=k_meta)  # one query: nothing stored
    if as_json:
        payload = result.model_dump(mode="json") | {"meta_vote": view.model_dump(mode="json")}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_judgement(result) + "\n\n" + render_meta_guided(view))


def _judge_dataset(settings: Settings, dataset: str, limit: int | None) -> None:
    from rich.progress import Progress

    from core.service import BatchReport, build_judge, judge_dataset
    from core.store import open_store
    from core.store.batch import require_dataset

    engine = open_store(settings)
    require_dataset(engine, dataset)  # before the slow model load
    typer.echo(f"Loading judge '{settings.model_shown}' ...", err=True)
    judge_ = build_judge(settings)
    params = settings.sampling()
    with Progress() as progress:
        task = progress.add_task(f"judging {dataset}", total=None)

        def advance(report: BatchReport) -> None:
            progress.update(
                task,
                total=report.total - report.already_done,
                completed=report.judged + len(report.failed),
            )

        report = judge_dataset(engine, judge_, dataset, params, limit=limit, on_item=advance,
                               batch_items=settings.batch_items)
    typer.echo(
        f"judged {report.judged} item(s) of '{dataset}'; {report.already_done} already done "
        f"with these settings; {len(report.failed)} failed"
    )
    for item_id, reason in report.failed:
        typer.echo(f"  item {item_id}: {reason}")

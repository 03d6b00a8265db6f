"""The `grm-studio` command line: a thin front over `core`.

Only this module turns GRM Studio's errors into exit codes and messages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from core.config import Settings
from core.errors import GRMStudioError, InputError

app = typer.Typer(
    name="grm-studio",
    help="GRM Studio: judge responses with a generative reward model, label, improve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise _fail(f"invalid setting: {problems}") from None


@app.command()
def judge(
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="the user's query")] = None,
    response: Annotated[
        Optional[list[str]], typer.Option("--response", "-r", help="a response (repeat for more)")
    ] = None,
    responses_file: Annotated[
        Optional[Path],
        typer.Option(help="JSON list / object with 'responses' (and 'query'), or JSONL"),
    ] = None,
    k: Annotated[Optional[int], typer.Option("-k", "--k", min=1, help="samples to vote over")] = None,
    temperature: Annotated[Optional[float], typer.Option(min=0.0, help="0 = greedy")] = None,
    top_p: Annotated[Optional[float], typer.Option(min=0.0, max=1.0)] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(min=0)] = None,
    template: Annotated[Optional[str], typer.Option(help="prompt template name")] = None,
    model: Annotated[
        Optional[str], typer.Option(help="'embedded', a model directory or a .gguf file")
    ] = None,
    rescue: Annotated[
        Optional[bool], typer.Option("--rescue/--no-rescue", help="score rescue for weak models")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the judgement as JSON")] = False,
) -> None:
    """Judge one query's responses: k shuffled samples, then the vote."""
    from core import judge as run_judge
    from core.report import render_judgement
    from core.inputs import read_responses_file

    settings = _settings(model=model)
    try:
        responses = list(response or [])
        context = []
        if responses_file is not None:
            file_responses, file_query, context = read_responses_file(responses_file)
            responses += file_responses
            query = query if query is not None else file_query
        if query is None:
            raise InputError("no query: pass --query (or a 'query' in the responses file)")
        if not as_json:
            typer.echo(f"Loading judge '{settings.model}' ...", err=True)
        result = run_judge(
            query,
            responses,
            context=context,
            k=k,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            template=template,
            rescue=rescue,
            settings=settings,
        )
    except GRMStudioError as err:
        raise _fail(str(err)) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        typer.echo(render_judgement(result))


@app.command()
def templates() -> None:
    """List the prompt templates."""
    from core.templates import TEMPLATES

    for t in TEMPLATES.values():
        typer.echo(
            f"{t.name:24} {t.min_responses}-{t.max_responses} responses  "
            f"sha256 {t.sha256[:12]}  {t.description}"
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind; 127.0.0.1 keeps it local")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 7860,
    model: Annotated[Optional[str], typer.Option(help="'embedded', a directory or .gguf")] = None,
) -> None:
    """Start the web app (the judge model loads on the first judgement)."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from webapp.app import serve as serve_app

    serve_app(_settings(model=model), host=host, port=port)


def main() -> None:
    app(prog_name="grm-studio")


if __name__ == "__main__":
    sys.exit(main())

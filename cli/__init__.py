"""The `grm-studio` command line: a thin front over `core`.

Commands live in `cli/judge.py` (judge), `cli/data.py` (import, stats,
export) and here (templates, serve); `cli/app.py` is the only place that
turns GRM Studio's errors into exit codes and messages.
"""

from __future__ import annotations

from typing import Annotated

import typer

# Imported for their side effect: each registers its commands on `app` (judge,
# data, eval, compare; training: rft, meta RM, RL, the recipe; the reward server; adjudication).
from cli import (  # noqa: F401
    adjudicate,
    compare,
    data,
    eval,
    judge,
    meta,
    recipe,
    reward,
    rl,
    train,
)
from cli.app import app, load_settings

__all__ = ["app", "main"]


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
    model: Annotated[str | None, typer.Option(help="'studio' (default), 'embedded' (the base), a directory or .gguf")] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="demo mode: no sign-in, nothing is saved")
    ] = False,
) -> None:
    """Start the web app behind sign-in (the judge model loads on the first judgement)."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from webapp.app import serve as serve_app

    overrides = {"read_only": True} if read_only else {}
    serve_app(load_settings(model=model, **overrides), host=host, port=port)


def main() -> None:
    app(prog_name="grm-studio")

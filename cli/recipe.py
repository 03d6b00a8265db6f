"""`grm-studio recipe`: make the studio's own judge (cold start on the critique data,
then ship the adapter to models/grm-studio-judge). Every stage resumes where a killed
run stopped; the recipe's settings live in `core.training.recipe.RecipeConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors


@app.command()
def recipe(
    stage: Annotated[str, typer.Option(help="all | coldstart | ship")] = "all",
    work_dir: Annotated[Path | None, typer.Option(help="stage outputs; default data/recipe")] = None,
) -> None:
    """Train GRM Studio's own judge from the shared critique data and ship it."""
    from core.training.recipe import JudgeRecipe, RecipeConfig

    if stage not in ("all", "coldstart", "ship"):
        raise typer.BadParameter("choose all, coldstart or ship", param_hint="--stage")
    settings = load_settings()
    with reported_errors():
        config = RecipeConfig(**({"work_dir": work_dir} if work_dir else {}))
        recipe_ = JudgeRecipe(config, settings)
        if stage in ("all", "coldstart"):
            result = recipe_.coldstart(on_progress=_show_step)
            if result is None:
                typer.echo(f"cold start: already complete in {recipe_.coldstart_adapter}")
            else:
                typer.echo(f"cold start: {result.steps} steps, {result.examples} examples in "
                           f"{result.seconds / 60:.1f} min ({result.examples_per_second:.3f} "
                           f"examples/s), final loss {result.final_loss:.3f}")
        if stage in ("all", "ship"):
            typer.echo(f"shipped: {recipe_.ship()}")


def _show_step(entry: dict[str, float]) -> None:
    typer.echo(f"step {int(entry['step'])}/{int(entry['steps'])}  loss {entry['loss']:.3f}  "
               f"{entry['examples_per_s']:.3f} examples/s  {entry['tokens_per_s']:.0f} tokens/s")

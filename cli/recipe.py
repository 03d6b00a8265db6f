"""`grm-studio recipe`: make the studio's own judge (cold start on the critique data,
an RFT round on its own samples of labelled pairs, ship the adapter to
models/grm-studio-judge, train a meta RM on the shipped judge's samples, and judge
the demo dataset with it for the first start). Every stage resumes where a killed
run stopped; the recipe's settings live in `core.training.recipe.RecipeConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors


@app.command()
def recipe(
    stage: Annotated[str, typer.Option(help="all | coldstart | rft | ship | meta | demo")] = "all",
    work_dir: Annotated[Path | None, typer.Option(help="stage outputs; default data/recipe")] = None,
) -> None:
    """Train GRM Studio's own judge from the shared critique data and ship it."""
    from core.training.recipe import JudgeRecipe, RecipeConfig

    if stage not in ("all", "coldstart", "rft", "ship", "meta", "demo"):
        raise typer.BadParameter("choose all, coldstart, rft, ship, meta or demo",
                                 param_hint="--stage")
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
        if stage in ("all", "rft"):
            done = recipe_.rft_round(on_item=_show_item, on_progress=_show_step)
            if done is None:
                typer.echo(f"RFT round: already complete in {recipe_.round.adapter}")
            else:
                counts = done.export.counts
                typer.echo(f"RFT round: export {done.export.path} "
                           f"({counts.get('records_train', 0)} training records, "
                           f"{counts.get('records_hinted', 0)} hinted)")
                if done.training is not None:
                    typer.echo(f"RFT round: {done.training.steps} steps in "
                               f"{done.training.seconds / 60:.1f} min, final loss "
                               f"{done.training.final_loss:.3f}")
        if stage in ("all", "ship"):
            typer.echo(f"shipped: {recipe_.ship()}")
        if stage in ("all", "meta"):
            meta = recipe_.meta(
                on_item=lambda done, total: typer.echo(f"meta RM: {done}/{total} items judged"),
                on_step=lambda step, loss: typer.echo(f"meta RM step {step}  loss {loss:.3f}"))
            where = recipe_.meta_stage.model_dir
            typer.echo(f"meta RM: already trained in {where}" if meta is None else
                       f"meta RM: {meta.steps} steps on {meta.positives} correct and "
                       f"{meta.negatives} wrong samples, saved in {where}")
        if stage in ("all", "demo"):
            path = recipe_.demo_judgements(
                on_batch=lambda done, total: typer.echo(f"demo: {done}/{total} items judged"))
            typer.echo(f"demo judgements: {path}")


def _show_item(done: int, total: int) -> None:
    typer.echo(f"RFT round: {done}/{total} items judged")


def _show_step(entry: dict[str, float]) -> None:
    typer.echo(f"step {int(entry['step'])}/{int(entry['steps'])}  loss {entry['loss']:.3f}  "
               f"{entry['examples_per_s']:.3f} examples/s  {entry['tokens_per_s']:.0f} tokens/s")

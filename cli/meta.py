"""`grm-studio meta train / score / list`: the meta reward model from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors
from cli.options import build_config, config_option
from core.training.meta_rm import MetaTrainConfig

meta_app = typer.Typer(
    help="Meta reward model: rates each sampled judgement; guides the vote.",
    no_args_is_help=True,
)
app.add_typer(meta_app, name="meta")


@meta_app.command("train")
def train(
    out: Annotated[
        Path | None,
        typer.Argument(help="directory to save the meta RM in (must not exist); "
                       "default: DATA_DIR/meta-models/NAME"),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="only this dataset's samples")] = None,
    base_model: Annotated[
        str | None, typer.Option(help="'studio', 'embedded', a model directory or .gguf; default: the judge")
    ] = None,
    epochs: Annotated[int | None, config_option(MetaTrainConfig, "epochs")] = None,
    max_steps: Annotated[int | None, config_option(MetaTrainConfig, "max_steps")] = None,
    batch_size: Annotated[int | None, config_option(MetaTrainConfig, "batch_size")] = None,
    learning_rate: Annotated[float | None, config_option(MetaTrainConfig, "learning_rate")] = None,
    weight_decay: Annotated[float | None, config_option(MetaTrainConfig, "weight_decay")] = None,
    max_length: Annotated[int | None, config_option(MetaTrainConfig, "max_length")] = None,
    trainable_layers: Annotated[
        int | None, config_option(MetaTrainConfig, "trainable_layers")
    ] = None,
    seed: Annotated[int | None, config_option(MetaTrainConfig, "seed")] = None,
    name: Annotated[
        str | None, typer.Option(help="registry name; default: OUT's name, else meta-DATASET")
    ] = None,
) -> None:
    """Train a meta RM (BCE, one logit) on every stored sample of the labelled items."""
    from core.store import open_store
    from core.training.meta_rm import train_meta_rm

    settings = load_settings()
    config = build_config(
        MetaTrainConfig, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
        learning_rate=learning_rate, weight_decay=weight_decay, max_length=max_length,
        trainable_layers=trainable_layers, seed=seed,
    )
    with reported_errors():
        info = train_meta_rm(
            open_store(settings), settings, config, dataset=dataset,
            base_model=base_model, name=name, out_dir=out,
            on_step=lambda step, loss: typer.echo(f"step {step}  loss {loss:.4f}", err=True),
        )
    typer.echo(
        f"meta RM '{info.name}' (id {info.id}) saved to {info.path}: {info.steps} step(s) on "
        f"{info.positives} correct and {info.negatives} incorrect samples; "
        f"sha256 {info.content_hash[:12]}"
    )


@meta_app.command("score")
def score(
    judgement_id: Annotated[int, typer.Argument(help="a stored judgement's id")],
    meta_model: Annotated[Path, typer.Option(help="a meta RM directory")],
    k_meta: Annotated[int | None, typer.Option(min=1, help="samples to keep; default k/2")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the guided vote as JSON")] = False,
) -> None:
    """Score a stored judgement's samples with a meta RM, store the scores, show the
    meta-guided vote beside the plain vote."""
    from core.service import meta_vote
    from core.store import open_store
    from core.store.judgements import fetch_judgement
    from core.training.meta_rm import MetaRewardModel
    from core.training.meta_vote import render_meta_guided

    settings = load_settings()
    with reported_errors():
        engine = open_store(settings)
        judgement = fetch_judgement(engine, judgement_id)
        meta = MetaRewardModel.load(meta_model, device=settings.resolved_device())
        view = meta_vote(meta, judgement, k_meta=k_meta, engine=engine, judgement_id=judgement_id)
    typer.echo(view.model_dump_json(indent=2) if as_json else render_meta_guided(view))


@meta_app.command("list")
def list_() -> None:
    """The registered meta RMs, newest first."""
    from core.store import open_store
    from core.store.meta_scores import meta_models

    with reported_errors():
        rows = meta_models(open_store(load_settings()))
    for r in rows:
        typer.echo(
            f"{r.id:4}  {r.name:24} +{r.positives}/-{r.negatives}  sha256 {r.content_hash[:12]}  "
            f"{r.source}  (base {r.base_model})"
        )
    if not rows:
        typer.echo("no meta RM yet; train one with `grm-studio meta train`")


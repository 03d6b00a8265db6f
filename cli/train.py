"""`grm-studio rft export / exports / train` and `grm-studio models`: turning labels
into a better judge (rejective fine-tuning) from the command line."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors
from cli.options import build_config, config_option
from core.training.rft_data import RFTConfig
from core.training.rft_trainer import RFTTrainConfig

rft = typer.Typer(
    help="Rejective fine-tuning: build an export from labelled items, train the judge on it.",
    no_args_is_help=True,
)
app.add_typer(rft, name="rft")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@rft.command("export")
def export_(
    dataset: Annotated[str, typer.Option(help="dataset whose labelled items are used")],
    name: Annotated[str | None, typer.Option(help="export name; default: DATASET-rft")] = None,
    n_rft: Annotated[int | None, config_option(RFTConfig, "n_rft")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N items")] = None,
    drop_too_easy: Annotated[
        bool | None, config_option(RFTConfig, "drop_too_easy", "--drop-too-easy/--keep-easy")
    ] = None,
    hinted: Annotated[bool | None, config_option(RFTConfig, "hinted", "--hinted/--no-hinted")] = None,
    n_hinted: Annotated[int | None, config_option(RFTConfig, "n_hinted")] = None,
    max_hinted: Annotated[int | None, config_option(RFTConfig, "max_hinted")] = None,
    accept_rescued: Annotated[
        bool | None,
        config_option(RFTConfig, "accept_rescued", "--accept-rescued/--no-accept-rescued"),
    ] = None,
    validation: Annotated[
        float | None, config_option(RFTConfig, "validation_fraction", "--validation")
    ] = None,
    seed: Annotated[int | None, config_option(RFTConfig, "seed")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0)] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    model: Annotated[str | None, typer.Option(help="the judge that samples")] = None,
) -> None:
    """Sample trajectories with the judge, accept the correct ones, write a versioned export."""
    from core.service import build_judge, export_rft
    from core.store import open_store
    from core.store.batch import require_dataset
    from core.training import exports_dir

    settings = load_settings(model=model)
    config = build_config(RFTConfig, n_rft=n_rft, drop_too_easy=drop_too_easy, hinted=hinted,
                          n_hinted=n_hinted, max_hinted=max_hinted,
                          accept_rescued=accept_rescued, validation_fraction=validation,
                          seed=seed)
    with reported_errors():
        engine = open_store(settings)
        require_dataset(engine, dataset)
        judge = build_judge(settings)
        params = settings.sampling(temperature=temperature, max_new_tokens=max_new_tokens)
        with typer.progressbar(length=1, label="sampling", file=None) as bar:
            def on_item(done: int, total: int, _build: object) -> None:
                bar.length = total
                bar.update(1)

            info = export_rft(engine, judge, dataset, name=name or f"{dataset}-rft",
                              root=exports_dir(settings.data_dir), config=config, params=params,
                              limit=limit, created_by=_user(), on_item=on_item)
    typer.echo(f"export {info.ref} (id {info.id}) written to {info.path}")
    typer.echo(f"content sha256 {info.content_sha256}")
    for key, value in sorted(info.counts.items()):
        typer.echo(f"  {key:32} {value}")


@rft.command("exports")
def exports() -> None:
    """List the RFT exports recorded in the store."""
    from core.store import open_store
    from core.training import list_exports

    with reported_errors():
        rows = list_exports(open_store(load_settings()))
    for r in rows:
        c = r["counts"]
        typer.echo(
            f"{r['id']:4}  {r['name']}:v{r['version']:<4} dataset {r['dataset']}  "
            f"train {c.get('records_train', 0)}  validation {c.get('records_validation', 0)}  "
            f"hinted {c.get('records_hinted', 0)}  sha256 {r['content_sha256'][:12]}  {r['path']}"
        )


@rft.command("train")
def train(
    export: Annotated[str, typer.Argument(help="export id, name, name:vN or directory")],
    lora: Annotated[bool | None, config_option(RFTTrainConfig, "lora", "--lora")] = None,
    lora_r: Annotated[int | None, config_option(RFTTrainConfig, "lora_r")] = None,
    lora_alpha: Annotated[int | None, config_option(RFTTrainConfig, "lora_alpha")] = None,
    epochs: Annotated[float | None, config_option(RFTTrainConfig, "epochs")] = None,
    max_steps: Annotated[int | None, config_option(RFTTrainConfig, "max_steps")] = None,
    learning_rate: Annotated[float | None, config_option(RFTTrainConfig, "learning_rate")] = None,
    batch_size: Annotated[int | None, config_option(RFTTrainConfig, "batch_size")] = None,
    grad_accum: Annotated[int | None, config_option(RFTTrainConfig, "grad_accum")] = None,
    max_length: Annotated[int | None, config_option(RFTTrainConfig, "max_length")] = None,
    hinted: Annotated[
        bool | None, config_option(RFTTrainConfig, "include_hinted", "--hinted/--no-hinted")
    ] = None,
    evaluate: Annotated[
        bool | None, config_option(RFTTrainConfig, "evaluate", "--evaluate/--no-evaluate")
    ] = None,
    name: Annotated[str | None, config_option(RFTTrainConfig, "name")] = None,
    base_model: Annotated[str | None, config_option(RFTTrainConfig, "base_model")] = None,
    seed: Annotated[int | None, config_option(RFTTrainConfig, "seed")] = None,
) -> None:
    """Fine-tune the judge on an export; save it under DATA_DIR/judges/NAME and register it."""
    from core.store import open_store
    from core.training import exports_dir, find_export, train_rft

    settings = load_settings()
    config = build_config(RFTTrainConfig, name=name, base_model=base_model, lora=lora,
                          lora_r=lora_r, lora_alpha=lora_alpha, epochs=epochs,
                          max_steps=max_steps, learning_rate=learning_rate,
                          batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
                          include_hinted=hinted, evaluate=evaluate, seed=seed)
    with reported_errors():
        engine = open_store(settings)
        found = find_export(engine, export, exports_dir(settings.data_dir))
        typer.echo(f"training on {found.ref} ({found.path}), {config.method}")
        trained = train_rft(engine, found, config, settings, created_by=_user())
    if trained.judge_model_id is None:
        return  # a non-main process under accelerate
    metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in trained.metrics.items() if k != "log")
    typer.echo(f"saved {trained.path}")
    typer.echo(f"registered judge model {trained.judge_model_id} '{trained.name}' ({metrics})")
    typer.echo(f"judge with it: grm-studio judge --model {trained.path} ...")


@app.command()
def models(
    trained: Annotated[bool, typer.Option("--trained", help="only trained judges")] = False,
) -> None:
    """List the registered judge models (trained ones with their provenance)."""
    from core.store import open_store
    from core.training import list_judge_models

    with reported_errors():
        entries = list_judge_models(open_store(load_settings()), trained_only=trained)
    for e in entries:
        line = f"{e.id:4}  {e.name}  [{e.backend}]  {e.source}  rev {(e.revision or '-')[:16]}"
        if e.trained:
            line += f"  ({e.method} of {e.parent} on {e.export})"
        typer.echo(line)

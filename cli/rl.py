"""`grm-studio rl train`: rule-based RL (GRPO, TRL) of the judge on labelled items."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors
from cli.options import build_config, config_option
from core.config import BUILT_IN_MODELS
from core.training.rl import RLConfig

rl_app = typer.Typer(help="Rule-based RL of the judge (GRPO, +1/-1 by the strict rule).",
                     no_args_is_help=True)
app.add_typer(rl_app, name="rl")


@rl_app.command("train")
def train(
    dataset: Annotated[str, typer.Option(help="stored dataset whose labelled items to train on")],
    out: Annotated[
        Path | None,
        typer.Argument(help="directory to save the trained judge in (must not exist); "
                       "default: DATA_DIR/judges/NAME"),
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="'studio', 'embedded', a model directory or .gguf; default: the judge")
    ] = None,
    beta: Annotated[float | None, config_option(RLConfig, "beta")] = None,
    num_generations: Annotated[int | None, config_option(RLConfig, "num_generations")] = None,
    prompts_per_step: Annotated[int | None, config_option(RLConfig, "prompts_per_step")] = None,
    learning_rate: Annotated[float | None, config_option(RLConfig, "learning_rate")] = None,
    epochs: Annotated[int | None, config_option(RLConfig, "epochs")] = None,
    max_steps: Annotated[int | None, config_option(RLConfig, "max_steps")] = None,
    max_completion_length: Annotated[
        int | None, config_option(RLConfig, "max_completion_length")
    ] = None,
    temperature: Annotated[float | None, config_option(RLConfig, "temperature")] = None,
    orders_per_item: Annotated[int | None, config_option(RLConfig, "orders_per_item")] = None,
    limit: Annotated[int | None, config_option(RLConfig, "limit")] = None,
    prefill: Annotated[
        bool | None,
        typer.Option("--prefill/--no-prefill",
                     help="start replies with 'Specific Criteria:' (default: on for the embedded model)"),
    ] = None,
    gradient_checkpointing: Annotated[
        bool | None,
        config_option(RLConfig, "gradient_checkpointing",
                      "--gradient-checkpointing/--no-gradient-checkpointing"),
    ] = None,
    seed: Annotated[int | None, config_option(RLConfig, "seed")] = None,
    name: Annotated[
        str | None, typer.Option(help="judge model name; default: OUT's name, else DATASET-grpo-TIME")
    ] = None,
) -> None:
    """GRPO with reward +1 when the parsed scores pick the labelled best strictly, -1
    otherwise; saves the policy and registers it as a judge model."""
    from core.store import open_store
    from core.templates import PRINCIPLES_PREFIX, get_template
    from core.training.rl import train_rl

    settings = load_settings()
    if prefill is None:
        prefill = (base_model or settings.model) in BUILT_IN_MODELS
    config = build_config(
        RLConfig, num_generations=num_generations, beta=beta, learning_rate=learning_rate,
        prompts_per_step=prompts_per_step, epochs=epochs, max_steps=max_steps,
        max_completion_length=max_completion_length, temperature=temperature,
        orders_per_item=orders_per_item, limit=limit,
        reply_prefix=PRINCIPLES_PREFIX if prefill else "",
        gradient_checkpointing=gradient_checkpointing, seed=seed,
    )
    with reported_errors():
        template = get_template(settings.template) if settings.template else None
        info = train_rl(open_store(settings), settings, config, dataset=dataset,
                        base_model=base_model, template=template, name=name, out_dir=out)
    rewards = ", ".join(f"{r:+.2f}" for r in info.rewards[-5:]) or "none logged"
    typer.echo(
        f"trained judge saved to {info.path} (judge model id {info.judge_model_id}, sha256 "
        f"{info.content_hash[:12]}): {info.steps} step(s) on {info.prompts} prompt(s); "
        f"mean reward of the last steps: {rewards}\n"
        f"judge with it: grm-studio judge --model {info.path} ..."
    )

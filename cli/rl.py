"""`grm-studio rl train`: rule-based RL (GRPO, TRL) of the judge on labelled items."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors
from core.config import BUILT_IN_MODELS

rl_app = typer.Typer(help="Rule-based RL of the judge (GRPO, +1/-1 by the strict rule).",
                     no_args_is_help=True)
app.add_typer(rl_app, name="rl")


@rl_app.command("train")
def train(
    out: Annotated[Path, typer.Argument(help="directory to save the trained judge in (must not exist)")],
    dataset: Annotated[str, typer.Option(help="stored dataset whose labelled items to train on")],
    base_model: Annotated[
        str | None, typer.Option(help="'embedded', a model directory or .gguf; default: the judge")
    ] = None,
    beta: Annotated[float, typer.Option(min=0.0, help="KL coefficient (paper, 27B: 0.08)")] = 0.08,
    num_generations: Annotated[int, typer.Option(min=2, help="group size (paper: 4)")] = 4,
    prompts_per_step: Annotated[int, typer.Option(min=1)] = 1,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = 1e-6,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    max_steps: Annotated[int | None, typer.Option(min=1, help="stop after N steps")] = None,
    max_completion_length: Annotated[int, typer.Option(min=1)] = 512,
    temperature: Annotated[float, typer.Option(min=0.0)] = 1.0,
    orders_per_item: Annotated[int, typer.Option(min=1, help="shuffled orders per item")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="first N labelled items")] = None,
    prefill: Annotated[
        bool | None,
        typer.Option("--prefill/--no-prefill",
                     help="start replies with 'Specific Criteria:' (default: on for the embedded model)"),
    ] = None,
    gradient_checkpointing: Annotated[bool, typer.Option()] = False,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    name: Annotated[str | None, typer.Option(help="judge model name; default: the directory")] = None,
) -> None:
    """GRPO with reward +1 when the parsed scores pick the labelled best strictly, -1
    otherwise; saves the policy and registers it as a judge model."""
    from core.store import open_store
    from core.templates import PRINCIPLES_PREFIX, get_template
    from core.training.rl import RLConfig, train_rl

    settings = load_settings()
    if prefill is None:
        prefill = (base_model or settings.model) in BUILT_IN_MODELS
    config = RLConfig(
        num_generations=num_generations, beta=beta, learning_rate=learning_rate,
        prompts_per_step=prompts_per_step, epochs=epochs, max_steps=max_steps,
        max_completion_length=max_completion_length, temperature=temperature,
        orders_per_item=orders_per_item, limit=limit,
        reply_prefix=PRINCIPLES_PREFIX if prefill else "",
        gradient_checkpointing=gradient_checkpointing, seed=seed,
    )
    with reported_errors():
        template = get_template(settings.template) if settings.template else None
        info = train_rl(open_store(settings), settings, dataset=dataset, out_dir=out,
                        base_model=base_model, config=config, template=template, name=name)
    rewards = ", ".join(f"{r:+.2f}" for r in info.rewards[-5:]) or "none logged"
    typer.echo(
        f"trained judge saved to {info.path} (judge model id {info.judge_model_id}, sha256 "
        f"{info.content_hash[:12]}): {info.steps} step(s) on {info.prompts} prompt(s); "
        f"mean reward of the last steps: {rewards}\n"
        f"judge with it: grm-studio judge --model {info.path} ..."
    )

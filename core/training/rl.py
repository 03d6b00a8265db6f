"""Rule-based online RL of the judge (grm-method.md §4.2), with TRL's GRPOTrainer.

    info = train_rl(engine, settings, RLConfig(), dataset="llmbar", name="grm-rl")

Every labelled item of the dataset (two or more responses; its label by the
rule of `core.labels`, a tie label included; a best-of-n label with several
correct responses is left out: the trainer's `best` column holds one best
response or a tie) becomes one prompt per shuffled
order, rendered exactly as the judge renders it (same template, same seeded
shuffles, the model's chat format, the judge's forced reply start). For each
prompt GRPO samples a group of `num_generations` (paper: 4) completions; the
reward of a completion is +1 when the scores parsed from it, mapped back to the
original order by the shown order, pick the labelled best strictly
(`core.agreement.strict_correct`), and -1 otherwise, a parse failure included.
No format reward: the KL penalty `beta` keeps the format (the paper
used 0.08 at 27B; smaller values collapsed).

The policy is saved under `<data_dir>/judges/<name>` (or a given directory;
`core.training.outputs`) through a staging directory renamed into place, then
registered as a trained judge model (backend
"transformers", source its path, revision the backend's fingerprint; its parent,
method "grpo", parameters and rewards in `trained_judge`), so it
judges like any other model: `load_backend(Settings(model=str(path)))`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.agreement import strict_correct
from core.config import Settings
from core.engine import shown_orders, to_original_order
from core.errors import InputError
from core.files import checkpoint_sha256, staged_directory
from core.labels import Accepted, NoLabel
from core.parse import parse_output
from core.store.batch import require_dataset
from core.store.labels import item_labels
from core.store.schema import Item
from core.templates import PRINCIPLES_PREFIX, PromptTemplate, default_template, with_reference
from core.training.outputs import new_output_dir, run_name
from core.training.precision import training_precision
from core.training.registry import register_trained_judge
from core.training.rft_trainer import resolve_model_dir
from core.types import ParseFailure

if TYPE_CHECKING:  # heavy: imported where training runs
    from transformers import PreTrainedModel

MANIFEST = "grm_rl.json"


class RLConfig(BaseModel):
    """How the judge is trained with GRPO."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_generations: int = Field(4, ge=2, description="completions per prompt, the group (paper: 4)")
    beta: float = Field(
        0.08, ge=0.0, description="KL coefficient against the starting model (paper, 27B: 0.08)"
    )
    learning_rate: float = Field(1e-6, ge=0.0, description="optimiser learning rate")
    prompts_per_step: int = Field(1, ge=1, description="prompts per optimiser step, each with its group")
    epochs: int = Field(1, ge=1, description="passes over the prompts (max_steps stops earlier)")
    max_steps: int | None = Field(None, ge=1, description="optimiser steps at most; none: the epochs")
    max_completion_length: int = Field(512, ge=1, description="tokens sampled per completion")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature of the completions")
    orders_per_item: int = Field(1, ge=1, description="shuffled response orders (prompts) per item")
    limit: int | None = Field(None, ge=1, description="only the first N labelled items; none: all")
    reply_prefix: str = Field(
        PRINCIPLES_PREFIX, description="every reply starts with it, as the judge's prefill"
    )
    gradient_checkpointing: bool = Field(False, description="recompute activations to save memory")
    seed: int = Field(0, ge=0, description="seeds the response shuffles and the run")


@dataclass(frozen=True)
class RLPrompt:
    """One prompt of the RL set: the text the policy continues and what the
    reward needs to check its scores."""

    prompt: str  # chat-formatted, ending with the reply prefix
    shown_order: tuple[int, ...]
    best: int | None
    item_id: int


@dataclass(frozen=True)
class RLModelInfo:
    judge_model_id: int  # row in judge_model
    path: Path
    content_hash: str
    base_model: str
    prompts: int
    steps: int
    rewards: tuple[float, ...]  # mean reward per logged step


def strict_rule_reward(
    text: str, shown_order: Sequence[int], best: int | None, score_range: tuple[int, int] = (1, 10)
) -> float:
    """+1 if the scores in `text` (shown order) pick `best` strictly, else -1."""
    parsed = parse_output(text, len(shown_order), score_range=score_range)
    if isinstance(parsed, ParseFailure):
        return -1.0
    scores = to_original_order(parsed.scores, shown_order)
    return 1.0 if strict_correct(scores, best) else -1.0


def reward_function(
    reply_prefix: str, score_range: tuple[int, int] = (1, 10)
) -> Callable[..., list[float | None]]:
    """The reward in TRL's form: completions plus the dataset's columns (TRL's type
    allows None, "no reward for this completion"; this rule always gives one)."""

    def strict_rule(
        completions: list[str], shown_order: list[list[int]], best: list[int | None], **_: Any
    ) -> list[float | None]:
        return [
            strict_rule_reward(reply_prefix + text, order, b, score_range)
            for text, order, b in zip(completions, shown_order, best, strict=True)
        ]

    return strict_rule


def rl_prompts(
    engine: Engine,
    dataset: str,
    tokenizer: Any,
    config: RLConfig,
    template: PromptTemplate | None = None,
) -> list[RLPrompt]:
    """The RL prompts of `dataset`'s labelled items (see the module docstring)."""
    ds_id = require_dataset(engine, dataset)
    prompts: list[RLPrompt] = []
    with Session(engine) as session:
        query = select(Item).where(Item.dataset_id == ds_id, Item.n_responses >= 2).order_by(Item.id)
        rows = list(session.scalars(query))
        labels = item_labels(session, [item.id for item in rows])
        items = 0
        for item in rows:
            label = labels[item.id]
            if isinstance(label, NoLabel) or isinstance(label.best, Accepted):
                continue
            judge_input = item.judge_input()
            chosen = template or default_template(item.n_responses)
            if judge_input.reference is not None:
                chosen = with_reference(chosen)
            for order in shown_orders(item.n_responses, config.orders_per_item, config.seed + item.id):
                text = chosen.render(judge_input, order)
                prompts.append(
                    RLPrompt(
                        prompt=_chat_prompt(tokenizer, text) + config.reply_prefix,
                        shown_order=order,
                        best=label.best,
                        item_id=item.id,
                    )
                )
            items += 1
            if config.limit is not None and items >= config.limit:
                break
    return prompts


def train_rl(
    engine: Engine,
    settings: Settings,
    config: RLConfig | None = None,
    *,
    dataset: str,
    base_model: str | Path | None = None,
    template: PromptTemplate | None = None,
    name: str | None = None,
    out_dir: Path | None = None,
) -> RLModelInfo:
    """GRPO on `dataset`'s labelled items from `base_model` (default: the judge,
    `settings.model`); the policy is registered as a judge model `name` (default:
    the directory's name, else DATASET-grpo-TIME) and saved at `out_dir` if given,
    else under `<data_dir>/judges/<name>`; either must not exist. `template`
    overrides the judge's default."""
    config = config or RLConfig()
    name = name or (out_dir.name if out_dir is not None else run_name(f"{dataset}-grpo"))
    out_dir = new_output_dir(settings, "rl", name, out_dir)
    require_dataset(engine, dataset)  # before the slow imports and loads
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    base = str(base_model or settings.model)
    model_dir, parent = resolve_model_dir(base, settings.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    prompts = rl_prompts(engine, dataset, tokenizer, config, template)
    if not prompts:
        raise InputError(
            f"dataset '{dataset}' has no labelled item with two or more responses to train on"
        )
    precision = training_precision(settings)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    rows = [{"prompt": p.prompt, "shown_order": list(p.shown_order), "best": p.best} for p in prompts]
    with tempfile.TemporaryDirectory(prefix="grm-rl-") as scratch:
        args = GRPOConfig(
            output_dir=scratch,
            num_generations=config.num_generations,
            per_device_train_batch_size=config.prompts_per_step * config.num_generations,
            beta=config.beta,
            learning_rate=config.learning_rate,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps if config.max_steps is not None else -1,
            max_completion_length=config.max_completion_length,
            temperature=config.temperature,
            gradient_checkpointing=config.gradient_checkpointing,
            use_cpu=precision.use_cpu,
            bf16=precision.bf16,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=config.seed,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_function(config.reply_prefix),
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
        trainer.train()
        rewards = tuple(float(e["reward"]) for e in trainer.state.log_history if "reward" in e)
        steps = trainer.state.global_step
        manifest = {
            "kind": "grm-studio-rl",
            "base_model": base,
            "dataset": dataset,
            "prompts": len(prompts),
            "steps": steps,
            "rewards": rewards,
            "config": config.model_dump(mode="json"),
        }
        with staged_directory(out_dir) as staging:
            cast("PreTrainedModel", trainer.model).save_pretrained(staging)  # the policy it trained
            tokenizer.save_pretrained(staging)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
            content_hash = checkpoint_sha256(staging)
    # a judge_model row with the revision the transformers backend gives this
    # directory (so judging with it lands on the same row), and its provenance
    model_id, _revision = register_trained_judge(
        engine, out_dir, name=name, parent=parent, export_id=None,
        method="grpo", weights_sha256=content_hash, params=config.model_dump(mode="json"),
        metrics={"steps": steps, "rewards": list(rewards), "prompts": len(prompts),
                 "dataset": dataset},
        created_by=None,
    )
    return RLModelInfo(
        judge_model_id=model_id,
        path=out_dir,
        content_hash=content_hash,
        base_model=base,
        prompts=len(prompts),
        steps=steps,
        rewards=rewards,
    )


def _chat_prompt(tokenizer: Any, text: str) -> str:
    """`text` as the user turn of the model's chat format, the reply about to start
    (as the transformers backend sends it to the model)."""
    if not tokenizer.chat_template:
        return text
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
    )

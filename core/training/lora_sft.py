"""Supervised LoRA fine-tuning sized for a CPU: the cold start of the studio's judge.

    config = LoraSFTConfig(max_examples=900)
    result = LoraSFTTrainer(config, base_dir, work_dir).train(records, on_progress=print)

Why not TRL's SFTTrainer here (the RFT trainer uses it): on 2 CPU cores the
step is compute-bound (~150 tokens/s for SmolLM2-135M), and three things that
TRL does not do measured worth having:

- **logits for the completion only** (`logits_to_keep`): left-padded rows end
  together, so the last positions hold every completion; the 49k-word output
  layer is not run over the ~400-token prompt (~1.4x the tokens/s);
- **length-bucketed batches** under a token budget, so a batch pads little;
- **a checkpoint every few steps** (adapter, optimizer, step) written atomically,
  from which a killed run continues where it stopped, with the same batch order.

The result is a PEFT adapter directory (`adapter_config.json`,
`adapter_model.safetensors`) that `core.backends.adapter` merges into the base
at load time. torch and peft are imported inside the trainer only.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InputError
from core.files import staged_directory


class LoraSFTConfig(BaseModel):
    """How the LoRA adapter is trained; recorded with the adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the LoRA input")
    learning_rate: float = Field(3e-4, gt=0, description="peak learning rate (AdamW)")
    warmup_steps: int = Field(8, ge=0, description="linear warm-up steps, then linear decay")
    epochs: int = Field(1, ge=1, description="passes over the records")
    max_examples: int | None = Field(None, ge=1, description="train on the first N records")
    batch_tokens: int = Field(4096, ge=16, description="padded tokens per optimizer step")
    max_length: int = Field(1280, ge=64, description="longer records are skipped")
    checkpoint_every: int = Field(10, ge=1, description="optimizer steps between checkpoints")
    seed: int = Field(0, ge=0, description="batch order and LoRA initialisation")


@dataclass(frozen=True)
class Record:
    """One tokenised example: prompt ids (no loss) then completion ids (loss)."""

    prompt: tuple[int, ...]
    completion: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.prompt) + len(self.completion)


@dataclass(frozen=True)
class SFTResult:
    adapter_dir: Path
    steps: int
    examples: int
    seconds: float
    examples_per_second: float
    final_loss: float
    log: list[dict[str, float]]


ProgressFn = Callable[[dict[str, float]], None]
CHECKPOINT = "checkpoint"


def tokenize(tokenizer: Any, messages: Sequence[dict[str, str]]) -> Record:
    """Prompt ids exactly as the judge's backend builds them (chat template with the
    assistant turn opened), then the reply and the end-of-turn token."""
    prompt = tokenizer.apply_chat_template(
        [dict(m) for m in messages[:-1]], add_generation_prompt=True, tokenize=True)
    prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
    reply = tokenizer.encode(messages[-1]["content"], add_special_tokens=False)
    return Record(tuple(prompt), (*reply, tokenizer.eos_token_id))


def bucketed_batches(lengths: Sequence[int], batch_tokens: int, seed: int) -> list[list[int]]:
    """Indices grouped by length so that (rows x longest) <= batch_tokens, in a seeded
    random order of batches (each batch holds records of similar length)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    random.Random(seed).shuffle(batches)
    return batches


class LoraSFTTrainer:
    """Trains a LoRA adapter on `base_dir`; scratch and checkpoints under `work_dir`."""

    def __init__(self, config: LoraSFTConfig, base_dir: Path, work_dir: Path, *,
                 init_adapter: Path | None = None, bf16: bool = False) -> None:
        """`init_adapter`: an adapter (same rank and scaling) to continue training from,
        e.g. the cold start's for an RFT round; the result is again one adapter on
        `base_dir`. `bf16`: forward and backward in bfloat16 autocast, weights and
        optimizer in float32 (`core.training.precision`'s rule decides; a property of
        the machine, not of the recipe, so a checkpoint resumes on either)."""
        self.config = config
        self.base_dir = base_dir
        self.work_dir = work_dir
        self.init_adapter = init_adapter
        self.bf16 = bf16

    def train(
        self, examples: Sequence[Sequence[dict[str, str]]], output: Path, *,
        on_progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None,
    ) -> SFTResult:
        """Train on chat `examples` (the last message is the reply) and write the adapter
        to `output`; continues from `work_dir`'s checkpoint if one is there."""
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config = self.config
        torch.manual_seed(config.seed)
        tokenizer = AutoTokenizer.from_pretrained(str(self.base_dir))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        chosen = list(examples)[: config.max_examples]
        records = [r for r in (tokenize(tokenizer, m) for m in chosen) if len(r) <= config.max_length]
        if not records:
            raise InputError(f"no training record fits in {config.max_length} tokens")
        lengths = [len(r) for r in records]
        schedule = [batch for epoch in range(config.epochs)
                    for batch in bucketed_batches(lengths, config.batch_tokens, config.seed + epoch)]
        base = AutoModelForCausalLM.from_pretrained(str(self.base_dir), dtype=torch.float32)
        model = get_peft_model(base, LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules="all-linear", task_type="CAUSAL_LM"))
        if self.init_adapter is not None:
            self._start_from(model, self.init_adapter)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
        total = len(schedule)

        def lr_at(step: int) -> float:
            if step < config.warmup_steps:
                return (step + 1) / (config.warmup_steps + 1)
            return max(0.0, (total - step) / max(1, total - config.warmup_steps))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
        start, log, seconds = self._resume(model, optimizer, scheduler)
        model.train()
        done_examples = sum(len(schedule[s]) for s in range(start))
        for step in range(start, total):
            if should_stop is not None and should_stop():
                break
            began = time.perf_counter()
            rows = [records[i] for i in schedule[step]]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = _step_loss(model, rows, pad)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            took = time.perf_counter() - began
            seconds += took
            done_examples += len(rows)
            entry = {"step": step + 1, "steps": total, "loss": float(loss.detach()),
                     "lr": float(scheduler.get_last_lr()[0]), "examples": done_examples,
                     "examples_per_s": len(rows) / took,
                     "tokens_per_s": sum(len(r) for r in rows) / took}
            log.append(entry)
            if on_progress is not None:
                on_progress(entry)
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == total:
                self._checkpoint(model, optimizer, scheduler, step + 1, log, seconds)
        steps = log[-1]["step"] if log else 0
        if steps < total:
            raise InputError(f"training stopped at step {int(steps)} of {total}; run it again "
                             "to continue from the last checkpoint")
        with staged_directory(output) as staging:
            model.save_pretrained(str(staging), safe_serialization=True)
            (staging / "TRAINING.json").write_text(json.dumps(
                {"config": config.model_dump(mode="json"), "steps": total,
                 "init_adapter": str(self.init_adapter) if self.init_adapter else None,
                 "examples": done_examples, "records": len(records), "seconds": seconds,
                 "bf16": self.bf16, "log": log}, indent=1) + "\n")
        tail = log[-max(1, total // 10):]
        return SFTResult(output, total, done_examples, seconds,
                         done_examples / seconds if seconds else math.nan,
                         sum(e["loss"] for e in tail) / len(tail), log)

    # -- checkpoints ---------------------------------------------------------------

    def _checkpoint(self, model: Any, optimizer: Any, scheduler: Any, step: int,
                    log: list[dict[str, float]], seconds: float) -> None:
        import torch

        target = self.work_dir / CHECKPOINT
        if target.exists():
            target.rename(self.work_dir / f"{CHECKPOINT}.old")
        with staged_directory(target) as staging:
            model.save_pretrained(staging, safe_serialization=True)
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                       staging / "optimizer.pt")
            (staging / "state.json").write_text(json.dumps(
                {"step": step, "seconds": seconds, "log": log,
                 "config": self.config.model_dump(mode="json")}))
        old = self.work_dir / f"{CHECKPOINT}.old"
        if old.exists():
            import shutil

            shutil.rmtree(old)

    def _start_from(self, model: Any, adapter: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        trained = json.loads((adapter / "adapter_config.json").read_text())
        if (trained["r"], trained["lora_alpha"]) != (self.config.lora_r, self.config.lora_alpha):
            raise InputError(
                f"{adapter} has rank {trained['r']} and alpha {trained['lora_alpha']}; "
                f"this run trains rank {self.config.lora_r}, alpha {self.config.lora_alpha}")
        result: Any = set_peft_model_state_dict(
            model, load_file(str(adapter / "adapter_model.safetensors")))
        missing = [k for k in result.missing_keys if "lora_" in k]
        if missing:
            raise InputError(f"{adapter} does not fit this model: {len(missing)} LoRA weights "
                             f"missing (e.g. {missing[0]})")

    def _resume(self, model: Any, optimizer: Any, scheduler: Any
                ) -> tuple[int, list[dict[str, float]], float]:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        found = self.work_dir / CHECKPOINT
        if not found.exists() and (self.work_dir / f"{CHECKPOINT}.old").exists():
            found = self.work_dir / f"{CHECKPOINT}.old"  # killed between the two renames
        if not (found / "state.json").exists():
            return 0, [], 0.0
        state = json.loads((found / "state.json").read_text())
        if state["config"] != self.config.model_dump(mode="json"):
            raise InputError(f"{found} was written with another configuration; remove it "
                             "or train with the same settings")
        set_peft_model_state_dict(model, load_file(str(found / "adapter_model.safetensors")))
        saved = torch.load(found / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        return int(state["step"]), list(state["log"]), float(state["seconds"])


def _step_loss(model: Any, rows: Sequence[Record], pad: int) -> Any:
    """Mean next-token loss over the completions of left-padded rows."""
    import torch

    width = max(len(r) for r in rows)
    keep = max(len(r.completion) for r in rows) + 1
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), keep), -100, dtype=torch.long)
    for j, r in enumerate(rows):
        seq = torch.tensor([*r.prompt, *r.completion])
        ids[j, width - len(seq):] = seq
        mask[j, width - len(seq):] = 1
        # the logit at position t predicts token t+1; the kept window is the last `keep`
        labels[j, keep - len(r.completion) - 1: keep - 1] = torch.tensor(r.completion)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                   logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)

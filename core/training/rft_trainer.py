"""Rejective fine-tuning of the judge on an RFT export (TRL's SFTTrainer).

    trained = train_rft(engine, find_export(engine, "llmbar-rft", root), RFTTrainConfig(), settings)

Each record's chat `messages` become a prompt (the user turn) and a
completion (the assistant turn), and the loss is on the completion only.
Full fine-tuning, or LoRA adapters (peft) merged into the weights at the end
so that the checkpoint is a plain model directory. The run writes under a
`.partial-*` directory and renames the finished checkpoint (safetensors,
tokenizer, TRAINING.json) into place, then registers it as a judge model: an
interrupted or stopped run leaves nothing that looks complete. The same code
runs on a GPU, and under `accelerate launch` (only the main process saves and
registers).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from core.backends.embedded import embedded_gguf_path
from core.backends.gguf_cache import materialise_gguf
from core.backends.studio_judge import STUDIO_JUDGE, studio_judge_dir, studio_judge_info
from core.config import Settings
from core.errors import GRMStudioError, InputError
from core.files import checkpoint_sha256, file_sha256, staged_directory
from core.training.outputs import new_output_dir, run_name
from core.training.precision import training_precision
from core.training.registry import register_trained_judge
from core.training.rft_export import ExportInfo
from core.types import ModelInfo

if TYPE_CHECKING:  # heavy: imported where training runs
    from peft import PeftModel
    from transformers import PreTrainedModel


FULL_LR, LORA_LR = 1e-5, 2e-4  # learning rates when the config gives none
PROVENANCE = "TRAINING.json"  # `weights_sha256` = checkpoint_sha256(dir, exclude=[PROVENANCE])


class TrainingStopped(GRMStudioError):
    """Training was stopped before it finished; nothing was saved or registered."""


class RFTTrainConfig(BaseModel):
    """How the judge is fine-tuned; recorded with the checkpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(None, description="checkpoint and judge name; default from the export")
    base_model: str | None = Field(
        None, description="model to fine-tune: 'embedded', a directory or .gguf; default: the "
        "export's judge"
    )
    lora: bool = Field(False, description="train LoRA adapters (peft), merged at the end")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling")
    epochs: float = Field(1.0, gt=0, description="passes over the training records")
    max_steps: int = Field(-1, ge=-1, description="optimizer steps; -1: from epochs")
    learning_rate: float | None = Field(
        None, gt=0, description=f"optimizer learning rate; none: {FULL_LR:.0e} full, {LORA_LR:.0e} LoRA"
    )
    batch_size: int = Field(1, ge=1, description="records per device per step")
    grad_accum: int = Field(4, ge=1, description="steps accumulated per optimizer update")
    max_length: int | None = Field(2048, ge=16, description="tokens per record (prompt + reply)")
    include_hinted: bool = Field(True, description="train on hinted.jsonl too")
    seed: int = Field(0, ge=0, description="seeds the run (data order, LoRA's initial weights)")
    evaluate: bool = Field(True, description="loss on validation.jsonl after training")

    @property
    def method(self) -> str:
        return "rft-lora" if self.lora else "rft"

    @property
    def lr(self) -> float:
        return self.learning_rate or (LORA_LR if self.lora else FULL_LR)


@dataclass(frozen=True)
class TrainedJudge:
    judge_model_id: int | None  # None on a non-main process
    name: str
    path: Path
    revision: str
    weights_sha256: str
    method: str
    metrics: dict[str, Any]


ProgressFn = Callable[[int, int, dict[str, float]], None]  # (step, max_steps, latest logs)


def resolve_model_dir(model: str, cache_dir: Path) -> tuple[Path, ModelInfo]:
    """A transformers directory for `model` ('studio', 'embedded', a directory or a .gguf file),
    and the `ModelInfo` a backend loading it reports (so stored rows match)."""
    from core.backends.hf import directory_revision

    if model == STUDIO_JUDGE:  # known by its adapter, not by its cached merge
        return studio_judge_dir(cache_dir), studio_judge_info()
    source = embedded_gguf_path() if model == "embedded" else Path(model).expanduser().resolve()
    if source.is_file() and source.suffix == ".gguf":
        revision = file_sha256(source)
        info = ModelInfo(name=source.stem, backend="transformers", source=str(source),
                         revision=revision)
        return materialise_gguf(source, cache_dir, revision), info
    if (source / "config.json").is_file():
        info = ModelInfo(name=source.name, backend="transformers", source=str(source),
                         revision=directory_revision(source))
        return source, info
    raise InputError(
        f"cannot train '{model}': give 'studio', 'embedded', a model directory or a .gguf file")


def chat_pairs(path: Path) -> list[dict[str, Any]]:
    """The export file's records as prompt / completion conversations."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return rows


def train_rft(
    engine: Engine,
    export: ExportInfo,
    config: RFTTrainConfig,
    settings: Settings,
    *,
    created_by: str | None = None,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedJudge:
    """Fine-tune the judge on `export`, save the checkpoint and register it."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    base = config.base_model or export.card["judge"]["source"]
    base_dir, base_info = resolve_model_dir(base, settings.cache_dir)
    train_rows = chat_pairs(export.path / "train.jsonl")
    if config.include_hinted:
        train_rows += chat_pairs(export.path / "hinted.jsonl")
    if not train_rows:
        raise InputError(f"export {export.ref} has no training records; build a bigger one")
    eval_rows = chat_pairs(export.path / "validation.jsonl") if config.evaluate else []

    name = config.name or run_name(f"{export.name}-v{export.version}-{config.method}")
    target = new_output_dir(settings, "rft", name)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the trainer's scratch files; the checkpoint is staged on its own (core.files)
    with tempfile.TemporaryDirectory(prefix=f".partial-{name}-", dir=target.parent,
                                     ignore_cleanup_errors=True) as scratch:
        precision = training_precision(settings)
        args = SFTConfig(
            output_dir=str(Path(scratch) / "run"),
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.lr,
            lr_scheduler_type="constant_with_warmup" if config.max_steps > 0 else "linear",
            logging_steps=1,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            max_length=config.max_length,
            completion_only_loss=True,
            seed=config.seed,
            bf16=precision.bf16,
            use_cpu=precision.use_cpu,
            dataloader_num_workers=0,
        )
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
            processing_class=tokenizer,
            peft_config=_lora(config) if config.lora else None,
            callbacks=[_progress_callback(on_progress, should_stop)],
        )
        result = trainer.train()
        if trainer.state.global_step < trainer.state.max_steps and should_stop and should_stop():
            raise TrainingStopped(f"training stopped at step {trainer.state.global_step}")
        metrics: dict[str, Any] = {"train_loss": result.training_loss,
                                   "steps": trainer.state.global_step,
                                   "train_records": len(train_rows)}
        if eval_rows:
            metrics["eval_loss"] = trainer.evaluate()["eval_loss"]
            metrics["eval_records"] = len(eval_rows)
        metrics["log"] = [e for e in trainer.state.log_history if "loss" in e]
        if not trainer.accelerator.is_main_process:
            trainer.accelerator.wait_for_everyone()
            return TrainedJudge(None, name, target, "", "", config.method, metrics)
        # the model it trained (typed "a module or None" by transformers): with LoRA a
        # PeftModel, merged back into the base weights here
        trained = (cast("PeftModel", trainer.model).merge_and_unload() if config.lora
                   else cast("PreTrainedModel", trainer.model))
        with staged_directory(target) as checkpoint:
            trained.save_pretrained(checkpoint, safe_serialization=True)
            tokenizer.padding_side = "left"
            tokenizer.save_pretrained(checkpoint)
            weights = checkpoint_sha256(checkpoint)  # before PROVENANCE, which records it
            provenance = {"name": name, "method": config.method, "base": base_info.model_dump(),
                          "export": {"id": export.id, "ref": export.ref,
                                     "content_sha256": export.content_sha256},
                          "config": config.model_dump(mode="json"), "metrics": metrics,
                          "weights_sha256": weights, "created_by": created_by}
            (checkpoint / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
        trainer.accelerator.wait_for_everyone()
    judge_id, revision = register_trained_judge(
        engine, target, name=name, parent=base_info, export_id=export.id, method=config.method,
        weights_sha256=weights, params=config.model_dump(mode="json"), metrics=metrics,
        created_by=created_by,
    )
    return TrainedJudge(judge_id, name, target, revision, weights, config.method, metrics)


def _lora(config: RFTTrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.05,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _progress_callback(on_progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Reports each logged step and stops the run when asked."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if on_progress is not None and logs:
                numbers = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
                on_progress(state.global_step, state.max_steps, numbers)

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> Any:
            if should_stop is not None and should_stop():
                control.should_training_stop = True
            return control

    return Progress()

"""Turning labels into a better judge (Self-Principled Critique Tuning,
grm-method.md §4): rejective fine-tuning here (`build_rft`, `write_export`,
`train_rft`; `core.service.export_rft` judges a dataset into an export); the meta
reward model in `core.training.meta_rm`; rule-based
RL in `core.training.rl`. Each trainer is a config (a frozen pydantic model,
every field described: the command line and the Training tab are derived from
it) and a train function; they share one checkpoint hash
(`core.files.checkpoint_sha256`), one precision rule
(`core.training.precision`) and one output-directory rule
(`core.training.outputs`).

    build = build_rft(judge, labelled_items(engine, "llmbar").items, RFTConfig(), params)
    export = core.service.export_rft(engine, judge, "llmbar", name="llmbar-rft", root=...)
    trained = train_rft(engine, export, RFTTrainConfig(max_steps=50), settings)

torch, transformers, TRL and peft are imported inside the trainer only.
"""

from core.training.labelled import LabelledItem, LabelledSet, labelled_items
from core.training.outputs import exports_dir, new_output_dir, output_dir
from core.training.precision import TrainingPrecision, training_precision
from core.training.registry import JudgeModelEntry, list_judge_models, register_trained_judge
from core.training.rft_data import RFTBuild, RFTConfig, Trajectory, build_rft, split_of
from core.training.rft_export import (
    ExportError,
    ExportInfo,
    find_export,
    list_exports,
    read_export,
    write_export,
)
from core.training.rft_trainer import (
    RFTTrainConfig,
    TrainedJudge,
    TrainingStopped,
    resolve_model_dir,
    train_rft,
)

__all__ = [
    "ExportError",
    "ExportInfo",
    "JudgeModelEntry",
    "LabelledItem",
    "LabelledSet",
    "RFTBuild",
    "RFTConfig",
    "RFTTrainConfig",
    "TrainedJudge",
    "TrainingPrecision",
    "TrainingStopped",
    "Trajectory",
    "build_rft",
    "exports_dir",
    "find_export",
    "labelled_items",
    "list_exports",
    "list_judge_models",
    "new_output_dir",
    "output_dir",
    "read_export",
    "register_trained_judge",
    "resolve_model_dir",
    "split_of",
    "train_rft",
    "training_precision",
    "write_export",
]

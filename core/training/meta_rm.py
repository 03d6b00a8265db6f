"""The meta reward model (grm-method.md §3): a scalar classifier that reads one
sampled judgement (query, responses, the sample's principles, critique and
scores) and gives the probability that the sample is correct.

    info = train_meta_rm(engine, settings, MetaTrainConfig(), name="meta-1")
    meta = MetaRewardModel.load(info.path)
    meta.score(judgement.input, judgement.samples)   # one probability per sample

A sequence-classification head (one logit) on a small causal LM (default: the
embedded SmolLM2), trained with binary cross-entropy on every stored sample
of the labelled items (see `core.training.meta_data`), positives weighted by
negatives / positives so that an unbalanced store does not teach it one
answer. The model is saved under `<data_dir>/meta-models/<name>` (or a given
directory; `core.training.outputs`) through a staging directory renamed into
place, with a manifest `meta_rm.json` written last, and is then registered in
the store's `meta_model` table under its `core.files.checkpoint_sha256`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from core.config import Settings
from core.errors import BackendError, InputError
from core.files import checkpoint_sha256, staged_directory
from core.store.meta_scores import register_meta_model
from core.training.meta_base import resolve_model_dir
from core.training.meta_data import MetaTrainingSet, meta_input_text, meta_training_set
from core.training.outputs import new_output_dir
from core.training.precision import training_precision
from core.types import JudgeInput, Judgement, Sample

MANIFEST = "meta_rm.json"
KIND = "grm-studio-meta-rm"


class MetaTrainConfig(BaseModel):
    """How the meta RM is trained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(1, ge=1, description="passes over the examples (max_steps stops earlier)")
    max_steps: int | None = Field(None, ge=1, description="optimiser steps at most; none: the epochs")
    batch_size: int = Field(8, ge=1, description="examples per optimiser step")
    learning_rate: float = Field(2e-5, ge=0.0, description="AdamW learning rate")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay")
    max_length: int = Field(
        1024, ge=16, description="tokens per example; the start is cut, the scores kept"
    )
    trainable_layers: int | None = Field(
        None, ge=0, description="train only the last N blocks and the head; none: all"
    )
    seed: int = Field(0, ge=0, description="seeds the new head's weights and the batch order")


@dataclass(frozen=True)
class MetaModelInfo:
    """A trained, saved and registered meta RM."""

    id: int  # row id in the store's meta_model table
    name: str
    path: Path
    base_model: str
    content_hash: str
    positives: int
    negatives: int
    steps: int
    losses: tuple[float, ...]  # training loss per step


def default_meta_name(dataset: str | None) -> str:
    """The name of a meta RM trained on `dataset`'s samples (None: all) when none is given."""
    return f"meta-{dataset or 'all'}"


def train_meta_rm(
    engine: Engine,
    settings: Settings,
    config: MetaTrainConfig | None = None,
    *,
    dataset: str | None = None,
    base_model: str | Path | None = None,
    name: str | None = None,
    out_dir: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> MetaModelInfo:
    """Train a meta RM on the stored samples of `dataset` (all by default), save it
    and register it as `name` (default: the directory's name, else
    `default_meta_name(dataset)`). It is saved at `out_dir` if given, else under
    `<data_dir>/meta-models/<name>`; either must not exist. `base_model` defaults
    to `settings.model`; `on_step(step, loss)` is called after every step."""
    import torch

    config = config or MetaTrainConfig()
    name = name or (out_dir.name if out_dir is not None else default_meta_name(dataset))
    out_dir = new_output_dir(settings, "meta-rm", name, out_dir)
    data = meta_training_set(engine, dataset)
    if not data.positives or not data.negatives:
        raise InputError(
            f"the meta RM needs correct and incorrect samples; the store has "
            f"{data.positives} correct and {data.negatives} incorrect judged samples of "
            f"labelled items{' in ' + repr(dataset) if dataset else ''}: judge more labelled items"
        )
    base = str(base_model or settings.model)
    torch.manual_seed(config.seed)  # the new head's initial weights
    model, tokenizer = _load_base(resolve_model_dir(base, settings.cache_dir))
    precision = training_precision(settings)
    model.to(precision.device)
    if config.trainable_layers is not None:
        _freeze_all_but_last(model, config.trainable_layers)
    losses = _fit(model, tokenizer, data, config, on_step, bf16=precision.bf16)
    model.eval()
    manifest = {
        "kind": KIND,
        "base_model": base,
        "dataset": dataset,
        "positives": data.positives,
        "negatives": data.negatives,
        "max_length": config.max_length,
        "steps": len(losses),
        "losses": losses,
    }
    with staged_directory(out_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))  # last: marks complete
        content_hash = checkpoint_sha256(staging)
    model_id = register_meta_model(
        engine,
        name=name,
        source=str(out_dir),
        base_model=base,
        content_hash=content_hash,
        positives=data.positives,
        negatives=data.negatives,
    )
    return MetaModelInfo(
        id=model_id,
        name=name,
        path=out_dir,
        base_model=base,
        content_hash=content_hash,
        positives=data.positives,
        negatives=data.negatives,
        steps=len(losses),
        losses=tuple(losses),
    )


class MetaRewardModel:
    """A saved meta RM, loaded for scoring."""

    def __init__(self, model: Any, tokenizer: Any, path: Path, manifest: dict[str, Any]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.path = path
        self.manifest = manifest
        self._registry: tuple[Engine, int] | None = None  # (store, id) once registered

    @property
    def max_length(self) -> int:
        return int(self.manifest["max_length"])

    @classmethod
    def load(cls, path: Path | str, *, device: str = "cpu") -> MetaRewardModel:
        """Load the meta RM saved at `path` (BackendError if it is not one)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path).expanduser().resolve()
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            raise BackendError(
                f"{path} is not a complete meta RM (no readable {MANIFEST}); "
                "train one with `grm-studio meta train`"
            ) from None
        if manifest.get("kind") != KIND:
            raise BackendError(f"{path / MANIFEST} does not describe a GRM Studio meta RM")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModelForSequenceClassification.from_pretrained(str(path)).to(device)
        except (OSError, ValueError) as err:
            raise BackendError(f"could not load the meta RM from {path}: {err}") from err
        _prepare(model, tokenizer)
        model.eval()
        return cls(model, tokenizer, path, manifest)

    def register(self, engine: Engine) -> int:
        """This meta RM's id in the store's registry (registered now if it was
        trained into another store): what its stored scores are marked with."""
        if self._registry is None or self._registry[0] is not engine:
            self._registry = (engine, register_meta_model(
                engine, name=self.path.name, source=str(self.path),
                base_model=str(self.manifest.get("base_model", "")),
                content_hash=checkpoint_sha256(self.path),
                positives=int(self.manifest.get("positives", 0)),
                negatives=int(self.manifest.get("negatives", 0)),
            ))
        return self._registry[1]

    def score(
        self, item: JudgeInput, samples: Sequence[Sample], *, batch_size: int = 8
    ) -> list[float]:
        """The probability that each sample is correct, in the order given."""
        import torch

        texts = [meta_input_text(item, s) for s in samples]
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                encoded = _encode(
                    self.tokenizer, texts[start : start + batch_size], self.max_length,
                    self.model.device,
                )
                logits = self.model(**encoded).logits[:, 0].float()
                scores += torch.sigmoid(logits).tolist()
        return scores


def score_judgement(meta: MetaRewardModel, judgement: Judgement) -> tuple[float, ...]:
    """The meta reward of each sample of `judgement`, in sample order."""
    return tuple(meta.score(judgement.input, judgement.samples))


def _fit(
    model: Any,
    tokenizer: Any,
    data: MetaTrainingSet,
    config: MetaTrainConfig,
    on_step: Callable[[int, float], None] | None,
    *,
    bf16: bool = False,
) -> list[float]:
    """BCE on one logit per example, positives weighted by negatives / positives;
    with `bf16`, the forward pass in bfloat16 autocast (float32 weights)."""
    import torch

    texts = [e.text for e in data.examples]
    labels = [1.0 if e.correct else 0.0 for e in data.examples]
    pos_weight = torch.tensor([data.negatives / data.positives], device=model.device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimiser = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    losses: list[float] = []
    model.train()
    for batch in _batches(len(texts), config):
        encoded = _encode(tokenizer, [texts[i] for i in batch], config.max_length, model.device)
        target = torch.tensor([labels[i] for i in batch], device=model.device)
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(**encoded).logits[:, 0]
        loss = loss_fn(logits.float(), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(len(losses), losses[-1])
    return losses


def _load_base(model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=1)
    _prepare(model, tokenizer)
    return model, tokenizer


def _freeze_all_but_last(model: Any, n: int) -> None:
    """Train only the last `n` transformer blocks, the final norm and the head."""
    backbone = model.base_model
    layers = getattr(backbone, "layers", None)
    if layers is None or not 0 <= n <= len(layers):
        raise InputError(
            f"trainable_layers={n}: the base model has "
            f"{'no list of layers' if layers is None else f'{len(layers)} layers'}"
        )
    model.requires_grad_(False)
    for module in [*list(layers)[len(layers) - n :], getattr(backbone, "norm", None)]:
        if module is not None:
            module.requires_grad_(True)
    prefix = model.base_model_prefix + "."
    for name, parameter in model.named_parameters():
        if not name.startswith(prefix):  # the classification head
            parameter.requires_grad_(True)


def _prepare(model: Any, tokenizer: Any) -> None:
    """Pad on the right with a pad token the model knows, so that the head reads
    the last real token; truncate on the left, so that the scores stay."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"
    model.config.pad_token_id = tokenizer.pad_token_id


def _encode(tokenizer: Any, texts: list[str], max_length: int, device: Any) -> Any:
    return tokenizer(
        texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    ).to(device)


def _batches(n: int, config: MetaTrainConfig) -> list[list[int]]:
    """Shuffled batches of example indices, one epoch after another."""
    rng = random.Random(config.seed)
    batches = []
    for _ in range(config.epochs):
        order = list(range(n))
        rng.shuffle(order)
        batches += [order[i : i + config.batch_size] for i in range(0, n, config.batch_size)]
    return batches[: config.max_steps] if config.max_steps is not None else batches

"""The base model directory, shared by the meta RM and RL trainers (their output
directories are named by `core.training.outputs`, written with
`core.files.staged_directory` and hashed with `core.files.checkpoint_sha256`)."""

from __future__ import annotations

from pathlib import Path


def resolve_model_dir(spec: str | Path, cache_dir: Path) -> Path:
    """A transformers model directory for `spec`: 'embedded' (the SmolLM2 GGUF,
    materialised once into `cache_dir`), a `.gguf` file, or a model directory."""
    from core.training.rft_trainer import resolve_model_dir as resolve_with_info

    return resolve_with_info(str(spec), cache_dir)[0]

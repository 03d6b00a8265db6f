"""Base models and content hashes, shared by the meta RM and RL trainers (their
output directories are written with `core.files.staged_directory`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def resolve_model_dir(spec: str | Path, cache_dir: Path) -> Path:
    """A transformers model directory for `spec`: 'embedded' (the SmolLM2 GGUF,
    materialised once into `cache_dir`), a `.gguf` file, or a model directory."""
    from core.training.rft_trainer import resolve_model_dir as resolve_with_info

    return resolve_with_info(str(spec), cache_dir)[0]


def directory_sha256(path: Path) -> str:
    """SHA-256 over every file of `path` (relative names and contents, sorted)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


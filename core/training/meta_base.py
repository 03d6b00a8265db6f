"""Base models and output directories, shared by the meta RM and RL trainers.

A trained model is written with `core.files.staged_directory`: whatever sits
at `out_dir` is complete.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.errors import InputError

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


def check_free(out_dir: Path) -> Path:
    """`out_dir` resolved; InputError if something is already there."""
    out_dir = out_dir.expanduser().resolve()
    if out_dir.exists():
        raise InputError(f"{out_dir} already exists; choose a new output directory")
    return out_dir

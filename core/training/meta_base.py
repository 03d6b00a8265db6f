"""Base models and output directories, shared by the meta RM and RL trainers.

A trained model is written into a hidden staging directory next to its
destination and renamed into place only once every file is written, so an
interrupted run never leaves a directory under the requested name: whatever
sits at `out_dir` is complete. Staging directories are removed on any error
(a killed process may leave one, named `.partial-*`, never `out_dir`).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """Yield an empty staging directory; on a clean exit rename it to `out_dir`."""
    out_dir = check_free(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{out_dir.name}-", dir=out_dir.parent))
    try:
        yield staging
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

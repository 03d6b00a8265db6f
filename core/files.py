"""File helpers shared by the store, exports, training and model loading.

Whatever is written under a name a reader trusts (a file, an export, a
checkpoint) is written under a temporary name beside it and renamed into place
once complete, so an interrupted write never leaves something that looks
complete: `atomic_write` for a file, `staged_directory` for a directory (a
killed process may leave a hidden `.partial-*` one, never the real name).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from core.errors import InputError


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_sha256(directory: Path, *, exclude: Collection[str] = ()) -> str:
    """The content hash of a saved checkpoint, the one every trainer records:
    SHA-256 over every file under `directory` (its relative name, then its
    contents, in sorted order), leaving out the top-level names in `exclude` (a
    manifest written after the hash because it records it)."""
    digest = hashlib.sha256()
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for file in files:
        name = file.relative_to(directory).as_posix()
        if name in exclude:
            continue
        digest.update(name.encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temporary file beside `path` and rename it into place on
    success, so that an interrupted write never leaves a file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def check_free(out_dir: Path) -> Path:
    """`out_dir` resolved; InputError if something is already there."""
    out_dir = out_dir.expanduser().resolve()
    if out_dir.exists():
        raise InputError(f"{out_dir} already exists; choose a new output directory")
    return out_dir


@contextmanager
def staged_directory(target: Path, *, race_ok: bool = False) -> Iterator[Path]:
    """Yield an empty directory beside `target`; on a clean exit it is renamed to
    `target`, otherwise removed. InputError if `target` exists already. With
    `race_ok`, another process that built the same `target` first wins: its
    directory is kept and this one dropped."""
    target = target.expanduser().resolve() if race_ok else check_free(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{target.name}-", dir=target.parent))
    try:
        yield staging
        try:
            staging.rename(target)
        except OSError:
            if not (race_ok and target.is_dir()):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)

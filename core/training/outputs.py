"""Where trained things are saved: one rule for every trainer and every front.

    target = new_output_dir(settings, "rft", "llmbar-v1-rft-20260101-120000")
    # <data_dir>/judges/llmbar-v1-rft-20260101-120000, InputError if it exists

A trained judge (RFT, RL) is saved under `<data_dir>/judges/<name>`, a meta
reward model under `<data_dir>/meta-models/<name>`, RFT exports under
`<data_dir>/rft-exports`. A command line that is given an explicit directory
saves there instead (`new_output_dir(..., out_dir=...)`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from core.config import Settings
from core.errors import InputError
from core.files import check_free

OutputKind = Literal["rft", "rl", "meta-rm"]
SUBDIRS: dict[OutputKind, str] = {"rft": "judges", "rl": "judges", "meta-rm": "meta-models"}
EXPORTS = "rft-exports"


def output_dir(settings: Settings, kind: OutputKind, name: str) -> Path:
    """The directory a `kind` trainer saves the checkpoint `name` in (resolved).
    InputError if `name` is not a plain file name."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise InputError(f"'{name}' cannot name a checkpoint: use a plain name, no '/'")
    return (settings.data_dir / SUBDIRS[kind] / name).expanduser().resolve()


def new_output_dir(
    settings: Settings, kind: OutputKind, name: str, out_dir: Path | None = None
) -> Path:
    """Where a new checkpoint goes: `out_dir` if given, else `output_dir(...)`.
    InputError if something is there already."""
    if out_dir is not None:
        return check_free(out_dir)
    target = output_dir(settings, kind, name)
    if target.exists():
        raise InputError(f"{target} exists already; choose another name")
    return target


def exports_dir(data_dir: Path) -> Path:
    """The root of the versioned RFT exports."""
    return data_dir / EXPORTS


def run_name(stem: str) -> str:
    """A default checkpoint name: `stem` and the UTC time, e.g. 'x-rft-20260101-120000'."""
    return f"{stem}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"

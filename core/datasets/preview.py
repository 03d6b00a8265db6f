"""A look at a dataset file before importing it: its first records, the format or
mapping it would be read with, and the first items that reading gives.

Fronts show this so a user can check or change the mapping (the web app's
mapping panel); nothing is stored. A file that cannot be read as chosen gives
a preview with the reason (and, for an unknown shape, a likely mapping whose
items are shown instead), never an exception, except when the file itself
cannot be opened (InputError).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from core.datasets import (
    FieldMap,
    ReadLimits,
    Skipped,
    SourceItem,
    UnknownShapeError,
    detected_format,
    read_dataset,
)
from core.datasets.fields import RawRecord
from core.datasets.presets import format_named, is_partial
from core.datasets.sources import read_raw
from core.errors import InputError

SHOWN_RECORDS = 3


@dataclass(frozen=True)
class ImportPreview:
    """What importing a file would read; see the module docstring."""

    fields: tuple[str, ...]
    """The first record's field names, in file order."""
    records: tuple[Any, ...]
    """The first few records as read (objects, for display)."""
    format: str | None
    """The shape or preset the records are read as; "mapping" for a user's map; None: unknown."""
    mapping: FieldMap | None
    """The map the items were read with: the user's, the preset's, or a suggestion."""
    items: tuple[SourceItem | Skipped, ...]
    """The first few converted items (or why each record was skipped)."""
    problem: str | None
    """Why the file cannot be read as chosen; None when it can."""


def preview_file(
    path: Path,
    shape: str | None = None,
    mapping: FieldMap | None = None,
    limits: ReadLimits | None = None,
    n: int = SHOWN_RECORDS,
) -> ImportPreview:
    """The preview of importing `path` as `shape` and/or with `mapping`."""
    records = _first_records(path, limits, n)
    fields = tuple(str(k) for k in records[0]) if records and isinstance(records[0], dict) else ()
    try:
        name = _format_name(path, shape, mapping, limits)
        items = tuple(islice(read_dataset(path, shape, limits, mapping), n))
    except UnknownShapeError as err:
        suggestion = err.suggestion
        items = ()
        if suggestion is not None:
            try:
                items = tuple(islice(read_dataset(path, None, limits, suggestion), n))
            except InputError:
                items = ()
        return ImportPreview(fields, records, None, suggestion, items, str(err))
    except InputError as err:
        return ImportPreview(fields, records, None, mapping, (), str(err))
    return ImportPreview(fields, records, name, _map_used(name, mapping), items, None)


def _first_records(path: Path, limits: ReadLimits | None, n: int) -> tuple[Any, ...]:
    raw = read_raw(path, limits)
    try:
        return tuple(r.data for r in islice(
            (r for r in raw if isinstance(r, RawRecord)), n))
    finally:
        raw.close()


def _format_name(
    path: Path, shape: str | None, mapping: FieldMap | None, limits: ReadLimits | None
) -> str:
    if mapping is not None and shape is None and not is_partial(mapping):
        return "mapping"
    name = shape if shape is not None else detected_format(path, limits)
    return name if mapping is None else f"{name} with mapping"


def _map_used(name: str, mapping: FieldMap | None) -> FieldMap | None:
    base = name.removesuffix(" with mapping")
    if base == "mapping":
        return mapping
    preset_map = format_named(base).field_map
    if preset_map is None:
        return mapping
    return preset_map if mapping is None else preset_map.updated(mapping)

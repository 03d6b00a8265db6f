"""Importing a preference-data file into a dataset, in one transaction.

The file is streamed record by record (`core.datasets.read_dataset`, within
its `ReadLimits`) and written in chunks; a failure anywhere rolls the whole
import back, so nothing is ever half-imported. An import that would add
nothing (every record skipped) is a failure too: it raises InputError and
leaves no dataset and no import record behind, so the same file can be
imported again with another shape. Re-importing the same file (same SHA-256)
into the same dataset does nothing. A record whose item is already present
(same content hash) makes no new item: another judge's label on it is added
(`more_labels`: MT-Bench's several human judges of one pair), a record that
adds nothing is a duplicate, and a judge's second, different label on the same
item is skipped with that reason (`core.store.import_writer`). Memory stays
bounded: items are written and looked up a chunk at a time, and a report lists
`MAX_SKIPS_KEPT` skipped records (in file order) and counts the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.datasets import FieldMap, ReadLimits, read_dataset
from core.datasets.columnar import source_sha256
from core.datasets.records import Skipped
from core.errors import InputError
from core.store.import_writer import ItemWriter
from core.store.schema import Dataset, ImportRun

CHUNK = 500  # distinct items written at a time
MAX_NAME_CHARS = 200  # the width of dataset.name
MAX_SKIPS_KEPT = 1000  # skipped records listed in a report; the rest are counted
SHOWN_REASONS = 3  # skip reasons quoted when nothing at all can be imported


@dataclass(frozen=True)
class ImportReport:
    dataset: str
    file: str
    imported: int
    duplicates: int
    skipped: tuple[Skipped, ...]  # the first MAX_SKIPS_KEPT skipped records
    already_imported: bool = False
    more_skipped: int = 0  # skipped records past those listed in `skipped`
    more_labels: int = 0  # records that added another judge's label to an item already there

    @property
    def skipped_count(self) -> int:
        return len(self.skipped) + self.more_skipped

    def summary(self) -> str:
        if self.already_imported:
            return (
                f"{self.file} was already imported into '{self.dataset}': nothing to do "
                "(to read it another way, import it into a new dataset)"
            )
        labels = (f" and {self.more_labels} more judge label(s) on items already there"
                  if self.more_labels else "")
        return (
            f"imported {self.imported} item(s){labels} into '{self.dataset}', "
            f"{self.duplicates} already there, skipped {self.skipped_count}"
        )


def content_hash(query: str, context: Iterable[Any], responses: Iterable[str]) -> str:
    canonical = json.dumps(
        {"query": query, "context": list(context), "responses": list(responses)},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def dataset_id(session: Session, name: str, *, create: bool = False) -> int | None:
    found = session.scalar(select(Dataset.id).where(Dataset.name == name))
    if found is None and create:
        if not name.strip():
            raise InputError("a dataset needs a name")
        if len(name) > MAX_NAME_CHARS:
            raise InputError(
                f"a dataset name holds at most {MAX_NAME_CHARS} characters, not {len(name):,}"
            )
        row = Dataset(name=name)
        session.add(row)
        session.flush()
        found = row.id
    return found


def import_file(
    engine: Engine,
    path: Path,
    dataset: str,
    *,
    shape: str | None = None,
    limits: ReadLimits | None = None,
    progress: Callable[[int], None] | None = None,
    mapping: FieldMap | None = None,
) -> ImportReport:
    """Import `path` into `dataset` (created if new), reading it within `limits`
    (default `ReadLimits()`; fronts pass `Settings.import_limits()`) as `shape`
    (a shape or preset name) and/or `mapping` (`core.datasets.read_dataset`);
    `progress` gets the number of items written after each chunk. See the module
    docstring."""
    try:
        digest = source_sha256(path)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    with Session(engine) as session, session.begin():
        ds_id = dataset_id(session, dataset, create=True)
        assert ds_id is not None
        done = session.scalar(
            select(ImportRun.id).where(ImportRun.dataset_id == ds_id, ImportRun.file_sha256 == digest)
        )
        if done is not None:
            return ImportReport(dataset, path.name, 0, 0, (), already_imported=True)
        skips = _Skips()
        writer = ItemWriter(session, ds_id, progress, skips.add, chunk=CHUNK)
        for record in read_dataset(path, shape, limits, mapping):
            if isinstance(record, Skipped):
                skips.add(record)
                continue
            context = [t.model_dump() for t in record.context]
            writer.add(record, context, content_hash(record.query, context, record.responses))
        writer.flush()
        skipped = sorted(skips.kept, key=lambda s: s.line)
        if not (writer.imported or writer.duplicates or writer.more_labels):
            # rolls back the new dataset too
            raise InputError(_nothing_imported(path, shape, mapping, skipped, skips.more))
        session.add(
            ImportRun(
                dataset_id=ds_id,
                file_name=path.name,
                file_sha256=digest,
                imported=writer.imported,
                duplicates=writer.duplicates,
                skipped=[{"line": s.line, "reason": s.reason} for s in skipped],
            )
        )
    return ImportReport(dataset, path.name, writer.imported, writer.duplicates, tuple(skipped),
                        more_skipped=skips.more, more_labels=writer.more_labels)


class _Skips:
    """The skipped records of an import: the first MAX_SKIPS_KEPT kept, the rest counted."""

    def __init__(self) -> None:
        self.kept: list[Skipped] = []
        self.more = 0

    def add(self, skipped: Skipped) -> None:
        if len(self.kept) < MAX_SKIPS_KEPT:
            self.kept.append(skipped)
        else:
            self.more += 1


def _nothing_imported(
    path: Path,
    shape: str | None,
    mapping: FieldMap | None,
    skipped: list[Skipped],
    more_skipped: int,
) -> str:
    """Why an import in which every record was skipped stored nothing, and what next."""
    total = len(skipped) + more_skipped
    reasons = "; ".join(s.reason for s in skipped[:SHOWN_REASONS])
    if total > SHOWN_REASONS:
        reasons += f"; and {total - SHOWN_REASONS:,} more"
    if mapping is not None:
        advice = f"it was read with the mapping {mapping.cli_args()}: fix the mapping"
    elif shape is not None:
        advice = f"it was read as shape '{shape}': choose the shape that fits, or leave it to be detected"
    else:
        advice = "fix the file, or choose its shape by hand or map its fields"
    return (
        f"nothing in {path} can be imported: all {total:,} record(s) were skipped "
        f"({reasons}). Nothing was stored; {advice}"
    )

"""Importing a preference-data file into a dataset, in one transaction.

The file is streamed record by record (`core.datasets.read_dataset`, within
its `ReadLimits`) and written in chunks; a failure anywhere rolls the whole
import back, so nothing is ever half-imported. An import that would add
nothing (every record skipped) is a failure too: it raises InputError and
leaves no dataset and no import record behind, so the same file can be
imported again with another shape. Re-importing the same file (same SHA-256)
into the same dataset does nothing; items already present (same content hash)
are counted as duplicates, not added twice. Memory stays bounded: duplicates
are looked up a chunk at a time, and a report keeps the first
`MAX_SKIPS_KEPT` skipped records and counts the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from core.datasets import FieldMap, ReadLimits, read_dataset
from core.datasets.columnar import source_sha256
from core.datasets.records import Skipped, SourceItem
from core.errors import InputError
from core.labels import Accepted
from core.store.labels import annotator_id
from core.store.schema import Annotation, Dataset, GroundTruth, ImportRun, Item

CHUNK = 500
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

    @property
    def skipped_count(self) -> int:
        return len(self.skipped) + self.more_skipped

    def summary(self) -> str:
        if self.already_imported:
            return (
                f"{self.file} was already imported into '{self.dataset}': nothing to do "
                "(to read it another way, import it into a new dataset)"
            )
        return (
            f"imported {self.imported} item(s) into '{self.dataset}', "
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
        writer = _ChunkWriter(session, ds_id, progress)
        skipped: list[Skipped] = []
        more_skipped = 0
        for record in read_dataset(path, shape, limits, mapping):
            if isinstance(record, Skipped):
                if len(skipped) < MAX_SKIPS_KEPT:
                    skipped.append(record)
                else:
                    more_skipped += 1
                continue
            context = [t.model_dump() for t in record.context]
            writer.add(record, context, content_hash(record.query, context, record.responses))
        writer.flush()
        if writer.imported == 0 and writer.duplicates == 0:  # rolls back the new dataset too
            raise InputError(_nothing_imported(path, shape, mapping, skipped, more_skipped))
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
                        more_skipped=more_skipped)


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


class _ChunkWriter:
    """Buffers items and writes them, with their labels, CHUNK at a time; an item
    whose content hash is already in the dataset (stored before, or earlier in
    this import) is counted as a duplicate instead. Only one chunk is held."""

    def __init__(
        self, session: Session, ds_id: int, progress: Callable[[int], None] | None
    ) -> None:
        self.session = session
        self.ds_id = ds_id
        self.progress = progress
        self.pending: dict[str, tuple[SourceItem, list[dict[str, str]]]] = {}  # by hash
        self.imported = 0
        self.duplicates = 0
        self._annotators: dict[str, int] = {}

    def add(self, record: SourceItem, context: list[dict[str, str]], digest: str) -> None:
        if digest in self.pending:
            self.duplicates += 1
            return
        self.pending[digest] = (record, context)
        if len(self.pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        stored = select(Item.content_hash).where(
            Item.dataset_id == self.ds_id, Item.content_hash.in_(list(self.pending))
        )
        for digest in self.session.scalars(stored).all():
            del self.pending[digest]
            self.duplicates += 1
        if not self.pending:
            return
        rows = [
            {
                "dataset_id": self.ds_id,
                "external_id": record.external_id,
                "category": record.category,
                "query": record.query,
                "context": context,
                "responses": list(record.responses),
                "n_responses": len(record.responses),
                "content_hash": digest,
                "source_line": record.line,
                "reference": record.reference,
                "ratings": list(record.ratings) if record.ratings is not None else None,
            }
            for digest, (record, context) in self.pending.items()
        ]
        ids = self.session.scalars(
            insert(Item).returning(Item.id, sort_by_parameter_order=True), rows
        ).all()
        truths, labels = [], []
        for item_id, (record, _) in zip(ids, self.pending.values(), strict=True):
            for label in record.labels:
                if isinstance(label.best, Accepted):  # the dataset's: readers refuse a labeller's
                    truths.append({"item_id": item_id, "best": None,
                                   "accepted": list(label.best.indices), "source": "dataset"})
                elif label.labeller is None:
                    truths.append({"item_id": item_id, "best": label.best, "accepted": None,
                                   "source": "dataset"})
                else:
                    labels.append(
                        {
                            "item_id": item_id,
                            "annotator_id": self._annotator(label.labeller),
                            "best": label.best,
                        }
                    )
        if truths:
            self.session.execute(insert(GroundTruth), truths)
        if labels:
            self.session.execute(insert(Annotation), labels)
        self.imported += len(self.pending)
        self.pending.clear()
        if self.progress is not None:
            self.progress(self.imported)

    def _annotator(self, name: str) -> int:
        if name not in self._annotators:
            self._annotators[name] = annotator_id(self.session, name, role="imported")
        return self._annotators[name]

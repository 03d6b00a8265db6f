"""Importing a preference-data file into a dataset, in one transaction.

The file is streamed record by record (`core.datasets.read_dataset`) and
written in chunks; a failure anywhere rolls the whole import back, so nothing
is ever half-imported. Re-importing the same file (same SHA-256) into the same
dataset does nothing; items already present (same content hash) are counted
as duplicates, not added twice.
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

from core.datasets import read_dataset
from core.datasets.records import Skipped, SourceItem
from core.errors import InputError
from core.files import file_sha256
from core.store.labels import annotator_id
from core.store.schema import Annotation, Dataset, GroundTruth, ImportRun, Item

CHUNK = 500
MAX_NAME_CHARS = 200  # the width of dataset.name


@dataclass(frozen=True)
class ImportReport:
    dataset: str
    file: str
    imported: int
    duplicates: int
    skipped: tuple[Skipped, ...]
    already_imported: bool = False

    def summary(self) -> str:
        if self.already_imported:
            return f"{self.file} was already imported into '{self.dataset}': nothing to do"
        return (
            f"imported {self.imported} item(s) into '{self.dataset}', "
            f"{self.duplicates} already there, skipped {len(self.skipped)}"
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
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import `path` into `dataset` (created if new); see the module docstring."""
    try:
        digest = file_sha256(path)
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
        known = set(session.scalars(select(Item.content_hash).where(Item.dataset_id == ds_id)))
        writer = _ChunkWriter(session, ds_id)
        skipped: list[Skipped] = []
        duplicates = 0
        for record in read_dataset(path, shape):
            if isinstance(record, Skipped):
                skipped.append(record)
                continue
            context = [t.model_dump() for t in record.context]
            digest_item = content_hash(record.query, context, record.responses)
            if digest_item in known:
                duplicates += 1
                continue
            known.add(digest_item)
            writer.add(record, context, digest_item)
            if progress and writer.count % CHUNK == 0:
                progress(writer.count)
        writer.flush()
        session.add(
            ImportRun(
                dataset_id=ds_id,
                file_name=path.name,
                file_sha256=digest,
                imported=writer.count,
                duplicates=duplicates,
                skipped=[{"line": s.line, "reason": s.reason} for s in skipped],
            )
        )
    return ImportReport(dataset, path.name, writer.count, duplicates, tuple(skipped))


class _ChunkWriter:
    """Buffers items and writes them, with their labels, CHUNK at a time."""

    def __init__(self, session: Session, ds_id: int) -> None:
        self.session = session
        self.ds_id = ds_id
        self.pending: list[tuple[SourceItem, list[dict[str, str]], str]] = []
        self.count = 0
        self._annotators: dict[str, int] = {}

    def add(self, record: SourceItem, context: list[dict[str, str]], digest: str) -> None:
        self.pending.append((record, context, digest))
        self.count += 1
        if len(self.pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
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
            }
            for record, context, digest in self.pending
        ]
        ids = self.session.scalars(
            insert(Item).returning(Item.id, sort_by_parameter_order=True), rows
        ).all()
        truths, labels = [], []
        for item_id, (record, _, _) in zip(ids, self.pending, strict=True):
            for label in record.labels:
                if label.labeller is None:
                    truths.append({"item_id": item_id, "best": label.best, "source": "dataset"})
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
        self.pending.clear()

    def _annotator(self, name: str) -> int:
        if name not in self._annotators:
            self._annotators[name] = annotator_id(self.session, name, role="imported")
        return self._annotators[name]

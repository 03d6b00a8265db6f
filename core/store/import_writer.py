"""Writing imported items and their labels, a chunk at a time, and what a record
whose item is already there adds to it.

An item is its content (query, earlier turns, responses: its content hash), so
a record whose content is already in the dataset (stored by an earlier import,
or earlier in the same file) makes no new item. What it adds depends on its
labels:

- **Another judge's label is kept.** A label by an imported annotator (the
  record's `labeller`: MT-Bench's judge, PandaLM's annotators) who has no label
  on the item yet is added to it, so an item judged by several humans holds
  each one's label, and `core.labels.item_label` pools them with the dataset's
  ground truth (their majority decides; a shared top count is "dataset labels
  disagree"). The record counts in `more_labels`, not as a duplicate.
- **A true duplicate is a duplicate.** When every labeller of the record has
  labelled the item already with the same label, or the record's only label is
  the dataset's own (ground truth, which cannot tell a second vote from the
  same record read again) or it has none, the record is counted in
  `duplicates` and adds nothing.
- **A judge labels an item once.** A labeller whose label on the item differs
  from the one already there (the same judge, twice, saying two things) makes
  the record skipped with that reason; the first label stays, and nothing else
  of that record is added.

Only one chunk of distinct items is held in memory (with the labels that later
records of the same content add to them); items already stored are looked up,
with their imported annotators' labels, a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.datasets.records import Skipped, SourceItem, SourceLabel
from core.labels import Accepted, LabelValue, value_words
from core.store.labels import annotator_id, chain_head
from core.store.schema import Annotation, Annotator, GroundTruth, Item


@dataclass(frozen=True)
class _Given:
    """A labeller's label on an item, as the writer knows it."""

    best: LabelValue
    withdrawn: bool = False  # the label was undone since (a stored chain that ends retracted)


@dataclass
class _Pending:
    """The records of one content not written yet, in file order (the first makes the item)."""

    context: list[dict[str, str]]
    records: list[SourceItem] = field(default_factory=list)


class ItemWriter:
    """Buffers items and writes them, with their labels, `chunk` at a time (module
    docstring for a record whose item is already there); `skip` gets each record
    left out for a judge's second, different label."""

    def __init__(
        self,
        session: Session,
        ds_id: int,
        progress: Callable[[int], None] | None,
        skip: Callable[[Skipped], None],
        *,
        chunk: int = 500,
    ) -> None:
        self.session = session
        self.chunk = chunk  # distinct items held before they are written
        self.ds_id = ds_id
        self.progress = progress
        self.skip = skip
        self.pending: dict[str, _Pending] = {}  # by content hash
        self.imported = 0  # items written
        self.duplicates = 0  # records that added nothing to an item already there
        self.more_labels = 0  # records that added another judge's label to an item
        self._annotators: dict[str, int] = {}

    def add(self, record: SourceItem, context: list[dict[str, str]], digest: str) -> None:
        entry = self.pending.get(digest)
        if entry is None:
            entry = self.pending[digest] = _Pending(context)
        entry.records.append(record)
        if len(self.pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        stored: dict[str, int] = dict(
            self.session.execute(
                select(Item.content_hash, Item.id).where(
                    Item.dataset_id == self.ds_id, Item.content_hash.in_(list(self.pending))
                )
            ).all()
        )
        given = self._given(stored.values())
        new = {digest: entry for digest, entry in self.pending.items() if digest not in stored}
        truths: list[dict[str, Any]] = []
        labels: list[dict[str, Any]] = []
        for item_id, entry in zip(self._insert_items(new), new.values(), strict=True):
            first, *rest = entry.records
            known = self._first_labels(item_id, first, truths, labels)
            self._merge(item_id, rest, known, labels)
        for digest, item_id in stored.items():
            self._merge(item_id, self.pending[digest].records, given.get(item_id, {}), labels)
        if truths:
            self.session.execute(insert(GroundTruth), truths)
        if labels:
            self.session.execute(insert(Annotation), labels)
        self.imported += len(new)
        self.pending.clear()
        if self.progress is not None:
            self.progress(self.imported)

    def _insert_items(self, new: dict[str, _Pending]) -> list[int]:
        if not new:
            return []
        rows = [
            {
                "dataset_id": self.ds_id,
                "external_id": record.external_id,
                "category": record.category,
                "query": record.query,
                "context": entry.context,
                "responses": list(record.responses),
                "n_responses": len(record.responses),
                "content_hash": digest,
                "source_line": record.line,
                "reference": record.reference,
                "ratings": list(record.ratings) if record.ratings is not None else None,
            }
            for digest, entry in new.items()
            for record in entry.records[:1]
        ]
        return list(self.session.scalars(
            insert(Item).returning(Item.id, sort_by_parameter_order=True), rows
        ).all())

    def _first_labels(
        self, item_id: int, record: SourceItem, truths: list[dict[str, Any]],
        labels: list[dict[str, Any]],
    ) -> dict[str, _Given]:
        """Queue every label of the record that makes the item; the labellers' labels."""
        known: dict[str, _Given] = {}
        for label in record.labels:
            if isinstance(label.best, Accepted):  # the dataset's: readers refuse a labeller's
                truths.append({"item_id": item_id, "best": None,
                               "accepted": list(label.best.indices), "source": "dataset"})
            elif label.labeller is None:
                truths.append({"item_id": item_id, "best": label.best, "accepted": None,
                               "source": "dataset"})
            elif label.labeller not in known:
                labels.append(self._label_row(item_id, label))
                known[label.labeller] = _Given(label.best)
        return known

    def _merge(
        self, item_id: int, records: Iterable[SourceItem], known: dict[str, _Given],
        labels: list[dict[str, Any]],
    ) -> None:
        """Records of an item already made: each adds its new judges' labels, is a
        duplicate, or is skipped for a judge's second, different label."""
        for record in records:
            judged = [label for label in record.labels if label.labeller is not None]
            clash = next((label for label in judged if label.labeller in known
                          and known[label.labeller] != _Given(label.best)), None)
            if clash is not None:
                assert clash.labeller is not None
                self.skip(Skipped(record.line, _clash_reason(record, clash,
                                                             known[clash.labeller])))
                continue
            fresh = [label for label in judged if label.labeller not in known]
            if not fresh:
                self.duplicates += 1
                continue
            for label in fresh:
                assert label.labeller is not None
                labels.append(self._label_row(item_id, label))
                known[label.labeller] = _Given(label.best)
            self.more_labels += 1

    def _given(self, item_ids: Iterable[int]) -> dict[int, dict[str, _Given]]:
        """item id -> annotator name -> their label now, for stored items."""
        ids = list(item_ids)
        found: dict[int, dict[str, _Given]] = {}
        if not ids:
            return found
        rows = self.session.execute(
            select(Annotation.item_id, Annotator.name, Annotation.best, Annotation.retracted)
            .join(Annotator, Annotator.id == Annotation.annotator_id)
            .where(Annotation.item_id.in_(ids), chain_head())
        )
        for item_id, name, best, retracted in rows:
            found.setdefault(item_id, {})[name] = _Given(best, withdrawn=retracted)
        return found

    def _label_row(self, item_id: int, label: SourceLabel) -> dict[str, Any]:
        assert label.labeller is not None and not isinstance(label.best, Accepted)
        return {"item_id": item_id, "annotator_id": self._annotator(label.labeller),
                "best": label.best}

    def _annotator(self, name: str) -> int:
        if name not in self._annotators:
            self._annotators[name] = annotator_id(self.session, name, role="imported")
        return self._annotators[name]


def _clash_reason(record: SourceItem, label: SourceLabel, before: _Given) -> str:
    had = "a label since withdrawn" if before.withdrawn else value_words(before.best)
    return (
        f"{record.place}: {label.labeller} has labelled this item already ({had}), and this "
        f"record says {value_words(label.best)}; a judge has one label per item, so the "
        "first is kept and this record is left out"
    )

"""The neutral records a dataset file is read into, before anything stores them."""

from __future__ import annotations

from dataclasses import dataclass

from core.labels import LabelValue
from core.types import Turn


@dataclass(frozen=True)
class SourceLabel:
    """One preference label of an item."""

    best: LabelValue  # 0-based ORIGINAL index of the best response; None means a tie; an
    # `Accepted` set: a best-of-n item's correct responses (several chosen), the rest wrong
    labeller: str | None  # None: the dataset's own ground truth; else an annotator's name


@dataclass(frozen=True)
class SourceItem:
    """One usable record: a query, its earlier turns, the responses and their labels."""

    line: int  # 1-based line (JSONL, CSV) or 1-based record number (JSON)
    external_id: str | None  # the record's own id if it has one (pair_id, idx, ...)
    query: str
    context: tuple[Turn, ...]
    responses: tuple[str, ...]
    labels: tuple[SourceLabel, ...]
    category: str | None  # e.g. JudgeBench 'source', LLMBar subset, PandaLM motivation_app
    reference: str | None = None  # a reference answer (mapped, or a 'reference' field)
    ratings: tuple[float, ...] | None = None  # one per response (mapped); stored with the item
    where: str = ""  # the record's place for messages ("line 7", "row 3 of shard x"); "" unknown

    @property
    def place(self) -> str:
        """Where the record is, for a message: `where`, else its line."""
        return self.where or f"line {self.line}"


@dataclass(frozen=True)
class Skipped:
    """A record that was not read; `reason` is one sentence naming its line."""

    line: int
    reason: str

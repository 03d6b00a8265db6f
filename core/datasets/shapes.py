"""The record shapes a dataset file may have, how each is recognised and read.

Each reader turns one raw record into a `SourceItem` or raises `RecordError`.
Shapes are recognised from the first record's keys, in the order of `SHAPES`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from core.datasets import fields as f
from core.datasets.field_map import FieldMap
from core.datasets.fields import RawRecord, RecordError
from core.datasets.hh_rlhf import read_hh_rlhf
from core.datasets.mapped import read_mapped
from core.datasets.records import Skipped, SourceItem, SourceLabel
from core.errors import InputError

PROMPT_KEYS = ("prompt", "query", "question", "input")


@dataclass(frozen=True)
class Shape:
    """A record shape: the keys that identify it and the reader of one record."""

    name: str
    required: tuple[str, ...]  # every one of these keys
    any_of: tuple[str, ...]  # and at least one of these (when given)
    read: Callable[[RawRecord], SourceItem]
    summary: str = ""  # what files have it, for lists of formats
    field_map: FieldMap | None = None  # the map it reads with, if a map (roles can be changed)
    detect: bool = True  # recognised from the first record's keys (else chosen by name only)

    def matches(self, keys: Collection[str]) -> bool:
        return all(k in keys for k in self.required) and (
            not self.any_of or any(k in keys for k in self.any_of)
        )

    @property
    def signature(self) -> str:
        keys = list(self.required)
        if self.any_of:
            keys.insert(0, "|".join(self.any_of))
        return f"{self.name} ({', '.join(keys)})"

    def item_or_skip(self, rec: RawRecord) -> SourceItem | Skipped:
        """The record as an item, or a `Skipped` saying why it cannot be one."""
        if not isinstance(rec.data, dict):
            reason = f"expected an object with the record's fields, got {f.describe(rec.data)}"
            return Skipped(rec.number, f"{rec.where}: {reason}")
        problem = _unstorable_field(rec.data)
        if problem is not None:
            return Skipped(rec.number, f"{rec.where}: {problem}")
        try:
            item = self.read(rec)
        except RecordError as err:
            return Skipped(rec.number, f"{rec.where}: {err}")
        problem = _unstorable_text(item)  # text decoded from a cell: a JSON list in CSV
        if problem is not None:
            return Skipped(rec.number, f"{rec.where}: {problem}")
        duplicate = _first_duplicate(item.responses)
        if duplicate is not None:
            i, j = duplicate
            reason = f"responses {i} and {j} are identical, so no preference between them holds"
            return Skipped(rec.number, f"{rec.where}: {reason}")
        return replace(item, where=rec.where)


def _unstorable_field(data: dict[str, object]) -> str | None:
    """Why a field's text cannot be stored (a NUL, a lone surrogate), naming the
    field; None if every string in the record, however nested, can be."""
    for key, value in data.items():
        stack = [value]
        while stack:
            current = stack.pop()
            if isinstance(current, str):
                problem = f.unstorable(current)
                if problem is not None:
                    return f"'{key}' contains {problem}; fix or remove it in the file"
            elif isinstance(current, dict):
                stack.extend(current.values())
            elif isinstance(current, list):
                stack.extend(current)
    return None


def _unstorable_text(item: SourceItem) -> str | None:
    """Why one of the item's texts cannot be stored, naming it; None if all can."""
    texts = [
        ("the query", item.query),
        *((f"response {i}", text) for i, text in enumerate(item.responses, start=1)),
        *((f"context turn {i}", turn.content) for i, turn in enumerate(item.context, start=1)),
        ("the id", item.external_id or ""),
        ("the category", item.category or ""),
        ("the reference", item.reference or ""),
    ]
    for name, text in texts:
        problem = f.unstorable(text)
        if problem is not None:
            return f"{name} contains {problem}; fix or remove it in the file"
    return None


def _first_duplicate(responses: tuple[str, ...]) -> tuple[int, int] | None:
    """1-based positions of the first two responses with the same text."""
    seen: dict[str, int] = {}
    for j, response in enumerate(responses, start=1):
        i = seen.setdefault(response.strip(), j)
        if i != j:
            return i, j
    return None


def _record_map(rec: RawRecord, **roles: Any) -> FieldMap:
    """The field map of a record of the chosen_rejected or responses_best shape:
    its prompt under the first of PROMPT_KEYS it has, category or subset, and an
    optional reference answer."""
    category = "category" if f.has(rec, "category") else "subset"
    return FieldMap(
        query=f.first_key(rec, PROMPT_KEYS), context="context", id="id", category=category,
        reference="reference", **roles,
    )


def _chosen_rejected(rec: RawRecord) -> SourceItem:
    """{prompt, chosen, rejected}: each reply a string, a conversation, or a list of
    either (RewardBench 2's best-of-n); the chosen are the correct responses."""
    return read_mapped(_record_map(rec, chosen="chosen", rejected="rejected"), rec)


def _responses_best(rec: RawRecord) -> SourceItem:
    """{prompt, responses, best}: best a 0-based index, null or "tie", a list of
    indices (a best-of-n item's correct responses), or absent."""
    return read_mapped(_record_map(rec, responses=("responses",), best="best"), rec)


def _llmbar(rec: RawRecord) -> SourceItem:
    label = f.integer_in(rec, "label", (1, 2), "1 or 2")
    return SourceItem(
        line=rec.number,
        external_id=f.optional_id(rec, "id"),
        query=f.text(rec, "input"),
        context=(),
        responses=(f.text(rec, "output_1"), f.text(rec, "output_2")),
        labels=(SourceLabel(best=label - 1, labeller=None),),
        category=rec.source or None,
    )


_JUDGEBENCH_LABELS: Mapping[str, int | None] = MappingProxyType(
    {"A>B": 0, "B>A": 1, "A=B": None, "B=A": None}
)


def _judgebench(rec: RawRecord) -> SourceItem:
    query = f.text(rec, "question")
    responses = (f.text(rec, "response_A"), f.text(rec, "response_B"))
    label = f.text(rec, "label").strip()
    if label not in _JUDGEBENCH_LABELS:
        raise RecordError(f"'label' must be \"A>B\", \"B>A\" or \"A=B\", got {f.shown(label)}")
    return SourceItem(
        line=rec.number,
        external_id=f.optional_id(rec, "pair_id"),
        query=query,
        context=(),
        responses=responses,
        labels=(SourceLabel(best=_JUDGEBENCH_LABELS[label], labeller=None),),
        category=f.optional_id(rec, "source"),
    )


_PANDALM_VOTES: Mapping[int, int | None] = MappingProxyType({0: None, 1: 0, 2: 1})


def _pandalm(rec: RawRecord) -> SourceItem:
    instruction = f.text(rec, "instruction", allow_blank=True)
    extra = f.text(rec, "input", allow_blank=True) if "input" in rec.data else ""
    query = "\n\n".join(part for part in (instruction, extra) if part.strip())
    if not query:
        raise RecordError("'instruction' and 'input' are both empty")
    responses = (f.text(rec, "response1"), f.text(rec, "response2"))
    labels = []
    for i in (1, 2, 3):
        key = f"annotator{i}"
        vote = f.integer_in(rec, key, _PANDALM_VOTES, "0 (tie), 1 or 2")
        labels.append(SourceLabel(best=_PANDALM_VOTES[vote], labeller=f"pandalm:{key}"))
    return SourceItem(
        line=rec.number,
        external_id=f.optional_id(rec, "idx"),
        query=query,
        context=(),
        responses=responses,
        labels=tuple(labels),
        category=f.optional_id(rec, "motivation_app"),
    )


SHAPES: tuple[Shape, ...] = (
    Shape("pandalm", ("instruction", "response1", "response2", "annotator1"), (), _pandalm,
          "PandaLM test set: three annotators' labels"),
    Shape("judgebench", ("question", "response_A", "response_B", "label"), (), _judgebench,
          "JudgeBench"),
    Shape("llmbar", ("input", "output_1", "output_2", "label"), (), _llmbar, "LLMBar"),
    Shape("responses_best", ("responses",), PROMPT_KEYS, _responses_best,
          "n responses and the index of the best"),
    Shape("chosen_rejected", ("chosen", "rejected"), PROMPT_KEYS, _chosen_rejected,
          "RewardBench, RewardBench 2 (lists), TRL preference (standard and conversational)"),
    Shape("hh_rlhf", ("chosen", "rejected"), (), read_hh_rlhf,
          "Anthropic HH-RLHF transcripts; TRL preference with an implicit prompt"),
)
SHAPE_NAMES: tuple[str, ...] = tuple(s.name for s in SHAPES)


def shape_named(name: str) -> Shape:
    """The shape called `name`; InputError listing the known ones otherwise."""
    for shape in SHAPES:
        if shape.name == name:
            return shape
    raise InputError(f"unknown dataset shape {name!r}; known shapes: {', '.join(SHAPE_NAMES)}")


def detect_shape(keys: Collection[str]) -> Shape | None:
    """The first shape whose keys the record has, or None."""
    return next((s for s in SHAPES if s.matches(keys)), None)

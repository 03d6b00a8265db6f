"""The record shapes a dataset file may have, how each is recognised and read.

Each reader turns one raw record into a `SourceItem` or raises `RecordError`.
Shapes are recognised from the first record's keys, in the order of `SHAPES`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from core.datasets import fields as f
from core.datasets.fields import RawRecord, RecordError
from core.datasets.hh_rlhf import read_hh_rlhf
from core.datasets.records import Skipped, SourceItem, SourceLabel
from core.errors import InputError
from core.types import Turn

PROMPT_KEYS = ("prompt", "query", "question", "input")


@dataclass(frozen=True)
class Shape:
    """A record shape: the keys that identify it and the reader of one record."""

    name: str
    required: tuple[str, ...]  # every one of these keys
    any_of: tuple[str, ...]  # and at least one of these (when given)
    read: Callable[[RawRecord], SourceItem]

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
        return item


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


def _prompt(rec: RawRecord) -> tuple[str, tuple[Turn, ...]]:
    """(query, context) from the prompt key: a string (plus an optional 'context'
    list), or a list of turns whose last, a user turn, is the query (TRL style)."""
    key = f.first_key(rec, PROMPT_KEYS)
    if isinstance(rec.data[key], list):
        turns = f.to_turns(key, rec.data[key])
        if not turns or turns[-1].role != "user":
            raise RecordError(f"'{key}' must end with a user turn")
        if not turns[-1].content.strip():
            raise RecordError(f"'{key}' has an empty last user turn")
        return turns[-1].content, turns[:-1]
    context = f.to_turns("context", f.json_list(rec, "context")) if f.has(rec, "context") else ()
    return f.text(rec, key), context


def _reply(rec: RawRecord, key: str) -> str:
    """A response: a string, or a list of one assistant turn (TRL style)."""
    value = rec.data.get(key)
    if isinstance(value, list):
        turns = f.to_turns(key, value)
        if len(turns) != 1 or turns[0].role != "assistant":
            raise RecordError(f"'{key}' must be a string or a list of one assistant turn")
        if not turns[0].content.strip():
            raise RecordError(f"'{key}' is empty")
        return turns[0].content
    return f.text(rec, key)


def _category(rec: RawRecord) -> str | None:
    return f.optional_id(rec, "category") or f.optional_id(rec, "subset")


def _chosen_rejected(rec: RawRecord) -> SourceItem:
    query, context = _prompt(rec)
    chosen, rejected = _reply(rec, "chosen"), _reply(rec, "rejected")
    first = f.chosen_first(query, chosen, rejected)
    return SourceItem(
        line=rec.number,
        external_id=f.optional_id(rec, "id"),
        query=query,
        context=context,
        responses=(chosen, rejected) if first else (rejected, chosen),
        labels=(SourceLabel(best=0 if first else 1, labeller=None),),
        category=_category(rec),
    )


def _responses_best(rec: RawRecord) -> SourceItem:
    query, context = _prompt(rec)
    responses = f.string_list(rec, "responses")
    if len(responses) < 2:
        raise RecordError(f"'responses' must hold at least 2 responses, got {len(responses)}")
    return SourceItem(
        line=rec.number,
        external_id=f.optional_id(rec, "id"),
        query=query,
        context=context,
        responses=responses,
        labels=_best_label(rec, len(responses)),
        category=_category(rec),
    )


def _best_label(rec: RawRecord, n: int) -> tuple[SourceLabel, ...]:
    """No label when 'best' is absent; a tie for null or "tie"; else an index."""
    if "best" not in rec.data or (rec.textual and not rec.data["best"].strip()):
        return ()
    value = rec.data["best"]
    if value is None or (isinstance(value, str) and value.strip().lower() in ("tie", "null")):
        return (SourceLabel(best=None, labeller=None),)
    problem = (
        f"'best' must be a response index from 0 to {n - 1}, null or \"tie\", "
        f"got {f.shown(value)}"
    )
    try:
        best = f.integer(rec, "best")
    except RecordError:
        best = -1
    if not 0 <= best < n:
        raise RecordError(problem)
    return (SourceLabel(best=best, labeller=None),)


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
    Shape("pandalm", ("instruction", "response1", "response2"), (), _pandalm),
    Shape("judgebench", ("question", "response_A", "response_B"), (), _judgebench),
    Shape("llmbar", ("input", "output_1", "output_2"), (), _llmbar),
    Shape("responses_best", ("responses",), PROMPT_KEYS, _responses_best),
    Shape("chosen_rejected", ("chosen", "rejected"), PROMPT_KEYS, _chosen_rejected),
    Shape("hh_rlhf", ("chosen", "rejected"), (), read_hh_rlhf),
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

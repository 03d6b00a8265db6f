"""A likely field mapping for a record of unknown shape, from its field names.

Guessed from common names: a prompt-like field for the query; `chosen`-like
and `rejected`-like fields, or a family of numbered or lettered response
fields (response1, response2; output_a, output_b), or one list of responses;
a label-like field for the best. Where the label's value is one of the
response fields' numbers or letters, label values are suggested too. A guess,
to be checked: the error that carries it says so.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from core.datasets.field_map import TIE, FieldMap, LabelValues, value_key
from core.errors import InputError

_QUERY = ("prompt", "query", "question", "instruction", "input", "context", "messages",
          "conversation")
_LABEL = ("label", "best", "winner", "preference", "preferred", "choice", "overall_preference",
          "preference_strength", "gold")
_LISTS = ("responses", "completions", "outputs", "answers", "candidates", "generations")
_NUMBERED = re.compile(
    r"(?P<stem>response|output|answer|completion|generation|reply|conversation|text)"
    r"[ _-]?(?P<tag>\d+|[a-z])",
    re.IGNORECASE,
)


class UnknownShapeError(InputError):
    """No known shape fits the records; `suggestion` is a likely mapping, if any."""

    def __init__(self, message: str, fields: tuple[str, ...], suggestion: FieldMap | None):
        super().__init__(message)
        self.fields = fields
        self.suggestion = suggestion


def suggest_map(record: Mapping[str, Any]) -> FieldMap | None:
    """A likely mapping of `record`'s fields, or None when no responses are found."""
    keys = [k for k in record if isinstance(k, str)]
    query = _first(keys, _QUERY)
    chosen = _named(keys, "chosen")
    rejected = _named(keys, "rejected")
    if chosen and rejected:
        fmap = FieldMap(query=query, chosen=chosen, rejected=rejected)
        return fmap if query or _conversation(record, chosen) else None
    tags, responses = _numbered(keys)
    if not responses:
        listed = _first(keys, _LISTS)
        if listed is None or not isinstance(record[listed], list):
            return None
        responses = (listed,)
    best = _first(keys, _LABEL)
    label_values = _label_values(record.get(best), tags) if best else None
    conversations = all(_conversation(record, key) for key in responses)
    if query is None and not conversations:
        return None
    return FieldMap(query=None if conversations else query, responses=responses, best=best,
                    label_values=label_values)


def _first(keys: list[str], names: tuple[str, ...]) -> str | None:
    by_name = {k.lower(): k for k in keys}
    return next((by_name[n] for n in names if n in by_name), None)


def _named(keys: list[str], word: str) -> str | None:
    """The field called `word`, or else the one field whose name holds it."""
    if word in keys:
        return word
    holding = [k for k in keys if word in k.lower()]
    return holding[0] if len(holding) == 1 else None


def _numbered(keys: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tags, fields) of the largest family of numbered or lettered response fields."""
    families: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in keys:
        found = _NUMBERED.fullmatch(key)
        if found:
            stem = key[: found.start("tag")]
            families[stem].append((found.group("tag"), key))
    best = max(families.values(), key=len, default=[])
    if len(best) < 2:
        return (), ()
    best.sort(key=lambda pair: (len(pair[0]), pair[0].lower()))
    return tuple(t for t, _ in best), tuple(k for _, k in best)


def _label_values(value: Any, tags: tuple[str, ...]) -> LabelValues | None:
    """Label values when the label names a response by its field's tag (1, 2 or a, b)."""
    if value is None or not tags:
        return None
    text = value_key(value).lower()
    lowered = [t.lower() for t in tags]
    if text not in lowered:
        return None
    if tags[0] == "0" and text.isdigit():  # already 0-based indices
        return None
    pairs: list[tuple[str, int | None]] = [(tag, i) for i, tag in enumerate(tags)]
    return LabelValues((*pairs, (TIE, None)))


def _conversation(record: Mapping[str, Any], key: str) -> bool:
    value = record.get(key)
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

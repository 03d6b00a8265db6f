"""Where a mapped value is in a record: a field name, or a short path into one.

A path is a field name, or segments joined by dots where each may end with
`[]` (every item of a list) or `[N]` (item N, from 0; negative from the end):

    instruction                  the field 'instruction'
    completions[].response       'response' of every item of the list 'completions'
    conversation_a[-1].content   'content' of the last item of 'conversation_a'

A record that has the whole path as one field name ("response 1", "a.b") is
read as that field first, so CSV headers need no quoting. In CSV records a
path into a cell reads the cell as JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from core.datasets.fields import RawRecord, RecordError, describe

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[-?\d*\])*)")
_STEP = re.compile(r"\[(-?\d*)\]")


@dataclass(frozen=True)
class _Step:
    key: str | None  # a field of an object
    index: int | None = None  # an item of a list (with key None)
    each: bool = False  # every item of a list (with key None)


def top_key(path: str) -> str:
    """The record's own field a path starts at ('completions' for 'completions[].response')."""
    steps = _steps(path)
    return path if steps is None else steps[0].key or path


def has_path(rec: RawRecord, path: str) -> bool:
    """The path leads to a value (not null, not a blank CSV cell)."""
    try:
        value = resolve(rec, path)
    except RecordError:
        return False
    return value is not None and not (rec.textual and isinstance(value, str) and not value.strip())


def resolve(rec: RawRecord, path: str) -> Any:
    """The value at `path` in the record; RecordError naming where it is missing."""
    data = rec.data
    if path in data:
        return data[path]
    steps = _steps(path)
    if steps is None or steps[0].key not in data:
        raise RecordError(f"missing field '{path}'")
    return _walk(data[steps[0].key], steps[1:], steps[0].key or path, rec.textual)


def _steps(path: str) -> list[_Step] | None:
    """The steps of a path; None when it is not a path (a plain field name)."""
    steps: list[_Step] = []
    for segment in path.split("."):
        found = _SEGMENT.fullmatch(segment)
        if found is None:
            return None
        steps.append(_Step(found.group(1)))
        steps.extend(
            _Step(None, each=True) if index == "" else _Step(None, int(index))
            for index in _STEP.findall(found.group(2))
        )
    return steps


def _walk(value: Any, steps: list[_Step], where: str, textual: bool) -> Any:
    if not steps:
        return value
    if textual and isinstance(value, str):  # a CSV cell holding JSON
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise RecordError(f"'{where}' must hold JSON in the cell to be read further") from None
    step, rest = steps[0], steps[1:]
    if step.key is not None:
        if not isinstance(value, dict):
            raise RecordError(f"'{where}' must be an object with '{step.key}', got {describe(value)}")
        if step.key not in value:
            raise RecordError(f"'{where}' has no field '{step.key}'")
        return _walk(value[step.key], rest, f"{where}.{step.key}", textual)
    if not isinstance(value, list):
        raise RecordError(f"'{where}' must be a list, got {describe(value)}")
    if step.each:
        return [_walk(v, rest, f"{where}[{i}]", textual) for i, v in enumerate(value)]
    assert step.index is not None
    if not -len(value) <= step.index < len(value):
        raise RecordError(f"'{where}' has {len(value)} item(s), so no item [{step.index}]")
    return _walk(value[step.index], rest, f"{where}[{step.index}]", textual)

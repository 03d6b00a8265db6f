"""The values of a JSON stream, one record at a time, with a nesting limit.

Built from ijson's `basic_parse` events rather than `ijson.items`: the latter
keeps a prefix string per event ("item.item.item…"), so memory grows with the
square of the nesting depth (a 30,000-deep array took 2 GB). Here a record
nested deeper than `MAX_DEPTH` is passed over, without building it, and
reported as `TOO_DEEP`; memory stays bounded by the largest record.
A file that is one object holding its records in an "examples" list (LLM
Comparator's JSON) gives those records, one at a time, in the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Final

import ijson

MAX_DEPTH: Final = 100  # lists and objects inside one record; real records use a handful
TOO_DEEP: Final = object()  # stands for a record nested deeper than MAX_DEPTH
_START: Final = frozenset({"start_map", "start_array"})
_END: Final = frozenset({"end_map", "end_array"})
WRAPPER_KEY: Final = "examples"  # LLM Comparator: {"metadata", "models", "examples": [...]}


def json_values(stream: IO[bytes], *, array: bool, buf_size: int = 1 << 16) -> Iterator[Any]:
    """The items of the top-level array (`array`), or else each top-level value,
    in order; `TOO_DEEP` in place of a record nested deeper than MAX_DEPTH. A
    top-level object with a WRAPPER_KEY list (an LLM Comparator file) gives
    that list's items instead of itself. `stream` is read `buf_size` bytes at
    a time. Raises ijson.JSONError (or ValueError, for an integer too long to
    convert) where the JSON is broken."""
    events = ijson.basic_parse(
        stream, buf_size=buf_size, use_float=True, multiple_values=not array
    )
    if array:
        next(events, None)  # the top-level array's own start
    stack: list[Any] = []  # the containers being built, outermost first
    keys: list[str] = []  # the pending key of each container (unused for lists)
    base = 0  # containers above a record: 1 inside a wrapper object's list
    wrapped = False  # the top-level object being read wraps its records
    skipping = 0  # levels still open in a record that is too deep
    for event, scalar in events:
        if skipping:
            skipping += (event in _START) - (event in _END)
            if not skipping:
                yield TOO_DEEP
            continue
        if event == "map_key":
            keys[-1] = scalar
            continue
        if event == "start_array" and _at_wrapper_list(stack, keys, base, array):
            base, wrapped = 1, True  # its items are the records
            continue
        if event in _START:
            if len(stack) - base >= MAX_DEPTH:
                skipping = len(stack) - base + 1
                del stack[base:], keys[base:]
                continue
            stack.append({} if event == "start_map" else [])
            keys.append("")
            continue
        value = scalar
        if event in _END:
            if len(stack) == base:
                if not base:
                    return  # the end of the top-level array
                base = 0  # the end of the wrapper's list
                continue
            value = stack.pop()
            keys.pop()
        if len(stack) == base:
            if base == 0 and wrapped:
                wrapped = False  # the wrapper object itself is not a record
                continue
            yield value
        elif isinstance(stack[-1], dict):
            stack[-1][keys[-1]] = value
        else:
            stack[-1].append(value)


def _at_wrapper_list(stack: list[Any], keys: list[str], base: int, array: bool) -> bool:
    """A list starts as the WRAPPER_KEY value of a top-level object."""
    return (
        not array and base == 0 and len(stack) == 1 and isinstance(stack[0], dict)
        and keys[0] == WRAPPER_KEY
    )

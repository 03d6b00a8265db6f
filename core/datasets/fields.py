"""Reading the fields of one raw record, with a clear reason when one cannot be used.

Every reader raises `RecordError` with a message that does not name the line;
the caller prefixes "line 7: " / "record 5: " when it turns it into a `Skipped`.
CSV records are `textual`: every cell is a string, an empty cell counts as
absent, numbers are written as digits and lists as JSON in the cell.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from core.types import Turn

_ROLES = ("system", "user", "assistant")
MAX_ID_CHARS = 200  # the store's width for an item's id and category
MAX_DIGITS = 18  # an integer field written as text: ASCII digits, fits in 64 bits
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class RecordError(ValueError):
    """A record that cannot be used; the message says why (without its line)."""


@dataclass(frozen=True)
class RawRecord:
    """One decoded record of a file, not yet checked against a shape."""

    number: int  # 1-based line (JSONL, CSV) or record number (JSON)
    where: str  # "line 7" or "record 5", for messages
    data: Any  # a dict for a usable record
    textual: bool = False  # CSV: every value is a string
    source: str = ""  # the file's name without its suffixes (LLMBar subsets)


def describe(value: Any) -> str:
    """'a string', 'a number (3)', 'a boolean (true)'... for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def shown(value: Any) -> str:
    """The value as JSON, cut short, for 'got ...' in messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return describe(value)
    return text if len(text) <= 40 else text[:37] + "..."


def has(rec: RawRecord, key: str) -> bool:
    """The key is present with a value (not null, not an empty CSV cell)."""
    value = rec.data.get(key)
    return value is not None and not (rec.textual and value.strip() == "")


def first_key(rec: RawRecord, keys: Sequence[str]) -> str:
    """The first of `keys` the record has."""
    for key in keys:
        if has(rec, key):
            return key
    for key in keys:
        if isinstance(rec.data.get(key), str):
            raise RecordError(f"'{key}' is empty")
    others = ", ".join(f"'{k}'" for k in keys[1:])
    raise RecordError(f"missing field '{keys[0]}' (or {others})")


def text(rec: RawRecord, key: str, *, allow_blank: bool = False) -> str:
    """A required string field; blank is an error unless `allow_blank`."""
    if key not in rec.data or (rec.data[key] is None and not allow_blank):
        raise RecordError(f"missing field '{key}'")
    value = rec.data[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"'{key}' must be a string, got {describe(value)}")
    if not allow_blank and not value.strip():
        raise RecordError(f"'{key}' is empty")
    return value


def optional_id(rec: RawRecord, key: str) -> str | None:
    """An optional id or name field (string or integer), as a string."""
    if not has(rec, key):
        return None
    value = rec.data[key]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(f"'{key}' must be a string or an integer, got {describe(value)}")
    text = str(value).strip()
    if len(text) > MAX_ID_CHARS:
        raise RecordError(f"'{key}' is {len(text):,} characters long; at most {MAX_ID_CHARS}")
    return text or None


def integer(rec: RawRecord, key: str) -> int:
    """A required integer field (a digit string is accepted, as in CSV)."""
    if not has(rec, key):
        raise RecordError(f"missing field '{key}'")
    value = rec.data[key]
    digits = value.strip().removeprefix("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= MAX_DIGITS:
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RecordError(f"'{key}' must be an integer, got {shown(value)}")


def integer_in(rec: RawRecord, key: str, allowed: Collection[int], expected: str) -> int:
    """A required integer field that must be one of `allowed` (`expected` says so)."""
    if not has(rec, key):
        raise RecordError(f"missing field '{key}'")
    try:
        value: int | None = integer(rec, key)
    except RecordError:
        value = None
    if value is None or value not in allowed:
        raise RecordError(f"'{key}' must be {expected}, got {shown(rec.data[key])}")
    return value


def json_list(rec: RawRecord, key: str) -> list[Any]:
    """A required list field; in CSV, a JSON list written in the cell."""
    if not has(rec, key):
        raise RecordError(f"missing field '{key}'")
    value = rec.data[key]
    if rec.textual:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise RecordError(f"'{key}' must be a JSON list in the cell ({err.msg})") from err
        except (ValueError, RecursionError):  # an integer too long, nesting too deep
            raise RecordError(f"'{key}' must be a JSON list in the cell") from None
    if not isinstance(value, list):
        raise RecordError(f"'{key}' must be a list, got {describe(value)}")
    return value


def string_list(rec: RawRecord, key: str) -> tuple[str, ...]:
    """A required list of non-blank strings."""
    values = json_list(rec, key)
    for i, value in enumerate(values, start=1):
        if not isinstance(value, str):
            raise RecordError(f"'{key}' item {i} must be a string, got {describe(value)}")
        if not value.strip():
            raise RecordError(f"'{key}' item {i} is empty")
    return tuple(values)


def to_turns(key: str, values: list[Any]) -> tuple[Turn, ...]:
    """{role, content} objects as turns; role is system, user or assistant."""
    turns = []
    for i, value in enumerate(values, start=1):
        if (
            not isinstance(value, dict)
            or value.get("role") not in _ROLES
            or not isinstance(value.get("content"), str)
        ):
            raise RecordError(
                f"'{key}' item {i} must be an object with 'role' (system, user or "
                f"assistant) and 'content' (a string), got {shown(value)}"
            )
        turns.append(Turn(role=value["role"], content=value["content"]))
    return tuple(turns)


def unstorable(value: str) -> str | None:
    """What in `value` no database can store as text: a NUL character
    (PostgreSQL refuses it) or a lone UTF-16 surrogate such as the JSON escape
    "\\ud800" (not Unicode text at all); None when there is nothing."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "a NUL character (\\u0000)"
    return f"a lone UTF-16 surrogate (\\u{ord(found.group()):04x}), which is not valid Unicode"


def chosen_first(*texts: str) -> bool:
    """Whether a chosen/rejected pair shows `chosen` first: a fixed hash of the
    record's texts, so that the better response is not always in position 0."""
    digest = hashlib.sha256("\x1f".join(texts).encode("utf-8")).digest()
    return digest[-1] % 2 == 0

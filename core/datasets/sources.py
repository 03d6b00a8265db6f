"""Streaming the raw records of a file: JSONL line by line, a JSON array record by
record (ijson), CSV row by row; gzip is recognised by its magic bytes.

Nothing here reads a whole file into memory. A bad line or row becomes a
`Skipped` and reading goes on; where the file itself breaks (a JSON array cut
off, a corrupt gzip stream) a last `Skipped` names where, and reading stops.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import MappingProxyType
from typing import IO, cast

import ijson

from core.datasets.fields import RawRecord
from core.datasets.records import Skipped
from core.errors import InputError

_KINDS: Mapping[str, str] = MappingProxyType(
    {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
)
_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r\n"
_CHUNK = 1 << 16


def source_name(path: Path) -> str:
    """The file's name without .gz and its type suffix: 'LLMBar_Natural'."""
    name = path.name.removesuffix(".gz").removesuffix(".GZ")
    for suffix in _KINDS:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_raw(path: Path) -> Generator[RawRecord | Skipped, None, None]:
    """The raw records of `path`, in order. Raises InputError (on the first
    `next`) when the file cannot be opened, is empty or of an unknown kind."""
    with ExitStack() as stack:
        stream = stack.enter_context(_open(path))
        first = _first_byte(path, stream)
        kind = _kind(path, first)
        source = source_name(path)
        unit = "line"
        if kind == "json" or (kind == "jsonl" and first == b"["):  # an array named .jsonl too
            records, unit = _json_records(stream, first, source), "record"
        elif kind == "jsonl":
            records = _jsonl_records(stream, source)
        else:
            text = stack.enter_context(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
            records = _csv_records(text, "\t" if kind == "tsv" else ",", source)
        yield from _until_broken(records, unit)


def _open(path: Path) -> IO[bytes]:
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
        if magic == b"\x1f\x8b":
            return cast("IO[bytes]", gzip.open(path, "rb"))
        return path.open("rb")
    except FileNotFoundError as err:
        raise InputError(f"{path} does not exist") from err
    except IsADirectoryError as err:
        raise InputError(f"{path} is a directory, not a dataset file") from err
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err


def _first_byte(path: Path, stream: IO[bytes]) -> bytes:
    """The first byte that is not blank; leaves the stream at its start, past a
    UTF-8 byte order mark if there is one."""
    start = True
    try:
        while chunk := stream.read(_CHUNK):
            if start:
                bom, chunk, start = chunk.startswith(_BOM), chunk.removeprefix(_BOM), False
            if stripped := chunk.lstrip(_BLANK):
                stream.seek(len(_BOM) if bom else 0)
                return stripped[:1]
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"cannot read {path}: {err}") from err
    raise InputError(f"{path} is empty")


def _kind(path: Path, first: bytes) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix, kind in _KINDS.items():
        if name.endswith(suffix):
            return kind
    if first in (b"[", b"{"):
        return "json" if first == b"[" else "jsonl"
    raise InputError(
        f"cannot tell what kind of file {path} is: name it .jsonl, .json or .csv "
        "(optionally followed by .gz)"
    )


def _jsonl_records(stream: IO[bytes], source: str) -> Iterator[RawRecord | Skipped]:
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            yield Skipped(number, f"line {number}: not UTF-8 text (byte {err.start + 1})")
        except json.JSONDecodeError as err:
            reason = f"invalid JSON ({err.msg} at column {err.colno})"
            yield Skipped(number, f"line {number}: {reason}")
        else:
            yield RawRecord(number, f"line {number}", value, source=source)


def _json_records(
    stream: IO[bytes], first: bytes, source: str
) -> Iterator[RawRecord | Skipped]:
    """Items of a top-level array; or, for a file of objects, each top-level value."""
    prefix, several = ("item", False) if first == b"[" else ("", True)
    number = 0
    try:
        for value in ijson.items(stream, prefix, use_float=True, multiple_values=several):
            number += 1
            yield RawRecord(number, f"record {number}", value, source=source)
    except ijson.JSONError as err:
        number += 1
        yield Skipped(
            number, f"record {number}: invalid JSON, reading stopped here ({_ijson_message(err)})"
        )


def _ijson_message(err: Exception) -> str:
    """yajl's three-line message as one line: the problem, near which text."""
    text = err.args[0] if err.args else str(err)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in str(text).split("\n")]
    problem = lines[0].removeprefix("parse error: ").removeprefix("lexical error: ").rstrip(".")
    near = lines[1] if len(lines) > 2 and lines[1] else ""
    return f"{problem} near {near!r}" if near else problem


def _csv_records(
    text: Iterable[str], delimiter: str, source: str
) -> Iterator[RawRecord | Skipped]:
    reader = csv.reader(text, delimiter=delimiter)
    header = [name.strip() for name in next(reader, [])]
    previous = reader.line_num
    for row in reader:
        number, previous = previous + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            reason = f"{len(row)} cells, but the header names {len(header)} columns"
            yield Skipped(number, f"line {number}: {reason}")
            continue
        data = dict(zip(header, row, strict=True))
        yield RawRecord(number, f"line {number}", data, textual=True, source=source)


def _until_broken(
    records: Iterator[RawRecord | Skipped], unit: str
) -> Iterator[RawRecord | Skipped]:
    """Pass records on; a file that breaks mid-way (corrupt gzip, bad UTF-8 in
    CSV, a CSV cell too large) ends with a `Skipped` naming where."""
    last = 0
    try:
        for entry in records:
            last = entry.number if isinstance(entry, RawRecord) else entry.line
            yield entry
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as err:
        where = last + 1
        yield Skipped(where, f"{unit} {where}: the file cannot be read from here on ({err})")

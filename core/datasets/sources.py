"""Streaming the raw records of a file: JSONL line by line, a JSON array record by
record (ijson), CSV row by row; gzip is recognised by its magic bytes. Parquet
and Arrow files and folders are read by `core.datasets.columnar`.

Nothing here reads a whole file into memory, nor a whole line: every read is
bounded by `ReadLimits`, and a file past them (in all, once decompressed; one
line; one JSON record) is refused with InputError naming the limit. A bad line
or row becomes a `Skipped` and reading goes on; where the file itself breaks
(a JSON array cut off, a corrupt gzip stream) a last `Skipped` names where,
and reading stops.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Generator, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import MappingProxyType
from typing import IO, cast

import ijson

from core.datasets.columnar import SUFFIXES as COLUMNAR_SUFFIXES
from core.datasets.columnar import is_columnar, read_columnar
from core.datasets.fields import RawRecord
from core.datasets.json_values import MAX_DEPTH, TOO_DEEP, json_values
from core.datasets.limits import ReadLimits, shown_size
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
    for suffix in (*_KINDS, *COLUMNAR_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_raw(
    path: Path, limits: ReadLimits | None = None
) -> Generator[RawRecord | Skipped, None, None]:
    """The raw records of `path`, in order. Raises InputError (on the first
    `next`) when the file cannot be opened, is empty or of an unknown kind, and
    (when reading reaches it) where the file goes past `limits`."""
    limits = limits or ReadLimits()
    if is_columnar(path):
        yield from read_columnar(path, limits)
        return
    with ExitStack() as stack:
        stream = _Bounded(stack.enter_context(_open(path)), path, limits.max_bytes)
        first = _first_byte(path, stream)
        kind = _kind(path, first)
        source = source_name(path)
        unit = "line"
        if kind == "json" or (kind == "jsonl" and first == b"["):  # an array named .jsonl too
            records = _json_records(stream, first, source, limits.max_line_bytes)
            unit = "record"
        else:
            lines = _lines(stream, limits.max_line_bytes)
            if kind == "jsonl":
                records = _jsonl_records(lines, source)
            else:
                records = _csv_records(lines, "\t" if kind == "tsv" else ",", source)
        yield from _until_broken(records, unit)


class _RecordTooLong(Exception):
    """Raised by `_Bounded.read` inside ijson; `_json_records` names the record."""


class _Bounded:
    """A binary stream that refuses (InputError) to read past `max_bytes` in all,
    and (`_RecordTooLong`) past `span_limit` bytes since `start_span()`."""

    def __init__(self, inner: IO[bytes], path: Path, max_bytes: int) -> None:
        self._inner, self.path, self._max = inner, path, max_bytes
        self.count = 0  # bytes read so far
        self.span_limit: int | None = None
        self._span_start = 0

    def read(self, size: int | None = -1) -> bytes:
        if self.span_limit is not None and self.count - self._span_start > self.span_limit:
            raise _RecordTooLong
        room = self._max - self.count + 1  # one byte more than allowed shows the excess
        data = self._inner.read(room if size is None or size < 0 else min(size, room))
        return self._counted(data)

    def readline(self, size: int) -> bytes:
        return self._counted(self._inner.readline(min(size, self._max - self.count + 1)))

    def rewind(self, offset: int) -> None:
        self._inner.seek(offset)
        self.count = offset

    def start_span(self) -> None:
        self._span_start = self.count

    def _counted(self, data: bytes) -> bytes:
        self.count += len(data)
        if self.count > self._max:
            raise InputError(
                f"{self.path} holds more than {shown_size(self._max)} of data (decompressed), "
                "the most an import reads; split the file, or raise "
                "GRM_STUDIO_IMPORT_MAX_BYTES"
            )
        return data


def _lines(stream: _Bounded, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(1-based number, bytes with the line end) of each line, reading no line
    past `max_line_bytes` (InputError naming the line instead)."""
    number = 0
    while line := stream.readline(max_line_bytes + 1):
        number += 1
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            raise InputError(
                f"{stream.path}: line {number} is longer than {shown_size(max_line_bytes)}, "
                "the most one line may hold; split the record, or raise "
                "GRM_STUDIO_IMPORT_MAX_LINE_BYTES"
            )
        yield number, line


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


def _first_byte(path: Path, stream: _Bounded) -> bytes:
    """The first byte that is not blank; leaves the stream at its start, past a
    UTF-8 byte order mark if there is one."""
    start = True
    try:
        while chunk := stream.read(_CHUNK):
            if start:
                bom, chunk, start = chunk.startswith(_BOM), chunk.removeprefix(_BOM), False
            if stripped := chunk.lstrip(_BLANK):
                stream.rewind(len(_BOM) if bom else 0)
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
        "(optionally followed by .gz), or .parquet"
    )


def _jsonl_records(
    lines: Iterator[tuple[int, bytes]], source: str
) -> Iterator[RawRecord | Skipped]:
    for number, raw in lines:
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            yield Skipped(number, f"line {number}: not UTF-8 text (byte {err.start + 1})")
        except json.JSONDecodeError as err:
            reason = f"invalid JSON ({err.msg} at column {err.colno})"
            yield Skipped(number, f"line {number}: {reason}")
        except ValueError:  # an integer of more digits than Python converts
            yield Skipped(number, f"line {number}: invalid JSON (a number too long to read)")
        except RecursionError:
            yield Skipped(number, f"line {number}: JSON nested too deeply to read")
        else:
            yield RawRecord(number, f"line {number}", value, source=source)


def _json_records(
    stream: _Bounded, first: bytes, source: str, max_record_bytes: int
) -> Iterator[RawRecord | Skipped]:
    """Items of a top-level array; or, for a file of objects, each top-level value.
    A record longer than `max_record_bytes` is refused (InputError) while it is
    read; the check runs before each read of the parser's buffer (an eighth of
    the limit, at most 64 KiB), so a record up to two buffers longer may pass."""
    number = 0
    stream.span_limit = max_record_bytes
    stream.start_span()
    buffer = min(max(max_record_bytes // 8, 1024), 1 << 16)
    try:
        for value in json_values(cast("IO[bytes]", stream), array=first == b"[", buf_size=buffer):
            number += 1
            if value is TOO_DEEP:
                reason = f"nested more than {MAX_DEPTH} lists or objects deep"
                yield Skipped(number, f"record {number}: {reason}")
            else:
                yield RawRecord(number, f"record {number}", value, source=source)
            stream.start_span()
    except _RecordTooLong:
        raise InputError(
            f"{stream.path}: record {number + 1} is longer than {shown_size(max_record_bytes)}, "
            "the most one record may hold; split it, or raise GRM_STUDIO_IMPORT_MAX_LINE_BYTES"
        ) from None
    except (ijson.JSONError, ValueError) as err:  # ValueError: an integer too long to convert
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
    lines: Iterator[tuple[int, bytes]], delimiter: str, source: str
) -> Iterator[RawRecord | Skipped]:
    text = (  # split at \r too, as csv expects; a bad byte ends reading there
        part.decode("utf-8") for _, line in lines for part in line.splitlines(keepends=True)
    )
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

"""Streaming the rows of columnar data: a Parquet file, an Arrow file, a folder of
Parquet (or Arrow) shards, or a Hugging Face `datasets` folder written by
`save_to_disk` (its Arrow files, in the order its state.json lists them).

Rows are read a batch at a time: a Parquet file one row group after another,
an Arrow file memory-mapped, one record batch after another. Memory stays
bounded: the data is refused (InputError naming the limit) when it holds more
than `ReadLimits.max_bytes` uncompressed, when one row group or batch is past
`max_group_bytes`, or when one row is past `max_line_bytes`. Rows are numbered
from 1 across all the files ("row 7 (train-00001-of-00002.parquet)").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.datasets.fields import RawRecord
from core.datasets.limits import ReadLimits, shown_size
from core.datasets.records import Skipped
from core.errors import InputError
from core.files import file_sha256

if TYPE_CHECKING:
    import pyarrow as pa

SUFFIXES = (".parquet", ".arrow")
_BATCH_ROWS = 256


def is_columnar(path: Path) -> bool:
    """A Parquet or Arrow file, or a folder (of shards, or saved by `datasets`)."""
    return path.is_dir() or path.suffix.lower() in SUFFIXES


def data_files(path: Path) -> list[Path]:
    """The files that hold the rows, in reading order; InputError if there are none."""
    if not path.is_dir():
        if not path.exists():
            raise InputError(f"{path} does not exist")
        return [path]
    if (path / "dataset_dict.json").is_file():
        splits = _splits(path)
        raise InputError(
            f"{path} holds several splits ({', '.join(splits)}), saved by datasets' "
            f"save_to_disk: import one split's folder, such as {path / splits[0]}"
        )
    if (path / "state.json").is_file():
        return _saved_files(path)
    for suffix in SUFFIXES:
        found = sorted(
            p for p in path.rglob(f"*{suffix}")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if found:
            return found
    raise InputError(
        f"{path} is a folder without .parquet or .arrow files; import a dataset file, a "
        "folder of Parquet shards, or a folder saved by datasets' save_to_disk"
    )


def source_sha256(path: Path) -> str:
    """The content hash of what an import reads: a file's SHA-256, or for a folder
    SHA-256 over each data file's name (relative) and contents, in reading order."""
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in data_files(path):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def read_columnar(path: Path, limits: ReadLimits) -> Iterator[RawRecord | Skipped]:
    """The rows of `path` as raw records; see the module docstring."""
    files = data_files(path)
    total = sum(_data_size(file) for file in files)
    if total > limits.max_bytes:
        raise InputError(
            f"{path} holds {shown_size(total)} of data (uncompressed), more than "
            f"{shown_size(limits.max_bytes)}, the most an import reads; import part of it, "
            "or raise GRM_STUDIO_IMPORT_MAX_BYTES"
        )
    number = 0
    for file in files:
        where = f" ({file.name})" if len(files) > 1 else ""
        try:
            for batch in _batches(file, limits):
                for row in batch.to_pylist():
                    number += 1
                    _check_row(path, row, number, where, limits)
                    yield RawRecord(number, f"row {number}{where}", row, source=file.stem)
        except _ReadError as err:
            reason = f"the data cannot be read from here on ({err})"
            yield Skipped(number + 1, f"row {number + 1}{where}: {reason}")
            return


class _ReadError(Exception):
    """pyarrow could not decode the rest of a file."""


def _is_parquet(file: Path) -> bool:
    if file.suffix.lower() == ".parquet":
        return True
    with file.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def _data_size(file: Path) -> int:
    """The uncompressed size of a file's data: a Parquet file's row groups, an Arrow file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if not _is_parquet(file):
            return file.stat().st_size
        meta = pq.read_metadata(file)
        return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except FileNotFoundError:
        raise InputError(f"{file} does not exist") from None
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"cannot read {file}: not a readable Parquet file ({err})") from None


def _batches(file: Path, limits: ReadLimits) -> Iterator[pa.RecordBatch]:
    """The file's rows, a few hundred at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if _is_parquet(file):
            batches = _parquet_batches(file, pq.ParquetFile(file), limits)
        else:
            batches = _arrow_batches(file, pa.memory_map(str(file)), limits)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"cannot read {file}: not a readable data file ({err})") from None
    yield from batches


def _parquet_batches(file: Path, parquet: Any, limits: ReadLimits) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    meta = parquet.metadata
    for group in range(meta.num_row_groups):
        size = meta.row_group(group).total_byte_size
        if size > limits.max_group_bytes:
            raise _too_big(file, f"row group {group + 1}", size, limits)
        try:
            table = parquet.read_row_group(group)
        except (pa.ArrowException, OSError) as err:
            raise _ReadError(str(err)) from None
        yield from table.to_batches(max_chunksize=_BATCH_ROWS)


def _arrow_batches(file: Path, source: Any, limits: ReadLimits) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    try:
        batches: Iterator[pa.RecordBatch] = iter(pa.ipc.open_stream(source))  # save_to_disk's
    except pa.ArrowInvalid:
        source.seek(0)
        reader = pa.ipc.open_file(source)
        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as err:
            raise _ReadError(str(err)) from None
        if batch is None:
            return
        if batch.nbytes > limits.max_group_bytes:
            raise _too_big(file, "a record batch", batch.nbytes, limits)
        for start in range(0, batch.num_rows, _BATCH_ROWS):
            yield batch.slice(start, _BATCH_ROWS)


def _too_big(file: Path, what: str, size: int, limits: ReadLimits) -> InputError:
    return InputError(
        f"{file}: {what} holds {shown_size(size)} (uncompressed), more than "
        f"{shown_size(limits.max_group_bytes)}, the most read at once; write the file "
        "with smaller row groups"
    )


def _check_row(path: Path, row: dict[str, Any], number: int, where: str,
               limits: ReadLimits) -> None:
    size = _row_size(row)
    if size > limits.max_line_bytes:
        raise InputError(
            f"{path}: row {number}{where} holds about {shown_size(size)}, more than "
            f"{shown_size(limits.max_line_bytes)}, the most one record may hold; raise "
            "GRM_STUDIO_IMPORT_MAX_LINE_BYTES"
        )


def _row_size(value: Any) -> int:
    """About how many bytes a row's values take as text."""
    total, stack = 0, [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str | bytes):
            total += len(current)
        elif isinstance(current, dict):
            stack.extend(current.values())
            total += len(current) * 8
        elif isinstance(current, list):
            stack.extend(current)
        else:
            total += 8
    return total


def _splits(path: Path) -> list[str]:
    try:
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        return [str(s) for s in splits] or ["train"]
    except (OSError, ValueError, KeyError, TypeError):
        return sorted(p.name for p in path.iterdir() if p.is_dir()) or ["train"]


def _saved_files(path: Path) -> list[Path]:
    """The Arrow files of a folder written by `Dataset.save_to_disk`."""
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        names = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path / 'state.json'} cannot be read as datasets' state ({err})") \
            from None
    files = [path / name for name in names]
    if not files or any(f.parent != path or not f.is_file() for f in files):
        raise InputError(f"{path / 'state.json'} lists data files that are not in {path}")
    return files

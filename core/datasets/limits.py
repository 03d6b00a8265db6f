"""How much of a dataset file is read before it is refused.

A file is read as a stream, so memory stays bounded by these limits whatever
the file holds: a gzip that expands without end, a line that never ends, one
JSON record the size of the file, one Parquet row group the size of the file. `Settings.import_limits()` gives the
configured ones (`GRM_STUDIO_IMPORT_MAX_BYTES`, `GRM_STUDIO_IMPORT_MAX_LINE_BYTES`).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """The most a dataset file may hold, counted in decompressed bytes."""

    max_bytes: int = 512 * MIB
    """The whole file, once decompressed; past it the import is refused."""
    max_line_bytes: int = 16 * MIB
    """One line of JSONL or CSV, one record of a JSON file or one row of Parquet or Arrow
    data; past it the import is refused."""
    max_group_bytes: int = 256 * MIB
    """One Parquet row group or Arrow record batch, uncompressed: what is read at once."""

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_line_bytes < 1 or self.max_group_bytes < 1:
            raise ValueError("read limits must be at least one byte")


def shown_size(n_bytes: int) -> str:
    """'16 MiB', '64 KiB', '900 bytes': a limit as a message shows it."""
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.4g} {unit}"
    return f"{n_bytes:,} bytes"

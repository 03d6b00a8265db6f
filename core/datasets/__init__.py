"""Reading preference-data files into neutral records, streamed, with no database.

    for entry in read_dataset(Path("pairs.jsonl")):
        if isinstance(entry, Skipped):
            print(entry.reason)          # "line 7: missing field 'chosen'"
        else:
            entry.query, entry.responses, entry.labels

File types: .jsonl (line by line), .json (an array, read record by record with
ijson), .csv/.tsv (list fields as JSON in the cell); gzip is read transparently.
Shapes (`shape=` forces one, otherwise the first record's keys decide):

- chosen_rejected: {prompt|query|question|input, chosen, rejected}; the prompt
  may be a list of {role, content} turns and each reply one assistant turn (TRL).
- responses_best: {prompt, responses, best}; best a 0-based index, null or "tie"
  (a tie), absent (no label); optional context [{role, content}].
- hh_rlhf: {chosen, rejected} whole "\\n\\nHuman: … \\n\\nAssistant: …" transcripts.
- llmbar: {input, output_1, output_2, label 1|2}; category = the file's name.
- judgebench: {pair_id, question, response_A, response_B, label "A>B"|"B>A"|"A=B"}.
- pandalm: {idx, instruction, input, response1, response2, annotator1..3 (0 tie,
  1, 2)}: three annotator labels and no ground truth.

Chosen/rejected pairs are put in a fixed hash order (not chosen-first) so that
position says nothing about quality. A bad record becomes a `Skipped` naming
its line and reading goes on; an item whose responses are identical is skipped.
Where the file itself breaks (a JSON array cut off, a corrupt gzip stream) the
records before the break are yielded, then one `Skipped` naming where it broke;
if nothing at all can be read, InputError is raised instead. The file type,
the shape and the first record are checked when `read_dataset` is called, so
those errors raise at once; the rest is read as the iterator is consumed.
Memory stays bounded: a file past its `ReadLimits` (decompressed size, one
line or JSON record) raises InputError naming the limit when reading reaches it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from itertools import chain
from pathlib import Path

from core.datasets.fields import RawRecord, describe
from core.datasets.limits import ReadLimits
from core.datasets.records import Skipped, SourceItem, SourceLabel
from core.datasets.shapes import SHAPE_NAMES, SHAPES, Shape, detect_shape, shape_named
from core.datasets.sources import read_raw
from core.errors import InputError

__all__ = ["SHAPE_NAMES", "ReadLimits", "Skipped", "SourceItem", "SourceLabel", "read_dataset"]

MAX_LEADING_SKIPS = 100  # unreadable records before the first good one: a wrong file


def read_dataset(
    path: Path, shape: str | None = None, limits: ReadLimits | None = None
) -> Iterator[SourceItem | Skipped]:
    """The items and skipped records of a dataset file, in file order (streamed),
    read within `limits` (default: `ReadLimits()`)."""
    path = Path(path)
    forced = shape_named(shape) if shape is not None else None
    raw = read_raw(path, limits)
    leading: list[Skipped] = []
    try:
        first = _first_record(path, raw, leading)
        chosen = forced or _detect(path, first)
    except BaseException:
        raw.close()
        raise
    return _items(chosen, leading, chain((first,), raw))


def _first_record(
    path: Path, raw: Generator[RawRecord | Skipped, None, None], leading: list[Skipped]
) -> RawRecord:
    for entry in raw:
        if isinstance(entry, RawRecord):
            return entry
        leading.append(entry)
        if len(leading) >= MAX_LEADING_SKIPS:
            raise InputError(
                f"none of the first {MAX_LEADING_SKIPS} records of {path} can be read; "
                f"is it a dataset file? ({leading[0].reason})"
            )
    if leading:
        reasons = "; ".join(s.reason for s in leading[:3])
        raise InputError(f"nothing can be read from {path}: {reasons}")
    raise InputError(f"{path} is empty: it holds no records")


def _detect(path: Path, first: RawRecord) -> Shape:
    if not isinstance(first.data, dict):
        raise InputError(
            f"{path}: {first.where} is {describe(first.data)}, but each record must be "
            "an object with the record's fields"
        )
    found = detect_shape(first.data.keys())
    if found is None:
        keys = ", ".join(sorted(map(str, first.data))) or "none"
        known = "; ".join(s.signature for s in SHAPES)
        raise InputError(
            f"cannot tell the shape of the records in {path}: the first record has the "
            f"keys {keys}. Known shapes: {known}. Rename the fields, or pass shape= "
            "to force one"
        )
    return found


def _items(
    shape: Shape, leading: list[Skipped], rest: Iterable[RawRecord | Skipped]
) -> Iterator[SourceItem | Skipped]:
    yield from leading
    for entry in rest:
        yield entry if isinstance(entry, Skipped) else shape.item_or_skip(entry)

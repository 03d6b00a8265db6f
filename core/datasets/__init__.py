"""Reading preference-data files into neutral records, streamed, with no database.

    for entry in read_dataset(Path("pairs.jsonl")):
        if isinstance(entry, Skipped):
            print(entry.reason)          # "line 7: missing field 'chosen'"
        else:
            entry.query, entry.responses, entry.labels

File types: .jsonl (line by line), .json (an array, read record by record with
ijson), .csv/.tsv (list fields as JSON in the cell); gzip is read transparently.
Shapes and presets (`shape=` names one, otherwise the first record's keys
decide; `core.datasets.presets` lists them), or a `FieldMap` of the fields to
roles (`mapping=`; `core.datasets.field_map`):

- chosen_rejected: {prompt|query|question|input, chosen, rejected}; the prompt
  may be a list of {role, content} turns; each reply a string, a conversation
  (its last assistant turn is the response), or a list of either (best-of-n,
  RewardBench 2: all responses kept; one chosen is the best response, several
  chosen are the item's correct responses, `core.labels.Accepted`).
- responses_best: {prompt, responses, best}; best a 0-based index, null or "tie"
  (a tie), a list of indices (the correct responses of a best-of-n item), absent
  (no label); optional context [{role, content}].
- hh_rlhf: {chosen, rejected} whole "\\n\\nHuman: … \\n\\nAssistant: …" transcripts,
  or whole conversations (TRL's implicit prompt).
- llmbar: {input, output_1, output_2, label 1|2}; category = the file's name.
- judgebench: {pair_id, question, response_A, response_B, label "A>B"|"B>A"|"A=B"}.
- pandalm: {idx, instruction, input, response1, response2, annotator1..3 (0 tie,
  1, 2)}: three annotator labels and no ground truth.
- presets: chatbot_arena, mt_bench (conversations that differ before their last
  reply, as MT-Bench's second turn: `core.datasets.diverging`), helpsteer2,
  helpsteer3, ultrafeedback, ultrafeedback_binarized (detected), rewardbench,
  rewardbench2, trl, trl_implicit (by name). An unknown shape raises `UnknownShapeError` with a
  likely mapping.

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

from core.datasets.field_map import FieldMap, LabelValues, parse_roles
from core.datasets.field_paths import top_key
from core.datasets.fields import RawRecord, describe
from core.datasets.limits import ReadLimits
from core.datasets.presets import (
    FORMAT_NAMES,
    FORMATS,
    detect_format,
    format_named,
    is_partial,
    mapped_format,
)
from core.datasets.records import Skipped, SourceItem, SourceLabel
from core.datasets.shapes import SHAPE_NAMES, Shape
from core.datasets.sources import read_raw
from core.datasets.suggest import UnknownShapeError, suggest_map
from core.errors import InputError

__all__ = [
    "FORMAT_NAMES",
    "SHAPE_NAMES",
    "FieldMap",
    "LabelValues",
    "ReadLimits",
    "Skipped",
    "SourceItem",
    "SourceLabel",
    "UnknownShapeError",
    "detected_format",
    "parse_roles",
    "read_dataset",
]

MAX_LEADING_SKIPS = 100  # unreadable records before the first good one: a wrong file


def read_dataset(
    path: Path,
    shape: str | None = None,
    limits: ReadLimits | None = None,
    mapping: FieldMap | None = None,
) -> Iterator[SourceItem | Skipped]:
    """The items and skipped records of a dataset file, in file order (streamed),
    read within `limits` (default: `ReadLimits()`). `shape` names a shape or a
    preset (detected from the first record if None); `mapping` maps the fields
    itself, or, when it names no responses, changes the roles of the preset."""
    path = Path(path)
    forced = format_named(shape) if shape is not None else None
    if mapping is not None and (forced is not None or not is_partial(mapping)):
        forced = mapped_format(mapping, forced)
    raw = read_raw(path, limits)
    leading: list[Skipped] = []
    try:
        first = _first_record(path, raw, leading)
        chosen = forced or _detect(path, first)
        if mapping is not None and forced is None:  # roles of the detected preset changed
            chosen = mapped_format(mapping, chosen)
        if mapping is not None:
            _check_fields(path, first, chosen)
    except BaseException:
        raw.close()
        raise
    return _items(chosen, leading, chain((first,), raw))


def detected_format(path: Path, limits: ReadLimits | None = None) -> str:
    """The name of the shape or preset the first record of `path` is read as;
    `UnknownShapeError` (with a likely mapping) when none fits."""
    path = Path(path)
    raw = read_raw(path, limits)
    try:
        return _detect(path, _first_record(path, raw, [])).name
    finally:
        raw.close()


def _check_fields(path: Path, first: RawRecord, shape: Shape) -> None:
    """A mapping that names a field the first record lacks is refused at once."""
    if not isinstance(first.data, dict) or shape.field_map is None:
        return
    missing = [
        path for path in shape.field_map.required_paths()
        if path not in first.data and top_key(path) not in first.data
    ]
    if missing:
        keys = ", ".join(sorted(map(str, first.data))) or "none"
        raise InputError(
            f"{path}: the mapping reads the field(s) {', '.join(missing)}, but {first.where} "
            f"has no such field; its fields are: {keys}"
        )


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
    found = detect_format(first.data.keys())
    if found is None:
        keys = ", ".join(sorted(map(str, first.data))) or "none"
        known = "; ".join(s.signature for s in FORMATS if s.detect)
        suggestion = suggest_map(first.data)
        advice = (
            f"Map the fields to roles; probably: {suggestion.cli_args()} (check it against "
            "the data, the label values above all)"
            if suggestion is not None
            else "Map the fields to roles (query, responses or chosen and rejected, best)"
        )
        raise UnknownShapeError(
            f"cannot tell the shape of the records in {path}: the first record has the "
            f"keys {keys}. Known shapes: {known}. {advice}, or choose a preset by name",
            tuple(sorted(map(str, first.data))),
            suggestion,
        )
    return found


def _items(
    shape: Shape, leading: list[Skipped], rest: Iterable[RawRecord | Skipped]
) -> Iterator[SourceItem | Skipped]:
    yield from leading
    for entry in rest:
        yield entry if isinstance(entry, Skipped) else shape.item_or_skip(entry)

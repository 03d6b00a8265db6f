"""Exporting a dataset with its labels and the judge's verdicts in the formats
other tools read; each reads back with `grm-studio import` as the same items
and labels.

- **trl**: TRL's standard preference JSONL, {prompt, chosen, rejected} strings;
  an item of n responses gives n-1 rows (its best against each other one), a
  best-of-n item with c correct responses c * (n-c) (each correct one against
  each incorrect one).
  Items with earlier turns need the conversational form.
- **trl-conversational**: the same with prompt [{role, content}, ...] (the
  earlier turns, then the query) and chosen/rejected [{assistant turn}].
  Both add id, category and judge_prefers ("chosen", "rejected", "tie",
  "neither" of the two, or null when not judged).
- **parquet**: one row per item, as Hugging Face `datasets` loads it: prompt,
  context, responses, reference, best ("0", "1", … or "tie"; "" when unlabelled; a
  best-of-n item's correct responses as a JSON list, "[0, 2]"),
  label_source, and the judge's model, winner, tie, totals and per-sample scores.
- **comparator**: the JSON file PAIR's LLM Comparator opens, for judged items
  of two responses: input_text (the query; earlier turns are shown as the
  custom field "context" and not read back), output_text_a/b, score (the
  judge's mean per-sample verdict: +1.5 A better, -1.5 B better, 0 a tie) and
  individual_rater_scores (each sample, with its critique as the rationale);
  the item's label is the custom field "label" (A, B, tie or empty).

Items an export cannot hold are left out and counted by reason; only an item's
label (`core.labels`, the one rule) is exported as its label. Files are written
whole or not at all (`core.files.atomic_write`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from core.errors import InputError
from core.files import atomic_write
from core.labels import LABELLED_A_TIE, Accepted, ItemLabel, correct_of
from core.store.export_items import ExportItem, JudgeVerdict, export_items

FORMATS = ("trl", "trl-conversational", "parquet", "comparator")
UNLABELLED = "no label"
HAS_CONTEXT = "earlier turns (export as trl-conversational)"
NOT_A_PAIR = "not two responses"
NOT_JUDGED = "not judged"
NO_VALID_SAMPLE = "no parseable judge sample"
_ROWS_PER_GROUP = 500


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote, and which items it left out and why."""

    format: str
    path: Path
    items: int  # the dataset's items read
    written: int  # rows or examples written
    left_out: tuple[tuple[str, int], ...]  # (reason, items)

    def summary(self) -> str:
        text = f"wrote {self.written} {self.format} record(s) from {self.items} item(s) to {self.path}"
        if self.left_out:
            text += "; left out: " + ", ".join(f"{reason}: {n}" for reason, n in self.left_out)
        return text


def export_preferences(engine: Engine, fmt: str, path: Path, dataset: str) -> ExportReport:
    """Write `dataset` to `path` as `fmt` (one of FORMATS); see the module docstring."""
    writers: dict[str, Callable[[Iterator[ExportItem], Path, Counter[str]], tuple[int, int]]] = {
        "trl": lambda items, p, left: _write_trl(items, p, left, conversational=False),
        "trl-conversational": lambda items, p, left: _write_trl(items, p, left,
                                                                conversational=True),
        "parquet": _write_parquet,
        "comparator": lambda items, p, left: _write_comparator(items, p, left, dataset),
    }
    if fmt not in writers:
        raise InputError(f"unknown export format '{fmt}'; one of {', '.join(FORMATS)}")
    left: Counter[str] = Counter()
    read, written = writers[fmt](export_items(engine, dataset), path, left)
    return ExportReport(fmt, path, read, written, tuple(sorted(left.items())))


# --- TRL ---------------------------------------------------------------------------------


def _write_trl(
    items: Iterable[ExportItem], path: Path, left: Counter[str], *, conversational: bool
) -> tuple[int, int]:
    read = written = 0
    with atomic_write(path) as out:
        for item in items:
            read += 1
            label = item.label
            if not isinstance(label, ItemLabel):
                left[UNLABELLED] += 1
            elif label.best is None:
                left[LABELLED_A_TIE] += 1
            elif item.context and not conversational:
                left[HAS_CONTEXT] += 1
            else:
                for row in _trl_rows(item, label.best, conversational):
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    written += 1
    return read, written


def _trl_rows(
    item: ExportItem, best: int | Accepted, conversational: bool
) -> Iterator[dict[str, Any]]:
    def reply(text: str) -> str | list[dict[str, str]]:
        return [{"role": "assistant", "content": text}] if conversational else text

    prompt: str | list[dict[str, str]] = item.query
    if conversational:
        prompt = [*(t.model_dump() for t in item.context), {"role": "user", "content": item.query}]
    correct = correct_of(best)
    for c in correct:
        for j, text in enumerate(item.responses):
            if j not in correct:
                yield {
                    "prompt": prompt,
                    "chosen": reply(item.responses[c]),
                    "rejected": reply(text),
                    "id": item.external_id,
                    "category": item.category,
                    "judge_prefers": _prefers(item.verdict, c, j),
                }


def _prefers(verdict: JudgeVerdict | None, chosen: int, rejected: int) -> str | None:
    if verdict is None or verdict.winner is None:
        return None
    if verdict.tie:
        return "tie"
    return {chosen: "chosen", rejected: "rejected"}.get(verdict.winner, "neither")


# --- Hugging Face parquet -------------------------------------------------------------------


def _parquet_schema() -> Any:
    import pyarrow as pa

    turn = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("item_id", pa.int64()), ("id", pa.string()), ("category", pa.string()),
        ("prompt", pa.string()), ("context", pa.list_(turn)),
        ("responses", pa.list_(pa.string())), ("reference", pa.string()), ("best", pa.string()),
        ("label_source", pa.string()), ("judge_model", pa.string()),
        ("judge_winner", pa.int64()), ("judge_tie", pa.bool_()),
        ("judge_totals", pa.list_(pa.int64())), ("judge_scores", pa.list_(pa.list_(pa.int64()))),
    ])


def _parquet_row(item: ExportItem) -> dict[str, Any]:
    label, verdict = item.label, item.verdict
    best = ""
    if isinstance(label, ItemLabel):
        best = ("tie" if label.best is None else json.dumps(list(label.best.indices))
                if isinstance(label.best, Accepted) else str(label.best))
    return {
        "item_id": item.item_id, "id": item.external_id, "category": item.category,
        "prompt": item.query, "context": [t.model_dump() for t in item.context],
        "responses": list(item.responses), "reference": item.reference, "best": best,
        "label_source": label.source if isinstance(label, ItemLabel) else None,
        "judge_model": verdict.model if verdict else None,
        "judge_winner": verdict.winner if verdict else None,
        "judge_tie": verdict.tie if verdict else None,
        "judge_totals": list(verdict.totals) if verdict else None,
        "judge_scores": [list(s.scores) for s in verdict.samples if s.scores is not None]
        if verdict else None,
    }


def _write_parquet(items: Iterable[ExportItem], path: Path, left: Counter[str]) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    read = 0
    with atomic_write(path, "wb") as out, pq.ParquetWriter(out, schema) as writer:
        rows: list[dict[str, Any]] = []
        for item in items:
            read += 1
            rows.append(_parquet_row(item))
            if len(rows) >= _ROWS_PER_GROUP:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows or not read:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    return read, read


# --- LLM Comparator --------------------------------------------------------------------------

_COMPARATOR_FIELDS = [
    {"name": "item_id", "type": "string"}, {"name": "id", "type": "string"},
    {"name": "label", "type": "category"}, {"name": "context", "type": "text"},
    {"name": "judge_model", "type": "category"},
]


def _write_comparator(
    items: Iterable[ExportItem], path: Path, left: Counter[str], dataset: str
) -> tuple[int, int]:
    read = written = 0
    with atomic_write(path) as out:
        _comparator_head(out, dataset)
        for item in items:
            read += 1
            reason, example = _comparator_example(item)
            if example is None:
                left[reason] += 1
                continue
            out.write(("" if not written else ",\n") + json.dumps(example, ensure_ascii=False))
            written += 1
        out.write("\n]}\n")
    return read, written


def _comparator_head(out: IO[str], dataset: str) -> None:
    metadata = {"source_path": f"GRM Studio dataset '{dataset}'",
                "custom_fields_schema": _COMPARATOR_FIELDS}
    models = [{"name": "Response A"}, {"name": "Response B"}]
    out.write(f'{{"metadata": {json.dumps(metadata)}, "models": {json.dumps(models)}, '
              '"examples": [\n')


def _comparator_example(item: ExportItem) -> tuple[str, dict[str, Any] | None]:
    verdict = item.verdict
    if len(item.responses) != 2:
        return NOT_A_PAIR, None
    if verdict is None:
        return NOT_JUDGED, None
    samples = [(s, _sample_score(s.scores)) for s in verdict.samples if s.scores is not None]
    if not samples:
        return NO_VALID_SAMPLE, None
    label = ""
    if isinstance(item.label, ItemLabel) and not isinstance(item.label.best, Accepted):
        label = "tie" if item.label.best is None else "AB"[item.label.best]
    return "", {
        "input_text": item.query,
        "tags": [item.category] if item.category else [],
        "output_text_a": item.responses[0],
        "output_text_b": item.responses[1],
        "score": sum(score for _, score in samples) / len(samples),
        "individual_rater_scores": [
            {"is_flipped": s.flipped, "score": score, "rationale": s.critique}
            for s, score in samples
        ],
        "custom_fields": {
            "item_id": str(item.item_id), "id": item.external_id or "", "label": label,
            "context": "\n\n".join(f"{t.role}: {t.content}" for t in item.context),
            "judge_model": verdict.model,
        },
    }


def _sample_score(scores: tuple[int, ...] | None) -> float:
    """+1.5 when the sample scores A above B, -1.5 for the reverse, 0 for equal scores."""
    assert scores is not None
    return 1.5 if scores[0] > scores[1] else -1.5 if scores[1] > scores[0] else 0.0

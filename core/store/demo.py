"""The demo dataset a first start on an empty database loads, so that the
studio shows something real at once (LLMBar-Natural, MIT; see data/demo/SOURCE.md),
and the studio's own judge's stored judgements of it (`<demo>-judgements.jsonl`,
written by `grm-studio recipe --stage demo`), so that Insights has data at once.

The judgements file is gzipped JSON lines: the item's content hash and the
`Judgement` as the engine returned it."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.files import atomic_write
from core.store.importing import ImportReport, dataset_id, import_file
from core.store.judgements import save_judgement
from core.store.schema import Dataset, Item, JudgementRow
from core.types import Judgement

DEMO_DATASET = "demo-llmbar-natural"


def ensure_demo_dataset(engine: Engine, path: Path) -> ImportReport | None:
    """Import the demo file when the store has no dataset yet (and the file is
    there: an installed copy of GRM Studio may not carry it); None otherwise."""
    if not path.is_file():
        return None
    with Session(engine) as session:
        if session.scalar(select(func.count(Dataset.id))):
            return None
    try:
        return import_file(engine, path, DEMO_DATASET)
    except IntegrityError:  # another process loaded it at the same moment
        return None


@dataclass(frozen=True)
class StoredJudgement:
    content_hash: str  # the demo item's (`core.store.importing.content_hash`)
    judgement: Judgement


def demo_judgements_path(demo_file: Path) -> Path:
    return demo_file.with_name(f"{demo_file.stem}-judgements.jsonl.gz")


def read_demo_judgements(path: Path) -> Iterator[StoredJudgement]:
    """The stored judgements (gzip, one member per batch written); what a killed
    writer left unfinished at the end, a cut line or a cut member, is left out."""
    if not path.is_file():
        return
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        while True:
            try:
                line = handle.readline()
            except (EOFError, gzip.BadGzipFile, zlib.error):
                return
            if not line.endswith("\n"):
                return
            row = json.loads(line)
            yield StoredJudgement(row["content_hash"],
                                  Judgement.model_validate(row["judgement"]))


def append_demo_judgements(path: Path, rows: Iterable[tuple[str, Judgement]]) -> None:
    """Append (content hash, judgement) rows as one gzip member, complete once this
    returns."""
    with gzip.open(path, "at", encoding="utf-8") as handle:
        _write(handle, rows)


def write_demo_judgements(path: Path, rows: Iterable[tuple[str, Judgement]]) -> None:
    """Replace the file with `rows` (written aside and renamed into place)."""
    with atomic_write(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as handle:
        _write(handle, rows)


def _write(handle: IO[str], rows: Iterable[tuple[str, Judgement]]) -> None:
    for content_hash, judgement in rows:
        handle.write(json.dumps({"content_hash": content_hash,
                                 "judgement": judgement.model_dump(mode="json")},
                                ensure_ascii=False) + "\n")


def ensure_demo_judgements(engine: Engine, path: Path) -> int:
    """Store the demo's judgements when the demo dataset is there and none of its
    items is judged yet (all in one transaction); how many were stored."""
    with Session(engine) as session, session.begin():
        ds_id = dataset_id(session, DEMO_DATASET)
        if ds_id is None or not path.is_file():
            return 0
        judged = session.scalar(select(func.count(JudgementRow.id)).join(
            Item, JudgementRow.item_id == Item.id).where(Item.dataset_id == ds_id))
        if judged:
            return 0
        items = dict(session.execute(
            select(Item.content_hash, Item.id).where(Item.dataset_id == ds_id)).all())
        stored = 0
        for found in read_demo_judgements(path):
            if (item_id := items.get(found.content_hash)) is not None:
                save_judgement(session, found.judgement, item_id=item_id)
                stored += 1
        return stored


def demo_example(engine: Engine) -> int | None:
    """The judgement the read-only demo opens on: the latest stored judgement of the
    first judged demo item (None when the demo has none)."""
    with Session(engine) as session:
        return session.scalar(
            select(JudgementRow.id).join(Item, JudgementRow.item_id == Item.id)
            .join(Dataset, Item.dataset_id == Dataset.id).where(Dataset.name == DEMO_DATASET)
            .order_by(Item.id, JudgementRow.id.desc()).limit(1))

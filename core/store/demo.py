"""The demo dataset a first start on an empty database loads, so that the
studio shows something real at once (LLMBar-Natural, MIT; see data/demo/SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store.importing import ImportReport, import_file
from core.store.schema import Dataset

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

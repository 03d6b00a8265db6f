"""A scripted judge that reads the reference answer, and a dataset where some items
have one, so that evaluating with references shown and hidden gives known figures
(shared by the core, CLI and Insights tests of reference-answer evaluation)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core import ScriptedBackend
from core.progress import GenerationWatch
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.schema import Dataset, Item
from core.types import Completion, SamplingParams

EASY = "[easy]"  # in a query: the judge gets it right without a reference too
_RESPONSE = re.compile(r"\[The Begin of Response(?: \d+)?\]\n(.*?)\n\[The End of Response", re.DOTALL)
_REFERENCE = re.compile(r"\[The Begin of Reference Answer\]\n(.*?)\n\[The End of Reference", re.DOTALL)


def right(i: int) -> str:
    return f"right answer {i}"


def wrong(i: int) -> str:
    return f"wrong answer {i}"


class ReadsTheReference(ScriptedBackend):
    """Shown a reference answer, it scores the response equal to it highest (right);
    without one, the right response on EASY queries and the wrong one on the others.
    Any number of samples, in any shown order."""

    def __init__(self, name: str = "reads-the-reference") -> None:
        super().__init__([], name=name)

    def generate(self, prompts: Sequence[str], params: SamplingParams, *,
                 assistant_prefix: str = "", watch: GenerationWatch | None = None,
                 ) -> list[Completion]:
        self.prompts.extend(prompts)
        return [Completion(text=self.reply(p), finish_reason="stop") for p in prompts]

    @staticmethod
    def reply(prompt: str) -> str:
        shown = _RESPONSE.findall(prompt)
        reference = _REFERENCE.search(prompt)
        if reference is not None:
            picked = reference.group(1)
        else:
            picked = next(t for t in shown if t.startswith("right" if EASY in prompt else "wrong"))
        scores = ", ".join("9" if text == picked else "2" for text in shown)
        return f"Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{scores}}}"


# (easy, has a reference) per item; the right response is first on even items.
ITEMS = [(i < 4, True) for i in range(12)] + [(True, False), (False, False), (False, False)]
WITH_REFERENCE = 12
RIGHT_SHOWN = 12  # of the items with a reference: right with it shown (all)
RIGHT_HIDDEN = 4  # and with it hidden (the easy ones)
UNLABELLED = 15  # one more item with a reference but no label


def records() -> list[dict[str, Any]]:
    rows = []
    for i, (easy, has_reference) in enumerate(ITEMS):
        responses = [right(i), wrong(i)] if i % 2 == 0 else [wrong(i), right(i)]
        row: dict[str, Any] = {"prompt": f"question {i} {EASY if easy else ''}",
                               "responses": responses, "best": responses.index(right(i))}
        if has_reference:
            row["reference"] = right(i)
        rows.append(row)
    rows.append({"prompt": f"question {UNLABELLED}", "responses": [right(15), wrong(15)],
                 "reference": right(15)})
    return rows


def import_references(engine: Engine, folder: Path, dataset: str = "refs") -> list[int]:
    """Import `records()` into `dataset`; the item ids in order."""
    path = folder / f"{dataset}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    import_file(engine, path, dataset)
    with Session(engine) as session:
        return list(session.scalars(select(Item.id).join(Dataset)
                                    .where(Dataset.name == dataset).order_by(Item.id)))


@contextmanager
def references_store(tmp_path: Path) -> Iterator[tuple[Engine, list[int]]]:
    """A fresh SQLite store with dataset 'refs' imported; the engine and its item ids."""
    engine = make_engine(f"sqlite:///{tmp_path / 'refs.db'}")
    upgrade(engine)
    try:
        yield engine, import_references(engine, tmp_path)
    finally:
        engine.dispose()

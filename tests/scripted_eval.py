"""Evaluation test data: a toy labelled dataset and the completions a replaying
backend gives for its evaluation, so that every number is known exactly (shared
by the evaluation, `grm-studio eval` and Insights tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core import Backend, Judge, SamplingParams, ScriptedBackend
from core.engine import shown_orders
from core.evaluation import Evaluation
from core.service import run_evaluation
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.labels import add_label
from core.store.schema import Dataset, Item
from core.types import JudgeInput, Sample

K_MAX = 4
NO_SCORES = "Specific Criteria: c\nAnalysis: I cannot decide."
# Per item, each sample's scores in ORIGINAL response order (None: an unparseable sample).
SAMPLED = {
    "A": [(8, 3), None, (2, 9), (6, 5)],  # label 0 (the dataset's)
    "B": [(5, 5), (3, 8), (4, 6), (9, 1)],  # label 0 (alice), the dataset says 1
    "C": [(1, 2, 9), (2, 9, 3), (5, 5, 5), (9, 9, 1)],  # best of three, label 2
    "D": [(7, 1), (7, 1), (7, 1), (7, 1)],  # no label: left out
}
GREEDY = {"A": (9, 1), "B": (2, 8), "C": (1, 1, 1), "D": (3, 3)}
RECORDS = [
    {"prompt": "qa?", "responses": ["a0", "a1"], "best": 0, "category": "math"},
    {"prompt": "qb?", "responses": ["b0", "b1"], "best": 1, "category": "math"},
    {"prompt": "qc?", "responses": ["c0", "c1", "c2"], "best": 2, "category": "code"},
    {"prompt": "qd?", "responses": ["d0", "d1"], "category": "code"},
]


def shown_text(scores: Sequence[int] | None, order: Sequence[int]) -> str:
    """What the judge writes for `scores` (original order) when shown `order`."""
    if scores is None:
        return NO_SCORES
    shown = ", ".join(str(scores[i]) for i in order)
    return f"Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{shown}}}"


def script(seed: int = 0) -> list[str]:
    """The completions in the order the evaluation asks for them: every item's
    k_max samples (item by item), then every item's greedy sample."""
    texts = []
    for rows in SAMPLED.values():
        orders = shown_orders(len(rows[0] or (0, 0)), K_MAX, seed)
        texts += [shown_text(r, o) for r, o in zip(rows, orders, strict=True)]
    for scores in GREEDY.values():
        texts.append(shown_text(scores, shown_orders(len(scores), 1, seed)[0]))
    return texts


class LaterIsBetter:
    """A deterministic meta scorer: it rates a sample by its index (later is higher)."""

    def score(self, item: JudgeInput, samples: Sequence[Sample]) -> list[float]:
        return [float(s.index) for s in samples]


@contextmanager
def toy_store(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite store holding RECORDS as dataset 'toy', with alice's label on item B."""
    engine = make_engine(f"sqlite:///{tmp_path / 'eval.db'}")
    upgrade(engine)
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    import_file(engine, path, "toy")
    with Session(engine) as session:
        ids = list(session.scalars(select(Item.id).join(Dataset).order_by(Item.id)))
    add_label(engine, ids[1], "alice", 0)  # a human label wins over the dataset's
    try:
        yield engine
    finally:
        engine.dispose()


def evaluate(engine: Engine, backend: Backend | None = None, **options: Any) -> Evaluation:
    """Evaluate 'toy' at k = 1, 2, 4 by sum and meta voting, judged by `script()`."""
    judge = Judge(backend or ScriptedBackend(script()), rescue=False)
    options = {"ks": (1, 2, 4), "votings": ("sum", "meta"), "meta_scorer": LaterIsBetter(),
               **options}
    return run_evaluation(engine, judge, "toy", SamplingParams(k=1), **options)

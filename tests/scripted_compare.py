"""Two scripted judges that judged one dataset with written-down verdicts, so that
every judge-against-judge figure is known by hand (shared by the core, CLI and
Insights tests of `core.compare`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend
from core.engine import shown_orders
from core.service import judge_dataset
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.labels import add_label
from core.store.schema import Dataset, Item
from core.types import ModelInfo
from tests.scripted_eval import shown_text

# Per item: its labelled best response, then judge A's and judge B's one sample
# (scores in original order). Written so that every figure is known by hand.
ITEMS = [
    (0, (9, 2), (8, 3)),  # 0-5: both right
    (1, (2, 9), (1, 7)),
    (0, (7, 4), (6, 5)),
    (1, (3, 8), (2, 6)),
    (0, (9, 1), (9, 2)),
    (1, (4, 6), (3, 9)),
    (0, (8, 2), (2, 8)),  # 6, 7: only A right
    (1, (2, 8), (8, 2)),
    (0, (3, 7), (7, 3)),  # 8: only B right
    (1, (9, 2), (8, 1)),  # 9: both wrong, the same verdict
    (0, (2, 9), (5, 5)),  # 10: both wrong, B ties
    (1, (1, 9), (6, 6)),  # 11: only A right (B's tie is wrong)
]
UNLABELLED = ((4, 2), (4, 2))  # item 12: no label
TIED = ((5, 1), (5, 1))  # item 13: labelled a tie by alice
ONLY_A = (9, 1)  # item 14: judged by A only
EXPECTED = {"both_right": 6, "only_a": 3, "only_b": 1, "both_wrong": 2}
DIFFERING = [6, 7, 8, 10, 11]  # item positions whose verdicts differ


def _texts(rows: list[tuple[int, int]]) -> list[str]:
    order = shown_orders(2, 1, 0)[0]
    return [shown_text(r, order) for r in rows]


def _judge(name: str, rows: list[tuple[int, int]]) -> Judge:
    backend = ScriptedBackend(_texts(rows))
    backend.info = ModelInfo(name=name, backend="scripted", source=f"/judges/{name}")
    return Judge(backend, rescue=False)


def judge_two_ways(engine: Engine, folder: Path, dataset: str = "pairs") -> None:
    """Import ITEMS (and items 12-14) into `dataset` and have judge-a and judge-b
    judge it once (k=1), as ITEMS says; alice labels item 13 a tie."""
    records = [{"prompt": f"q{i}?", "responses": [f"r{i}a", f"r{i}b"], "best": best}
               for i, (best, _, _) in enumerate(ITEMS)]
    records += [{"prompt": f"q{i}?", "responses": [f"r{i}a", f"r{i}b"]} for i in (12, 13)]
    records.append({"prompt": "q14?", "responses": ["r14a", "r14b"], "best": 0})
    path = folder / f"{dataset}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    import_file(engine, path, dataset)
    with Session(engine) as session:
        ids = list(session.scalars(select(Item.id).join(Dataset)
                                   .where(Dataset.name == dataset).order_by(Item.id)))
    add_label(engine, ids[13], "alice", None)
    a_rows = [a for _, a, _ in ITEMS] + [UNLABELLED[0], TIED[0], ONLY_A]
    b_rows = [b for _, _, b in ITEMS] + [UNLABELLED[1], TIED[1]]
    params = SamplingParams(k=1)
    judge_dataset(engine, _judge("judge-a", a_rows), dataset, params)
    judge_dataset(engine, _judge("judge-b", b_rows), dataset, params, limit=len(b_rows))


@contextmanager
def two_judges_store(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite store with dataset 'pairs' judged by judge-a and judge-b."""
    engine = make_engine(f"sqlite:///{tmp_path / 'compare.db'}")
    upgrade(engine)
    judge_two_ways(engine, tmp_path)
    try:
        yield engine
    finally:
        engine.dispose()

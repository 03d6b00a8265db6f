"""RFT test data: labelled pairs imported into a store, and a scripted judge that
answers each item's trajectories as a plan says (shared by the RFT, training,
training-tab and fault tests)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend
from core.engine import shown_orders
from core.store.importing import import_file
from core.store.schema import Item
from core.training import RFTConfig
from core.training.rft_data import item_seed

PARAMS = SamplingParams(k=1, temperature=0.5, max_new_tokens=64)


def answer(original_scores: tuple[int, int], order: tuple[int, ...]) -> str:
    """A well-formed reply giving `original_scores` to the responses shown in `order`."""
    shown = ", ".join(str(original_scores[i]) for i in order)
    return f"Specific Criteria: be right (100%)\nAnalysis: compared them\nScores: \\boxed{{{shown}}}"


def orders(content_hash: str, config: RFTConfig, k: int, offset: int = 0) -> list[tuple[int, ...]]:
    """The orders the RFT builder shows an item's responses in, for k samples."""
    return shown_orders(2, k, item_seed(content_hash, config) + offset)


def import_pairs(engine: Engine, tmp_path: Path, n: int, dataset: str = "toy") -> list[Item]:
    """`n` pairs 'question i?' whose first response is the best, imported as `dataset`."""
    path = tmp_path / f"{dataset}.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"question {i}?", "responses": [f"good {i}", f"bad {i}"], "best": 0})
        + "\n" for i in range(n)
    ))
    import_file(engine, path, dataset)
    with Session(engine) as session:
        return list(session.scalars(select(Item).order_by(Item.id)))


def scripted_run(
    items: list[Item], config: RFTConfig, plan: dict[int, list[tuple[int, int] | str]]
) -> tuple[ScriptedBackend, Judge]:
    """A judge that answers item i's samples (then its hinted ones) as plan[i] says:
    a pair of original-order scores, or a raw string."""
    script = []
    for index, item in enumerate(items):
        steps = plan[index]
        main, hinted = steps[: config.n_rft], steps[config.n_rft :]
        for step, order in zip(main, orders(item.content_hash, config, config.n_rft), strict=True):
            script.append(step if isinstance(step, str) else answer(step, order))
        for step, order in zip(hinted, orders(item.content_hash, config, len(hinted), 1),
                               strict=True):
            script.append(step if isinstance(step, str) else answer(step, order))
    backend = ScriptedBackend(script)
    return backend, Judge(backend, rescue=False)

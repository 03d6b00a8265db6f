"""Best-of-n test data: RewardBench 2-shaped records written as Parquet from the dataset
card's schema, and the completions a replaying backend gives for them, so that every
best-of-n number is known exactly (shared by the best-of-n import, label and
evaluation tests).

RewardBench 2 publishes one row per prompt: id, prompt, chosen (a list), rejected (a
list), num_correct, num_incorrect, total_completions, models (a list) and subset. Its
best-of-4 subsets have one chosen and three rejected; its Ties subset several chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.datasets import SourceItem, read_dataset
from core.engine import shown_orders
from tests.scripted_eval import shown_text

COLUMNS = ("id", "prompt", "chosen", "rejected", "num_correct", "num_incorrect",
           "total_completions", "models", "subset")


def rb2_row(rid: str, prompt: str, chosen: list[str], rejected: list[str],
            subset: str) -> dict[str, Any]:
    """One row as RewardBench 2 publishes it."""
    n = len(chosen) + len(rejected)
    return {"id": rid, "prompt": prompt, "chosen": chosen, "rejected": rejected,
            "num_correct": len(chosen), "num_incorrect": len(rejected), "total_completions": n,
            "models": [f"model-{i}" for i in range(n)], "subset": subset}


ROWS = [
    rb2_row("f-1", "Capital of France?", ["Paris."], ["Lyon.", "Nice.", "Marseille."],
            "Factuality"),  # best-of-4: one correct answer, an ordinary best response
    rb2_row("t-1", "Name a prime below 5.", ["2", "3"], ["4", "1"], "Ties"),
    rb2_row("t-2", "Name a primary colour.", ["Red.", "Blue.", "Yellow."],
            ["Green.", "Purple."], "Ties"),
]
TOO_MANY = rb2_row("t-3", "Pick a number from 1 to 5.", ["1", "2", "3", "4", "5"],
                   ["6", "7", "8", "9", "10"], "Ties")  # ten responses: more than a prompt shows


def write_rb2(path: Path, rows: Sequence[dict[str, Any]] = ROWS) -> Path:
    """`rows` as a Parquet file with RewardBench 2's columns, lists as lists."""
    table = pa.Table.from_pylist(list(rows))
    assert tuple(table.column_names) == COLUMNS
    pq.write_table(table, path)
    return path


def stored_responses(path: Path) -> dict[str, tuple[str, ...]]:
    """id -> the responses in the order the store keeps them (a fixed hash order)."""
    return {e.external_id or "": e.responses for e in read_dataset(path)
            if isinstance(e, SourceItem)}


Plan = Mapping[str, Sequence[Mapping[str, int] | None]]  # id -> per sample: text -> score


def script(path: Path, plan: Plan, seed: int = 0) -> list[str]:
    """The completions a judgement of every item in `plan` (file order) asks for, each
    sample giving the scores `plan` says (None: an unparseable sample)."""
    responses = stored_responses(path)
    texts = []
    for rid, samples in plan.items():
        order_of = shown_orders(len(responses[rid]), len(samples), seed)
        for by_text, order in zip(samples, order_of, strict=True):
            scores = None if by_text is None else [by_text[r] for r in responses[rid]]
            texts.append(shown_text(scores, order))
    return texts


# Two samples per item (text -> score), chosen so that every rule shows:
PLAN: Plan = {
    # sample 2 is unparseable: the vote is sample 1 alone, right
    "f-1": [{"Paris.": 9, "Lyon.": 3, "Nice.": 2, "Marseille.": 1}, None],
    # sample 1: the correct ones tie among themselves above the rest: right.
    # The vote: 2 -> 12, 3 -> 17, 4 -> 12, 1 -> 3: a correct one ties an incorrect one
    "t-1": [{"2": 8, "3": 8, "4": 3, "1": 2}, {"2": 4, "3": 9, "4": 9, "1": 1}],
    # no valid sample: unscored
    "t-2": [None, None],
}

"""The recipe's RFT round: it draws only training-split pairs, samples them with the
judge through the RFT builder (strict rule, too-easy dropped, hinted sampling), keeps
a journal so that a killed round judges only what is left, and writes its export once.
The judge here reads each prompt and answers as the item's query asks (right, wrong,
or alternating), so every count below follows from what it was told to do."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from core import Judge, SamplingParams, ScriptedBackend
from core.config import Settings
from core.training.recipe import held_out
from core.training.recipe_rft import JOURNAL, RFTRound, RFTRoundConfig
from core.types import Completion

KINDS = ("QEASY", "QMIXED", "QHARD")


class Reader(ScriptedBackend):
    """Scores the GOOD response above the BAD one when the query says QEASY, never
    for QHARD, and every other sample for QMIXED."""

    def __init__(self) -> None:
        super().__init__([])
        self.samples = 0

    def generate(self, prompts: Sequence[str], params: SamplingParams, *,
                 assistant_prefix: str = "") -> list[Completion]:
        self.prompts.extend(prompts)
        replies = []
        for prompt in prompts:
            self.samples += 1
            right = "QEASY" in prompt or ("QMIXED" in prompt and self.samples % 2 == 0)
            good, bad = (9, 2) if right else (2, 9)
            first, second = (good, bad) if prompt.index("GOOD") < prompt.index("BAD") else (bad, good)
            replies.append(Completion(
                text=f"Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{first}, {second}}}",
                finish_reason="stop"))
        return replies


@pytest.fixture
def preferences(tmp_path: Path) -> Path:
    """An LLMBar-shaped file of 30 pairs, ten of each kind; the best is output_1 or 2."""
    root = tmp_path / "preferences"
    (root / "llmbar").mkdir(parents=True)
    rows = []
    for i in range(30):
        good, bad = f"GOOD answer {i}", f"BAD answer {i}"
        label = 1 + i % 2
        rows.append({"input": f"{KINDS[i % 3]} question {i}?",
                     "output_1": good if label == 1 else bad,
                     "output_2": bad if label == 1 else good, "label": label})
    (root / "llmbar" / "LLMBar_Adversarial_Neighbor.json").write_text(json.dumps(rows))
    return root


def make_round(tmp_path: Path, preferences: Path) -> RFTRound:
    config = RFTRoundConfig(items_per_source=100, max_new_tokens=32)
    return RFTRound(config, Settings(data_dir=tmp_path), tmp_path / "rft1", preferences)


def test_the_round_draws_only_training_pairs_and_exports_what_the_rule_accepts(
        tmp_path, preferences):
    stage = make_round(tmp_path, preferences)
    items = stage.items(stage.store())
    assert items and not any(held_out(i.content_hash) for i in items)
    assert len(items) == sum(1 for _ in range(30)) - len(
        [h for h in _all_hashes(stage) if held_out(h)])
    export = stage.export(Judge(Reader(), rescue=False))
    kinds = [next(k for k in KINDS if k in i.input.query) for i in items]
    counts = export.counts
    assert counts["items_train"] == len(items) and counts.get("items_validation", 0) == 0
    assert counts["items_too_easy"] == kinds.count("QEASY")
    # hard items: none accepted, so one hinted sample each (wrong again: not kept)
    assert counts["items_hinted"] == kinds.count("QHARD")
    assert counts.get("records_hinted", 0) == 0
    train = (export.path / "train.jsonl").read_text().splitlines()
    assert len(train) == counts["records_train"] > 0
    for line in train:
        record = json.loads(line)
        assert "QMIXED" in record["messages"][0]["content"]


def test_a_killed_round_judges_only_the_rest_and_the_export_is_written_once(
        tmp_path, preferences):
    stage = make_round(tmp_path, preferences)
    first = Reader()

    def kill_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stage.export(Judge(first, rescue=False), kill_after_three)
    journal = (tmp_path / "rft1" / JOURNAL).read_text().splitlines()
    assert len(journal) == 3 and not (tmp_path / "rft1" / "export.txt").exists()
    with (tmp_path / "rft1" / JOURNAL).open("a") as handle:
        handle.write('{"content_hash": "cut sho')  # a line cut by the kill
    second = Reader()
    export = stage.export(Judge(second, rescue=False))
    judged_again = set(second.prompts) & set(first.prompts)
    assert not judged_again
    assert export.counts["items_train"] == len(stage.items(stage.store()))
    untouched = Reader()
    assert stage.export(Judge(untouched, rescue=False)).path == export.path
    assert untouched.prompts == []


def test_the_round_refuses_a_split_other_than_the_held_out_rule():
    from core.training.rft_data import RFTConfig

    with pytest.raises(ValueError, match="held-out rule"):
        RFTRoundConfig(build=RFTConfig(validation_fraction=0.2))


def _all_hashes(stage: RFTRound) -> list[str]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from core.store.schema import Item

    with Session(stage.store()) as session:
        return list(session.scalars(select(Item.content_hash)))


class OtherReader(Reader):
    """The same behaviour under another model revision: a retrained start adapter."""

    def __init__(self) -> None:
        super().__init__()
        self.info = self.info.model_copy(update={"revision": "adapter-other"})


def test_a_round_started_from_another_adapter_samples_again_and_refuses_a_stale_export(
        tmp_path, preferences):
    from core.errors import InputError

    stage = make_round(tmp_path, preferences)

    def kill_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stage.export(Judge(Reader(), rescue=False), kill_after_two)
    rows = [json.loads(line) for line in (tmp_path / "rft1" / JOURNAL).read_text().splitlines()]
    assert {r["judge"] for r in rows} == {Reader().info.revision}
    other = OtherReader()
    export = stage.export(Judge(other, rescue=False))  # the journal's lines are another's
    assert len(other.prompts) >= 3 * export.counts["items_train"]  # every item sampled again
    assert export.card["judge"]["revision"] == "adapter-other"
    with pytest.raises(InputError, match="move that directory away"):
        stage.export(Judge(Reader(), rescue=False))

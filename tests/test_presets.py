"""Presets (issue 18 step 3): each published format imports as published, detected
where unambiguous and by name, from JSONL and from Parquet alike.

The fixtures (tests/fixtures/datasets/presets) are written from each dataset
card's schema; the expected items are written out by hand here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.datasets import (
    FORMAT_NAMES,
    Skipped,
    SourceItem,
    detected_format,
    read_dataset,
)
from core.labels import Accepted

PRESETS = Path(__file__).parent / "fixtures" / "datasets" / "presets"
TIE = "tie"
UNLABELLED = "unlabelled"

# file -> (format it is detected as, or None; name to choose it by; expected items as
# (query, number of earlier turns, sorted responses, best response's text or TIE (a
#  best-of-n item's correct responses: their sorted texts), labeller, category), reasons
#  of skipped records)
CASES: dict[str, tuple[str | None, str, list[tuple], list[str]]] = {
    "rewardbench": ("chosen_rejected", "rewardbench", [
        ("What is the boiling point of water at sea level in Celsius?", 0,
         ("100 degrees Celsius.", "90 degrees Celsius."), "100 degrees Celsius.", None,
         "alpacaeval-easy"),
        ("Write a haiku about autumn.", 0,
         ("Autumn is a season.",
          "Crisp leaves drift and fall\ngolden light on quiet paths\nthe year exhales slow"),
         "Crisp leaves drift and fall\ngolden light on quiet paths\nthe year exhales slow",
         None, "llmbar-natural"),
    ], []),
    "rewardbench2": ("chosen_rejected", "rewardbench2", [
        ("Who wrote 'Pride and Prejudice'?", 0,
         ("Charlotte Bronte wrote it.", "It was written by Charles Dickens.",
          "Jane Austen wrote it, published in 1813.", "Mary Shelley wrote it in 1818."),
         "Jane Austen wrote it, published in 1813.", None, "Factuality"),
        ("Name a primary colour.", 0, ("Blue.", "Green.", "Purple.", "Red."),
         ("Blue.", "Red."), None, "Ties"),  # several chosen: each is correct (best-of-n)
    ], []),
    "ultrafeedback": ("ultrafeedback", "ultrafeedback", [
        ("Give one use of baking soda.", 0,
         ("As a leavening agent in baking.", "Cleaning ovens.", "Eating it raw by the spoon.",
          "Nothing."), "As a leavening agent in baking.", None, "evol_instruct"),
        ("Say hello in French.", 0, ("Bonjour.", "Salut !"), TIE, None, "sharegpt"),
    ], []),
    "ultrafeedback_binarized": ("ultrafeedback_binarized", "ultrafeedback_binarized", [
        ("How many legs does a spider have?", 0, ("Eight.", "Six."), "Eight.", None, None),
        ("Suggest a name for a cat.", 0, ("Mittens.", "Whiskers."), TIE, None, None),
    ], []),
    "helpsteer2": ("helpsteer2", "helpsteer2", [
        ("Explain photosynthesis in one sentence.", 0,
         ("It is a plant thing.", "Plants turn light, water and CO2 into sugar and oxygen."),
         "Plants turn light, water and CO2 into sugar and oxygen.", None, None),
        ("List two fruits.", 0, ("Apple and pear.", "Apple."), "Apple and pear.", None, None),
        ("Say yes.", 0, ("Yes!", "Yes."), TIE, None, None),
    ], []),
    "helpsteer3": ("helpsteer3", "helpsteer3", [
        ("Now make it add three.", 2,
         ("def add(a, b): return a + b", "def add(a, b, c): return a + b + c"),
         "def add(a, b, c): return a + b + c", None, "code"),
        ("Is the sun a star?", 0, ("No.", "Yes, the Sun is a G-type star."),
         "Yes, the Sun is a G-type star.", None, "general"),
    ], []),
    "mt_bench": ("mt_bench", "mt_bench", [
        ("Write a travel blog intro about Hawaii.", 0,
         ("Aloha! Hawaii greets you with turquoise water.", "Hawaii is a state."),
         "Aloha! Hawaii greets you with turquoise water.", "judge:expert_3", None),
        # turn 2: the conversations differ from the first reply on (core.datasets.diverging)
        ("Rewrite it starting every sentence with A.", 1,
         (("Assistant: Aloha! Hawaii greets you with turquoise water.\n\nUser: Rewrite it "
           "starting every sentence with A.\n\nAssistant: A warm breeze welcomes you."),
          ("Assistant: Hawaii is a state.\n\nUser: Rewrite it starting every sentence with "
           "A.\n\nAssistant: A state it is.")), TIE, "judge:author_1", "earlier turns differ"),
    ], []),
    "chatbot_arena": ("chatbot_arena", "chatbot_arena", [
        ("What is the capital of Japan?", 0, ("Kyoto.", "Tokyo."), "Tokyo.", None, "English"),
        ("Tell me a joke.", 0, ("Jokes are bad.", "No."), TIE, None, "English"),
        ("Hi", 0, ("Hello!", "Hey there."), TIE, None, "English"),
    ], []),
    "hh_rlhf": ("hh_rlhf", "hh_rlhf", [
        ("What's a good way to relax?", 0,
         ("A short walk or some deep breathing helps many people.",
          "Just ignore all your problems forever."),
         "A short walk or some deep breathing helps many people.", None, None),
    ], []),
    "trl_conversational": ("chosen_rejected", "trl", [
        ("What colour is the sky?", 1, ("It is blue.", "It is green."), "It is blue.", None,
         None),
    ], []),
    "llm_comparator": ("llm_comparator", "llm_comparator", [
        ("Which city should I visit in South Korea?", 0,
         ("You can visit Seoul, Busan, and Jeju.",
          "You can visit Seoul, the capital of South Korea."),
         "You can visit Seoul, Busan, and Jeju.", None, "Travel"),
        ("How do I draw a bar chart in Python?", 0,
         ("Call plt.bar from matplotlib.", "Use matplotlib: plt.bar(x, heights)."), TIE, None,
         "Coding"),
        ("Say something nice.", 0, ("Nice.", "You are doing great."), UNLABELLED, None, None),
    ], []),
    "trl_implicit": ("hh_rlhf", "trl_implicit", [
        ("What colour is the sky?", 0, ("It is blue.", "It is green."), "It is blue.", None,
         None),
    ], []),
}


def canon(item: SourceItem) -> tuple:
    if not item.labels:
        return (item.query, len(item.context), tuple(sorted(item.responses)), UNLABELLED, None,
                item.category)
    (label,) = item.labels
    best: str | tuple[str, ...] = TIE if label.best is None else tuple(
        sorted(item.responses[i] for i in label.best.indices)
    ) if isinstance(label.best, Accepted) else item.responses[label.best]
    return (item.query, len(item.context), tuple(sorted(item.responses)), best, label.labeller,
            item.category)


def fixture(stem: str) -> Path:
    (path,) = PRESETS.glob(f"{stem}.json*")
    return path


def read(path: Path, name: str | None) -> tuple[list[tuple], list[str]]:
    entries = list(read_dataset(path, name))
    items = [canon(e) for e in entries if isinstance(e, SourceItem)]
    return items, [e.reason for e in entries if isinstance(e, Skipped)]


def parquet_copy(source: Path, folder: Path) -> Path:
    from core.datasets.sources import read_raw

    records = [r.data for r in read_raw(source)]
    path = folder / f"{source.name.split('.')[0]}.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def test_every_fixture_is_covered():
    assert {p.name.split(".")[0] for p in PRESETS.glob("*.json*")} == set(CASES)


@pytest.mark.parametrize("stem", list(CASES))
def test_a_published_format_imports_detected_and_by_name(stem):
    detected, name, expected, reasons = CASES[stem]
    path = fixture(stem)
    assert detected_format(path) == detected
    assert read(path, None) == (expected, reasons)
    assert read(path, name) == (expected, reasons)


@pytest.mark.parametrize("stem", list(CASES))
def test_the_same_records_in_parquet_read_the_same(tmp_path, stem):
    _, name, expected, reasons = CASES[stem]
    path = parquet_copy(fixture(stem), tmp_path)
    assert read(path, name) == (expected, [r.replace("line", "row", 1) for r in reasons])


def test_every_preset_has_a_fixture():
    from core.datasets.presets import ALIASES
    from core.datasets.presets import PRESETS as NAMED

    covered = {name for _, name, _, _ in CASES.values()}
    assert {s.name for s in (*NAMED, *ALIASES)} <= covered
    assert covered <= set(FORMAT_NAMES)


def test_ultrafeedback_keeps_the_ratings_and_mt_bench_cuts_at_the_judged_turn(tmp_path):
    first, _ = list(read_dataset(PRESETS / "ultrafeedback.jsonl"))
    assert isinstance(first, SourceItem)
    assert sorted(first.ratings or ()) == [1.0, 1.25, 4.5, 4.75]
    record = json.loads((PRESETS / "mt_bench.jsonl").read_text().splitlines()[0])
    record["turn"] = 3
    path = tmp_path / "mt.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (skipped,) = list(read_dataset(path, "mt_bench"))
    assert isinstance(skipped, Skipped)
    assert skipped.reason == "line 1: 'conversation_a' has 2 user turn(s), so no turn 3"


def test_a_rejected_response_rated_above_the_chosen_is_refused(tmp_path):
    record = json.loads((PRESETS / "ultrafeedback_binarized.jsonl").read_text().splitlines()[0])
    record["score_rejected"] = 10.0
    path = tmp_path / "uf.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (skipped,) = list(read_dataset(path))
    assert isinstance(skipped, Skipped) and skipped.reason == (
        "line 1: the ratings (score_chosen, score_rejected) put a rejected response above "
        "every chosen one"
    )

"""Cold-start data: strong judges' critiques rewritten into the GRM format, and the
held-out rule that keeps evaluation items out of every training stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.datasets import Skipped, read_dataset
from core.parse import parse_output
from core.store.importing import content_hash
from core.training.coldstart import (
    TRUNCATION_MARK,
    ColdStartExample,
    CritiqueRecord,
    coldstart_example,
    coldstart_examples,
    read_critiques,
)
from core.training.recipe import JudgeRecipe, RecipeConfig, held_out
from core.types import ParsedOutput

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def record(**changes: object) -> CritiqueRecord:
    fields: dict[str, object] = {
        "source": "vicuna80_fastchat_reviews", "license": "Apache-2.0",
        "query": "How can I improve my time management skills?",
        "responses": ("Make a to-do list and prioritise.", "Sleep more."),
        "critique": "8 3\nAssistant 1 gave practical, relevant and accurate advice with detail. "
                 "Assistant 2 is unhelpful and does not address the question.",
        "scores": (8.0, 3.0), "best": 0, "judge": "gpt-4"}
    fields.update(changes)
    return CritiqueRecord(**fields)  # type: ignore[arg-type]


def made(rec: CritiqueRecord) -> ColdStartExample:
    example = coldstart_example(rec)
    assert isinstance(example, ColdStartExample), example
    return example


def parsed_original(example: ColdStartExample) -> tuple[int, ...]:
    """The completion's scores, read by the studio's own parser, in original order."""
    parse = parse_output(example.completion, len(example.shown_order))
    assert isinstance(parse, ParsedOutput), parse
    original = [0] * len(example.shown_order)
    for shown, score in enumerate(parse.scores):
        original[example.shown_order[shown]] = score
    return tuple(original)


def test_a_rewritten_critique_parses_with_all_three_parts_and_its_scores():
    example = made(record())
    parse = parse_output(example.completion, 2)
    assert isinstance(parse, ParsedOutput)
    assert parse.principles and "%" in parse.principles and parse.critique
    assert parse.missing_sections == ()
    assert parsed_original(example) == (8, 3)
    assert example.prompt.startswith("You are an impartial expert judge")


def test_references_follow_the_shown_order_and_verdict_marks_are_gone():
    texts = {}
    for query in (f"Question number {i}?" for i in range(12)):
        example = made(record(query=query, critique="Assistant A is accurate. Assistant B is "
                              "wrong about the facts.\n\nFinal Verdict: [[A]]",
                              scores=None, best=0))
        texts[example.shown_order] = example.completion
        assert "[[" not in example.completion and "Assistant" not in example.completion
        first = example.shown_order.index(0) + 1  # where the original first response is shown
        assert f"Response {first} is accurate" in example.completion
        assert f"Response {3 - first} is wrong" in example.completion
    assert set(texts) == {(0, 1), (1, 0)}  # both orders occur: no position is taught


def test_verdict_only_records_get_a_strict_winner_and_ties_stay_ties():
    for i in range(20):
        won = made(record(query=f"q{i}", scores=None, best=1))
        a, b = parsed_original(won)
        assert b > a >= 1 and b <= 10
        tied = made(record(query=f"q{i}", scores=None, best=None))
        a, b = parsed_original(tied)
        assert a == b


def test_half_point_scores_round_without_turning_a_win_into_a_tie():
    assert parsed_original(made(record(scores=(8.5, 8.0), best=0))) == (9, 8)
    assert parsed_original(made(record(scores=(8.0, 7.5), best=0))) == (8, 7)
    a, b = parsed_original(made(record(scores=(7.5, 8.0), best=1)))
    assert b > a


def test_single_response_records_use_the_single_template():
    example = made(record(responses=("A poem about the sea.",), scores=(7.0,), best=None,
                          critique="The assistant's response is creative and vivid. "
                                   "Rating: [[7]]"))
    assert "[The Begin of Response]" in example.prompt
    assert parsed_original(example) == (7,)
    assert "[[7]]" not in example.completion


def test_long_responses_are_cut_with_a_marker_and_unusable_records_say_why():
    example = made(record(responses=("x " * 2000, "Sleep more.")))
    assert TRUNCATION_MARK.strip() in example.prompt
    assert coldstart_example(record(critique="Fine.")) == "critique too short"
    assert coldstart_example(record(responses=("a", "b", "c"), scores=None)) == "3 responses"


def test_read_critiques_reads_gzip_jsonl(tmp_path):
    import gzip

    path = tmp_path / "c.jsonl.gz"
    row = {"source": "s", "license": "MIT", "query": "q?", "responses": ["a", "b"],
           "critique": "Response 1 is right and Response 2 is not, which matters here.",
           "scores": None, "best": 0, "judge": "j"}
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(row) + "\n\n")
    (found,) = list(read_critiques(path))
    assert found.responses == ("a", "b") and found.scores is None and found.best == 0
    kept, skipped = coldstart_examples([found], keep=lambda _: False)
    assert kept == [] and skipped == {"held out": 1}


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")


@needs_shared
def test_pandalm_critiques_and_preferences_share_one_split():
    """The critique file's PandaLM records are the preference file's items: the same
    content hash, so an item held out of one is held out of the other. (The importer
    skips PandaLM records with an empty or a boolean response; the critique file kept
    a few of them, as text, and those are in no preference set.)"""
    preferences = {}
    for entry in read_dataset(SHARED / "preferences" / "pandalm" / "testset-v1.json"):
        if not isinstance(entry, Skipped):
            preferences[content_hash(entry.query, [], entry.responses)] = entry
    critiques = [c for c in read_critiques(SHARED / "critiques" / "pandalm_testset_gpt35.jsonl.gz")
                 if all(r.strip() for r in c.responses)]
    assert len(critiques) > 900
    matched = [c for c in critiques if c.content_hash in preferences]
    assert len(critiques) - len(matched) <= 6  # the boolean-response records
    held = [c for c in matched if held_out(c.content_hash)]
    assert 0.05 < len(held) / len(matched) < 0.15  # about RFT's validation fraction (0.1)


@needs_shared
def test_the_recipe_trains_on_no_held_out_item():
    examples, counts = JudgeRecipe(RecipeConfig(), settings=None).coldstart_data()  # type: ignore[arg-type]
    assert examples and not any(held_out(e.content_hash) for e in examples)
    assert sum(v for k, v in counts.items() if k.endswith("held out")) > 500
    assert {e.source for e in examples} == {
        "pandalm_testset_gpt35", "vicuna80_fastchat_reviews",
        "mt_bench_gpt4_judgments_fastchat_forks"}

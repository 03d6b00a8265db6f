"""The parser on real completions of the embedded SmolLM2 model (fixtures made
by tests/fixtures/collect_smollm2_outputs.py). The tiny model almost never
writes a scores line, but it does write prose such as "a score of 10 out of
10" and "Response 1": none of that may be read as scores. Its constrained
score rescues must parse exactly."""

import json
import re
from pathlib import Path

import pytest

from core.parse import parse_output
from core.templates import SCORES_PREFIX
from core.types import ParsedOutput, ParseErrorKind, ParseFailure

FIXTURES = [
    json.loads(line)
    for line in (Path(__file__).parent / "fixtures" / "smollm2_outputs.jsonl").read_text().splitlines()
]


def test_the_corpus_is_real_and_varied():
    assert len(FIXTURES) >= 60
    assert {f["finish_reason"] for f in FIXTURES} == {"stop", "length"}
    assert {f["prefill"] for f in FIXTURES} == {True, False}
    tempting = [f for f in FIXTURES if re.search(r"score[^.\n]*\d", f["text"], re.IGNORECASE)]
    assert len(tempting) >= 3  # prose that mentions scores next to numbers


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f['source']}-{f['shown_order']}")
def test_real_output_without_a_scores_line_is_an_explicit_failure(fixture):
    truncated = fixture["finish_reason"] == "length"
    result = parse_output(fixture["text"], fixture["n_responses"], truncated=truncated)
    assert isinstance(result, ParseFailure)
    assert result.kind == (ParseErrorKind.TRUNCATED if truncated else ParseErrorKind.NO_SCORES)
    assert result.reason
    if fixture["prefill"] and fixture["text"].removeprefix("Specific Criteria:").strip():
        assert result.principles  # the prefilled header is found and its section kept


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f['source']}-{f['shown_order']}")
def test_the_models_own_rescue_continuations_parse_exactly(fixture):
    numbers = tuple(int(n) for n in re.findall(r"\d+", fixture["rescue"]))
    result = parse_output(SCORES_PREFIX + fixture["rescue"], fixture["n_responses"])
    assert isinstance(result, ParsedOutput)
    assert result.scores == numbers and len(numbers) == fixture["n_responses"]
    full = parse_output(
        fixture["text"].rstrip() + "\n" + SCORES_PREFIX + fixture["rescue"], fixture["n_responses"]
    )
    assert isinstance(full, ParsedOutput) and full.scores == numbers

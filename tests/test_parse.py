"""Tests of core.parse: every score form, every failure kind, and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.parse import parse_output
from core.types import ParsedOutput, ParseErrorKind, ParseFailure

DEEPSEEK = """Specific Criteria: Accuracy (40%), clarity (30%), brevity (30%).
Analysis: Response 1 is correct and explains 3 steps. Response 2 misses 2 cases.
Scores: \\boxed{7, 5}"""


def ok(text: str, n: int = 2, **kwargs) -> ParsedOutput:
    result = parse_output(text, n, **kwargs)
    assert isinstance(result, ParsedOutput), result
    return result


def failed(text: str, n: int = 2, **kwargs) -> ParseFailure:
    result = parse_output(text, n, **kwargs)
    assert isinstance(result, ParseFailure), result
    return result


# --- sections ------------------------------------------------------------------------------


def test_deepseek_format_gives_sections_and_scores():
    result = ok(DEEPSEEK)
    assert result.scores == (7, 5)
    assert result.score_format == "boxed"
    assert result.principles == "Accuracy (40%), clarity (30%), brevity (30%)."
    assert result.critique == (
        "Response 1 is correct and explains 3 steps. Response 2 misses 2 cases."
    )
    assert result.missing_sections == ()


@pytest.mark.parametrize(
    ("principles_header", "critique_header", "scores_header"),
    [
        ("**Specific Criteria:**", "**Analysis:**", "**Scores:**"),
        ("**Specific Criteria**:", "**Analysis**:", "**Scores**:"),
        ("### Specific Criteria", "### Analysis", "### Scores"),
        ("## **Specific Criteria**", "## *Analysis*", "## Final Scores:"),
        ("SPECIFIC CRITERIA:", "analysis:", "scores:"),
        ("__Specific Criteria:__", "`Analysis:`", "Scores:"),
    ],
)
def test_markdown_and_case_around_headers(principles_header, critique_header, scores_header):
    text = (
        f"{principles_header}\n- Correctness (weight 60%)\n- Style (weight 40%)\n\n"
        f"{critique_header}\nResponse 1 has **3 errors**.\nResponse 2 is fine.\n\n"
        f"{scores_header} \\boxed{{3, 9}}"
    )
    result = ok(text)
    assert result.scores == (3, 9)
    assert result.principles == "- Correctness (weight 60%)\n- Style (weight 40%)"
    assert result.critique == "Response 1 has **3 errors**.\nResponse 2 is fine."


def test_bold_inside_section_text_is_kept():
    result = ok("**Analysis:** **Response 1** wins.\n**Scores:** \\boxed{8, 2}")
    assert result.critique == "**Response 1** wins."


def test_missing_sections_do_not_fail_the_parse():
    result = ok("Scores: \\boxed{7, 5}")
    assert (result.principles, result.critique) == (None, None)
    assert result.missing_sections == ("principles", "critique")
    result = ok("Analysis: fine.\nScores: \\boxed{7, 5}")
    assert result.missing_sections == ("principles",)
    assert result.critique == "fine."


def test_empty_section_counts_as_missing():
    result = ok("Specific Criteria:\n\nAnalysis:   \nScores: \\boxed{7, 5}")
    assert result.principles is None and result.critique is None
    assert result.missing_sections == ("principles", "critique")


def test_critique_without_scores_header_loses_only_the_scores():
    result = ok("Analysis: Response 1 is better.\nThe final scores are \\boxed{7, 5}")
    assert result.critique == "Response 1 is better.\nThe final scores are"
    result = ok("Analysis: Response 1 is better. [[7, 5]]\nThat is all.")
    assert result.critique == "Response 1 is better. \nThat is all."


def test_line_starting_with_header_word_is_not_a_header():
    text = "Analysis: one.\nAnalysis of Response 2 shows 4 issues.\nScores: \\boxed{7, 5}"
    assert ok(text).critique == "one.\nAnalysis of Response 2 shows 4 issues."


def test_sections_are_kept_on_failure():
    result = failed(DEEPSEEK.replace("\\boxed{7, 5}", "\\boxed{7, 5, 9}"))
    assert result.principles.startswith("Accuracy")
    assert result.critique.startswith("Response 1 is correct")


# --- score forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scores_text",
    [
        "\\boxed{7, 5}",
        "\\boxed{7,5}",
        "\\boxed{ 7 ; 5 }",
        "$\\boxed{7, 5}$",
        "**\\boxed{7, 5}**",
        "\\boxed{7}, \\boxed{5}",
        "\\boxed{7} and \\boxed{5}",
        "$\\boxed{7}$, $\\boxed{5}$",
        "\\boxed{7/10, 5/10}",
        "\\boxed{[7, 5]}",
    ],
)
def test_boxed_forms(scores_text):
    result = ok(f"Analysis: Response 2 has 4 flaws.\nScores: {scores_text}")
    assert (result.scores, result.score_format) == ((7, 5), "boxed")
    assert result.critique == "Response 2 has 4 flaws."


@pytest.mark.parametrize(
    ("scores_text", "form"),
    [
        ("[[7, 5]]", "double_brackets"),
        ("Scores: [7, 5]", "scores_line"),
        ("Scores: 7, 5", "scores_line"),
        ("Scores: 7 and 5", "scores_line"),
        ("Scores: 7/10, 5/10", "scores_line"),
        ("Scores: 7 / 10; 5 / 10", "scores_line"),
        ("Score: 7, 5", "scores_line"),
        ("Final scores: 7, 5", "scores_line"),
        ("**Scores:** **7**, **5**", "scores_line"),
        ("Scores:\n7, 5", "scores_line"),
        ("Scores: Response 1: 7, Response 2: 5", "scores_line"),
        ("Scores: Response 1 - 7/10; Response 2 - 5/10", "scores_line"),
        ("Scores: Response 2: 5, Response 1: 7", "scores_line"),
        ("Response 1: 7/10\nResponse 2: 5/10", "per_response"),
        ("**Response 1**: 7\n**Response 2**: 5", "per_response"),
        ("Response 1 score: 7\nResponse 2 score: 5", "per_response"),
        ("Score for Response 1: 7\nScore for Response 2: 5", "per_response"),
        ("Response 1 — 7 out of 10\nResponse 2 — 5 out of 10", "per_response"),
        ("- Response 1: 7.\n- Response 2: 5.", "per_response"),
        ("### Response 1's rating: 7\n### Response 2's rating: 5", "per_response"),
        ("Scores:\nResponse 1: 7/10\nResponse 2: 5/10", "per_response"),
        ("Response 2: 5/10\nResponse 1: 7/10", "per_response"),
    ],
)
def test_other_forms(scores_text, form):
    result = ok(f"Analysis: Response 1 has 3 errors. Response 2 lists 4 steps.\n{scores_text}")
    assert (result.scores, result.score_format) == ((7, 5), form)
    assert result.critique == "Response 1 has 3 errors. Response 2 lists 4 steps."


def test_double_brackets_inside_a_sentence():
    result = ok("Analysis: Response 1 wins.\nMy verdict: [[7, 5]] overall.")
    assert (result.scores, result.score_format) == ((7, 5), "double_brackets")
    assert result.critique == "Response 1 wins.\nMy verdict:  overall."


def test_form_order_of_trust():
    assert ok("Scores: 1, 2\n[[3, 4]]\n\\boxed{5, 6}").scores == (5, 6)
    assert ok("Scores: 1, 2\n[[3, 4]]").scores == (3, 4)
    assert ok("Response 1: 8/10\nResponse 2: 9/10\nScores: 1, 2").scores == (1, 2)


def test_integer_written_as_decimal_is_accepted():
    assert ok("Scores: \\boxed{7.0, 5.00}").scores == (7, 5)


def test_extra_text_after_scores():
    result = ok(DEEPSEEK + "\n\nI hope this helps! Response 1 has 2 more points to make.")
    assert result.scores == (7, 5)
    assert ok("Scores: 7, 5. Response 1 is clearly better.").scores == (7, 5)
    assert ok("Score: 8 — a solid answer", 1).scores == (8,)


def test_restated_scores_last_after_label_wins():
    assert ok("Scores: \\boxed{7, 5}\nWait, reconsider.\nFinal scores: \\boxed{6, 5}").scores == (
        6,
        5,
    )
    assert ok("Scores: 7, 5\nOn reflection:\nScores: 4, 8").scores == (4, 8)


def test_scores_label_beats_boxed_answers_quoted_in_the_critique():
    text = "Analysis: Response 1 gets \\boxed{42}, Response 2 gets \\boxed{41}.\nScores: 9, 2"
    result = ok(text)
    assert (result.scores, result.score_format) == ((9, 2), "scores_line")
    assert ok("Analysis: the answer is \\boxed{12}.\nScores: \\boxed{3}", 1).scores == (3,)


def test_without_label_the_last_boxed_group_wins():
    assert ok("Analysis: Response 1 says \\boxed{3, 4}.\nSo: \\boxed{8, 2}").scores == (8, 2)


def test_right_count_candidate_preferred_over_stray_box():
    text = "Scores: \\boxed{7, 5}\nFor instance Response 1 deserves \\boxed{7}."
    assert ok(text).scores == (7, 5)


def test_per_response_lines_map_by_written_number():
    text = "Analysis: x\nResponse 3: 2/10\nResponse 1: 9/10\nResponse 2: 6/10"
    assert ok(text, 3).scores == (9, 6, 2)


@pytest.mark.parametrize(
    "critique",
    [
        "Response 1 has 3 errors\nResponse 2: it lists 4 steps",
        "Response 1: 3 errors remain\nResponse 2: 4 steps are listed",
        "Response 1 - 2 of the claims are wrong\nResponse 2 is 3 times longer",
        "Response 1: 2/3 of the steps are right",
    ],
)
def test_critique_prose_with_numbers_is_not_read_as_scores(critique):
    result = failed(f"Analysis:\n{critique}", 2)
    assert result.kind == ParseErrorKind.NO_SCORES
    assert result.critique == critique
    result = ok(f"Analysis:\n{critique}\nScores: \\boxed{{6, 8}}")
    assert result.scores == (6, 8) and result.critique == critique


def test_interleaved_per_response_scores_keep_the_critique():
    text = (
        "Analysis:\nResponse 1 is accurate.\nResponse 1 score: 8/10\n"
        "Response 2 has 3 mistakes.\nResponse 2 score: 4/10\n"
    )
    result = ok(text)
    assert result.scores == (8, 4)
    assert result.critique == "Response 1 is accurate.\nResponse 2 has 3 mistakes."


def test_bare_score_lines_inside_analysis_do_not_end_the_critique():
    text = (
        "Analysis:\nResponse 1 good.\nScore: 8/10\nResponse 2 bad.\nScore: 4/10\n"
        "Scores: \\boxed{8, 4}"
    )
    result = ok(text)
    assert result.scores == (8, 4)
    assert result.critique == "Response 1 good.\nScore: 8/10\nResponse 2 bad.\nScore: 4/10"


def test_single_response():
    result = ok("Specific Criteria: c\nAnalysis: a\nScores: \\boxed{8}", 1)
    assert (result.scores, result.principles, result.critique) == ((8,), "c", "a")
    assert ok("Analysis: a\nScore: 8/10", 1).scores == (8,)
    assert ok("Analysis: a\nResponse 1: 8/10", 1).scores == (8,)


def test_four_responses():
    assert ok("Scores: \\boxed{1, 10, 4, 7}", 4).scores == (1, 10, 4, 7)
    lines = "\n".join(f"Response {i}: {s}/10" for i, s in [(4, 7), (2, 10), (1, 1), (3, 4)])
    assert ok(f"Analysis: a\n{lines}", 4).scores == (1, 10, 4, 7)


def test_other_score_range():
    assert ok("Scores: \\boxed{0, 5}", score_range=(0, 5)).scores == (0, 5)
    assert ok("Response 1: 4/5\nResponse 2: 0/5", score_range=(0, 5)).scores == (4, 0)
    assert failed("Scores: \\boxed{0, 6}", score_range=(0, 5)).kind == ParseErrorKind.OUT_OF_RANGE


def test_unclosed_box_after_scores_label_is_read():  # what a score rescue continuation gives
    assert ok("Scores: \\boxed{7, 5").scores == (7, 5)


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty(text):
    result = failed(text)
    assert result.kind == ParseErrorKind.EMPTY and result.reason


def test_no_scores():
    result = failed("Specific Criteria: c\nAnalysis: Response 1 has 3 errors.")
    assert result.kind == ParseErrorKind.NO_SCORES
    assert (result.principles, result.critique) == ("c", "Response 1 has 3 errors.")
    assert result.found_scores is None


def test_prompt_placeholder_echo_is_no_score():
    text = "Scores: \\boxed{score of Response 1, score of Response 2}"
    assert failed(text).kind == ParseErrorKind.NO_SCORES


def test_wrong_count():
    result = failed("Scores: \\boxed{7, 5, 9}")
    assert result.kind == ParseErrorKind.WRONG_COUNT
    assert result.reason == "found 3 scores for 2 responses: 7, 5, 9"
    assert result.found_scores == (7, 5, 9)
    assert failed("Scores: 7", 2).kind == ParseErrorKind.WRONG_COUNT


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ("Response 1: 7/10\nResponse 1: 5/10", "name Response 1, Response 1, not each"),
        ("Response 1: 7/10\nResponse 3: 5/10", "name Response 1, Response 3, not each"),
        ("Response 1: 7/10", "found 1 score for 2 responses: 7"),
    ],
)
def test_per_response_duplicate_or_missing_number(lines, reason):
    result = failed(f"Analysis: x\n{lines}")
    assert result.kind == ParseErrorKind.WRONG_COUNT
    assert reason in result.reason


@pytest.mark.parametrize("scores", ["11, 5", "0, 5", "7, -2", "7, 100"])
def test_out_of_range(scores):
    result = failed(f"Scores: \\boxed{{{scores}}}")
    assert result.kind == ParseErrorKind.OUT_OF_RANGE
    assert "1..10" in result.reason
    assert result.found_scores == tuple(float(s) for s in scores.split(", "))


def test_not_integer_is_never_rounded():
    result = failed("Scores: \\boxed{7.5, 5}")
    assert result.kind == ParseErrorKind.NOT_INTEGER
    assert "7.5" in result.reason and result.found_scores == (7.5, 5.0)
    assert failed("Response 1: 6.5/10\nResponse 2: 5/10").kind == ParseErrorKind.NOT_INTEGER


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Analysis: a\nResponse 1 is good but", None),
        ("Analysis: a\nScores: \\boxed{7, ", (7,)),
        ("Analysis: a\nScores: 7, ", (7,)),
        ("Analysis: a\nScores: 7, 1", (7, 1)),  # the last number may have been 10
    ],
)
def test_truncated(text, found):
    result = failed(text, truncated=True)
    assert result.kind == ParseErrorKind.TRUNCATED
    assert result.found_scores == found
    assert result.critique.startswith("a")


def test_truncated_text_with_complete_scores_is_fine():
    assert ok(DEEPSEEK + "\nIn summary, Response 1", truncated=True).scores == (7, 5)
    assert ok("Scores: 7, 5\n", truncated=True).scores == (7, 5)


def test_untruncated_cut_text_is_a_plain_failure():
    assert failed("Analysis: a\nScores: \\boxed{7, ").kind == ParseErrorKind.WRONG_COUNT
    assert failed("Analysis: Response 1 is good but").kind == ParseErrorKind.NO_SCORES


@pytest.mark.parametrize(
    ("n", "score_range"),
    [(0, (1, 10)), (-1, (1, 10)), (2, (5, 5)), (2, (10, 1)), (2, (1, 10, 3)), (2, (1.0, 10))],
)
def test_invalid_arguments(n, score_range):
    with pytest.raises(ValueError, match="must be"):
        parse_output("Scores: \\boxed{7, 5}", n, score_range=score_range)


# --- properties ----------------------------------------------------------------------------

_WORDS = ["the", "answer", "is", "clear", "accuracy", "weight", "points", "errors", "analysis",
          "score", "scores", "criteria", "and", "but", "3.5", "20%", "(weight 30%)", "2/3", "-",
          ",", "."]
_STARTERS = ["The", "It", "Overall,", "1.", "2)", "Clarity", "A"]
_RESPONSE_TALK = ["Response {k} has {d} errors", "Response {k}: it lists {d} steps",
                  "Response {k} - {d} issues remain", "Response {k}: {d} issues remain"]
_LINE = st.tuples(
    st.sampled_from(_STARTERS)
    | st.builds(str.format, st.sampled_from(_RESPONSE_TALK), k=st.integers(1, 9),
                d=st.integers(0, 99)),
    st.lists(st.sampled_from(_WORDS) | st.integers(0, 200).map(str), max_size=8),
).map(lambda t: " ".join([t[0], *t[1]]))
# Lines of text with digits and response talk, but no score markers.
PROSE = st.lists(_LINE, min_size=1, max_size=4).map("\n".join)


def _numbers(scores, sep=", ", suffix=""):
    return sep.join(f"{s}{suffix}" for s in scores)


def _per_response(scores, hi, order):
    return "\n".join(f"**Response {i + 1}**: {scores[i]}/{hi}" for i in order)


FORMATTERS = {
    "boxed": lambda p, c, s, hi, order: (
        f"Specific Criteria: {p}\nAnalysis: {c}\nScores: \\boxed{{{_numbers(s)}}}"),
    "boxed_bold": lambda p, c, s, hi, order: (
        f"**Specific Criteria:**\n{p}\n\n**Analysis**:\n{c}\n\n"
        f"**Scores:** $\\boxed{{{_numbers(s)}}}$\nHope this helps."),
    "boxed_separate": lambda p, c, s, hi, order: (
        f"### Specific Criteria\n{p}\n### Analysis\n{c}\n### Scores\n"
        + ", ".join(f"\\boxed{{{x}}}" for x in s)),
    "double_brackets": lambda p, c, s, hi, order: (
        f"Specific Criteria: {p}\nAnalysis: {c}\n\n[[{_numbers(s)}]]"),
    "scores_line": lambda p, c, s, hi, order: (
        f"Specific Criteria: {p}\nAnalysis: {c}\nScores: {_numbers(s, ' and ', f'/{hi}')}"),
    "scores_line_labelled": lambda p, c, s, hi, order: (
        f"Specific Criteria: {p}\nAnalysis: {c}\nFinal scores: "
        + "; ".join(f"Response {i + 1} - {s[i]}" for i in order)),
    "per_response": lambda p, c, s, hi, order: (
        f"**Specific Criteria**: {p}\n**Analysis**: {c}\n\n{_per_response(s, hi, order)}"),
    "per_response_header": lambda p, c, s, hi, order: (
        f"Specific Criteria: {p}\nAnalysis: {c}\nScores:\n{_per_response(s, hi, order)}"),
}
FORMAT_NAMES = {"boxed_bold": "boxed", "boxed_separate": "boxed", "scores_line_labelled":
                "scores_line", "per_response_header": "per_response"}

fast = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def judged(draw, count_offset=0, in_range=True):
    lo = draw(st.integers(0, 2))
    hi = draw(st.integers(lo + 1, lo + 15))
    n = draw(st.integers(1, 6))
    m = n + count_offset
    if in_range:
        scores = draw(st.lists(st.integers(lo, hi), min_size=m, max_size=m))
    else:
        bad = st.integers(hi + 1, hi + 50) | st.integers(lo - 20, lo - 1)
        scores = draw(st.lists(st.integers(lo, hi), min_size=m - 1, max_size=m - 1))
        scores.insert(draw(st.integers(0, m - 1)), draw(bad))
    order = draw(st.permutations(range(m)))
    return n, (lo, hi), scores, order


@fast
@given(p=PROSE, c=PROSE, case=judged(), form=st.sampled_from(sorted(FORMATTERS)))
def test_round_trip(p, c, case, form):
    n, score_range, scores, order = case
    text = FORMATTERS[form](p, c, scores, score_range[1], order)
    result = parse_output(text, n, score_range=score_range)
    assert isinstance(result, ParsedOutput), (text, result)
    assert result.scores == tuple(scores)
    assert result.score_format == FORMAT_NAMES.get(form, form)
    assert (result.principles, result.critique) == (p.strip(), c.strip())
    assert result.missing_sections == ()


@fast
@given(p=PROSE, c=PROSE, n=st.integers(1, 6), truncated=st.booleans())
def test_text_without_scores_never_parses(p, c, n, truncated):
    text = f"Specific Criteria: {p}\nAnalysis: {c}\nScores:"
    result = parse_output(text, n, truncated=truncated)
    assert isinstance(result, ParseFailure)
    assert result.kind == (ParseErrorKind.TRUNCATED if truncated else ParseErrorKind.NO_SCORES)
    assert result.critique == c.strip()


@fast
@given(p=PROSE, c=PROSE, case=judged(in_range=False), form=st.sampled_from(sorted(FORMATTERS)))
def test_out_of_range_always_fails(p, c, case, form):
    n, score_range, scores, order = case
    result = parse_output(FORMATTERS[form](p, c, scores, score_range[1], order), n,
                          score_range=score_range)
    assert isinstance(result, ParseFailure)
    assert result.kind == ParseErrorKind.OUT_OF_RANGE
    assert f"{score_range[0]}..{score_range[1]}" in result.reason


@fast
@given(p=PROSE, c=PROSE, case=judged(count_offset=1), drop=st.booleans(),
       form=st.sampled_from(sorted(FORMATTERS)))
def test_wrong_count_always_fails(p, c, case, drop, form):
    n, score_range, scores, order = case  # one score too many
    if drop:
        n += 2  # one score too few
    result = parse_output(FORMATTERS[form](p, c, scores, score_range[1], order), n,
                          score_range=score_range)
    assert isinstance(result, ParseFailure)
    assert result.kind == ParseErrorKind.WRONG_COUNT
    assert result.found_scores is not None and sorted(result.found_scores) == sorted(scores)

"""Parse a GRM completion (`Specific Criteria: / Analysis: / Scores: \\boxed{7, 5}`).

Scores are looked for in several written forms, most trusted first (`_FINDERS`), after
the first Scores label before anywhere else; of one form's candidates the last with the
right count wins. Without usable scores the result is a `ParseFailure`, never a default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from core.types import ParsedOutput, ParseErrorKind, ParseFailure

_FLAGS = re.IGNORECASE | re.MULTILINE

# Markdown emphasis, code and math marks are blanked (not deleted) before looking for
# headers and scores, so that positions in the blanked text match the original text.
_MARKDOWN_RE = re.compile(r"[*_`$]")
_HEADER_RE = re.compile(
    r"^[ \t]*(?:(?P<hash>#{1,6})[ \t]*)?"
    r"(?:(?P<principles>specific[ \t]+criteria|criteria|principles)|(?P<critique>analysis|critique)"
    r"|(?P<scores>final[ \t]+scores?|scores)|(?P<score>score))"
    r"[ \t]*(?::|(?=[ \t]*$)|(?(hash)(?=[ \t])|(?!)))",  # a '#' heading needs no colon
    _FLAGS,
)
_HEADER_TAIL_RE = re.compile(r"[*_`]+(?=\s|$)")  # closing '**' right after a header's colon

_NUM = r"-?\d+(?:\.\d+)?"
_OUT_OF = r"[ \t]*(?:/|out[ \t]+of)[ \t]*"  # '7/10', '7 out of 10'
_ITEM = (  # '7', '7/10', 'Response 1: 7'; group 1 is the response number, group 2 the score
    r"(?:resp(?:onse)?\.?[ \t]*#?(\d+)(?:[ \t]*(?:[:=\-–—]|\bis\b)[ \t]*|[ \t]+))?"
    rf"({_NUM})(?:{_OUT_OF}\d+)?"
)
_LIST = rf"{_ITEM}(?:[ \t]*(?:[,;&]|\band\b)?[ \t]*{_ITEM})*"
_ITEM_RE = re.compile(_ITEM, re.IGNORECASE)
_LIST_ONLY_RE = re.compile(rf"\s*[\[(]?\s*(?P<list>{_LIST})\s*[\])]?\s*\.?\s*", re.IGNORECASE)
_BOX_RE = re.compile(r"\\boxed[ \t]*\{([^{}]*)\}")
_BOX_GAP_RE = re.compile(r"\s*(?:[,;&]|and)?\s*", re.IGNORECASE)
_DOUBLE_BRACKETS_RE = re.compile(rf"\[\[[ \t]*(?P<list>{_LIST})[ \t]*\]\]", re.IGNORECASE)
_SCORES_LINE_RE = re.compile(  # the list may start on the next line; a box may be unclosed
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:final[ \t]+)?scores?(?:[ \t]*[:=][ \t]*|[ \t]*(?=\n))"
    r"(?:\n(?!\s*resp)\s*)?"
    rf"(?:\\boxed[ \t]*\{{(?![^{{}}]*\}})[ \t]*)?[\[(]?[ \t]*(?P<list>{_LIST})",
    _FLAGS,
)
_PER_RESPONSE_RE = re.compile(
    r"^[ \t]*(?:[-•>]|\d+\.)?[ \t]*(?:#{1,6}[ \t]*)?"
    r"(?P<pre>(?:final[ \t]+)?(?:score|rating)[ \t]+(?:for|of)[ \t]+)?"
    r"response[ \t]*#?(?P<number>\d+)"
    r"(?P<post>[ \t]*(?:'s)?[ \t]*(?:final[ \t]+)?(?:score|rating))?"
    rf"[ \t]*(?:[:=\-–—]|\bis\b)[ \t]*(?P<value>{_NUM})"
    rf"(?:{_OUT_OF}(?P<den>\d+))?(?P<tail>[^\n]*)",
    _FLAGS,
)
_BLANK_TAIL_RE = re.compile(r"[\s.,;:!)]*")
_NO_SCORES = "no scores found: no \\boxed{...}, [[...]], Scores line or per-response score lines"


_Header = tuple[str, int, int]  # kind, start, end


class _Candidate(NamedTuple):
    values: tuple[float, ...]
    labels: tuple[int, ...] | None  # response numbers as written, when every score names one
    spans: tuple[tuple[int, int], ...]
    open_end: bool = False  # the last number runs to the end of the text (may be cut off)


def parse_output(
    text: str, n_responses: int, *, score_range: tuple[int, int] = (1, 10), truncated: bool = False
) -> ParsedOutput | ParseFailure:
    """Extract principles, critique and one score per response (in shown order)."""
    _check_arguments(n_responses, score_range)
    if not text.strip():
        return ParseFailure(kind=ParseErrorKind.EMPTY, reason="the output is empty")
    blank = _MARKDOWN_RE.sub(" ", text)
    headers = _find_headers(blank, n_responses)
    label_at = next((start for kind, start, _ in headers if kind == "scores"), None)
    found = _select(blank, n_responses, score_range[1], label_at)
    cuts = found[1].spans if found else ()
    principles = _section(text, headers, "principles", cuts)
    critique = _section(text, headers, "critique", cuts)
    kind, reason, values = _judge(found, n_responses, score_range, truncated)
    if kind is None:
        assert found is not None and values is not None  # no failure: scores were found
        sections = {"principles": principles, "critique": critique}
        missing = tuple(name for name, section in sections.items() if section is None)
        return ParsedOutput(**sections, scores=tuple(map(int, values)), score_format=found[0],
                            missing_sections=missing)
    return ParseFailure(
        kind=kind, reason=reason, principles=principles, critique=critique, found_scores=values
    )


def _check_arguments(n_responses: int, score_range: tuple[int, int]) -> None:
    if not isinstance(n_responses, int) or n_responses < 1:
        raise ValueError(f"n_responses must be an integer >= 1, got {n_responses!r}")
    ints = len(score_range) == 2 and all(isinstance(v, int) for v in score_range)
    if not ints or score_range[0] >= score_range[1]:
        raise ValueError(f"score_range must be two integers low < high, got {score_range!r}")


def _find_headers(blank: str, n_responses: int) -> list[_Header]:
    """(kind, start, end) of each section header; a bare 'Score:' is one only when n == 1."""
    headers = []
    for m in _HEADER_RE.finditer(blank):
        kind = next(k for k in ("principles", "critique", "scores", "score") if m[k])
        if kind == "score":
            if n_responses != 1:
                continue  # with several responses, 'Score: 7/10' is a rating inside the critique
            kind = "scores"
        headers.append((kind, m.start(), m.end()))
    return headers


def _section(
    text: str, headers: list[_Header], kind: str, cuts: tuple[tuple[int, int], ...]
) -> str | None:
    """The text after the first `kind` header up to the next header, less the scores."""
    index = next((i for i, h in enumerate(headers) if h[0] == kind), None)
    if index is None:
        return None
    begin = headers[index][2]
    if tail := _HEADER_TAIL_RE.match(text, begin):
        begin = tail.end()
    stop = headers[index + 1][1] if index + 1 < len(headers) else len(text)
    kept = text[begin:stop]
    for start, end in sorted(cuts, reverse=True):  # cut the scores out, with markdown around them
        s, e = len(text[:start].rstrip("*_`$")), len(text) - len(text[end:].lstrip("*_`$"))
        e += (s == 0 or text[s - 1] == "\n") and text.startswith("\n", e)  # a whole line
        if max(s, begin) < min(e, stop):
            kept = kept[: max(s, begin) - begin] + kept[min(e, stop) - begin :]
    return kept.strip() or None


def _parse_list(list_text: str, start: int, end: int, open_end: bool = False) -> _Candidate:
    items = [(m[1], float(m[2])) for m in _ITEM_RE.finditer(list_text)]
    labels = tuple(int(k) for k, _ in items) if all(k for k, _ in items) else None
    return _Candidate(tuple(v for _, v in items), labels, ((start, end),), open_end)


def _find_boxed(text: str, start: int, hi: int) -> list[_Candidate]:
    """`\\boxed{7, 5}`; adjacent single boxes (`\\boxed{7}, \\boxed{5}`) join into one."""
    found: list[_Candidate] = []
    for m in _BOX_RE.finditer(text, start):
        if not (inner := _LIST_ONLY_RE.fullmatch(m[1])):
            continue
        box = _parse_list(inner["list"], m.start(), m.end())
        prev = found[-1] if found else None
        if (prev and len(box.values) == 1 and len(prev.values) == len(prev.spans)
                and _BOX_GAP_RE.fullmatch(text, prev.spans[-1][1], m.start())):
            found[-1] = _Candidate(prev.values + box.values, None, prev.spans + box.spans)
        else:
            found.append(box)
    return found


def _find_double_brackets(text: str, start: int, hi: int) -> list[_Candidate]:
    """`[[7, 5]]`, the MT-Bench judge style."""
    matches = _DOUBLE_BRACKETS_RE.finditer(text, start)
    return [_parse_list(m["list"], m.start(), m.end()) for m in matches]


def _find_scores_line(text: str, start: int, hi: int) -> list[_Candidate]:
    """`Scores: 7, 5`, `Scores: [7, 5]`, `Final scores: Response 1: 7/10, Response 2: 5/10`."""
    return [_parse_list(m["list"], m.start(), m.end(), m.end() == len(text))
            for m in _SCORES_LINE_RE.finditer(text, start)]


def _find_per_response(text: str, start: int, hi: int) -> list[_Candidate]:
    """Lines such as `Response 1: 7/10` or `Score for Response 2: 5`, gathered into one.

    A line is trusted only when it looks like a score: it names a score or rating,
    writes `/hi` or `out of hi`, or holds nothing but the label and the number.
    """
    lines = [m for m in _PER_RESPONSE_RE.finditer(text, start)
             if m["pre"] or m["post"] or (m["den"] and int(m["den"]) == hi)
             or _BLANK_TAIL_RE.fullmatch(m["tail"])]
    if not lines:
        return []
    values = tuple(float(m["value"]) for m in lines)
    labels = tuple(int(m["number"]) for m in lines)
    spans = tuple((m.start(), m.end()) for m in lines)
    return [_Candidate(values, labels, spans, lines[-1].end() == len(text))]


_FINDERS: tuple[tuple[str, Callable[[str, int, int], list[_Candidate]]], ...] = (
    ("boxed", _find_boxed),
    ("double_brackets", _find_double_brackets),
    ("scores_line", _find_scores_line),
    ("per_response", _find_per_response),
)


def _select(text: str, n: int, hi: int, label_at: int | None) -> tuple[str, _Candidate] | None:
    """The most trusted form with a right-count candidate, after the Scores label first.

    Without any right-count candidate: the first form's last candidate, to report on.
    """
    fallback = None
    for start in (0,) if not label_at else (label_at, 0):
        for name, find in _FINDERS:
            candidates = find(text, start, hi)
            if right := [c for c in candidates if _count_problem(c, n) is None]:
                return name, right[-1]
            if candidates and fallback is None:
                fallback = name, candidates[-1]
    return fallback


def _count_problem(candidate: _Candidate, n: int) -> str | None:
    values, labels = candidate.values, candidate.labels
    if len(values) != n:
        noun = "score" if len(values) == 1 else "scores"
        return f"found {len(values)} {noun} for {n} responses: {_numbers(values)}"
    if labels is not None and sorted(labels) != list(range(1, n + 1)):
        named = ", ".join(f"Response {k}" for k in labels)
        return f"the scores name {named}, not each of Response 1..{n} once"
    return None


def _judge(
    found: tuple[str, _Candidate] | None, n: int, score_range: tuple[int, int], truncated: bool
) -> tuple[ParseErrorKind | None, str, tuple[float, ...] | None]:
    """(failure kind or None, reason, scores in shown order or the numbers found)."""
    kind: ParseErrorKind | None
    values: tuple[float, ...] | None
    if found is None:
        kind, reason, values = ParseErrorKind.NO_SCORES, _NO_SCORES, None
    else:
        candidate = found[1]
        values = _in_shown_order(candidate)
        kind, reason = _value_problem(candidate, n, score_range)
        if truncated and candidate.open_end:
            kind, reason = ParseErrorKind.TRUNCATED, (
                "output cut off at the token limit right after the last score, which may be partial"
            )
    if truncated and kind in (ParseErrorKind.NO_SCORES, ParseErrorKind.WRONG_COUNT):
        kind, reason = ParseErrorKind.TRUNCATED, f"output cut off at the token limit; {reason}"
    return kind, reason, values


def _in_shown_order(candidate: _Candidate) -> tuple[float, ...]:
    labels = candidate.labels
    if labels is None or len(set(labels)) != len(labels):
        return candidate.values
    return tuple(v for _, v in sorted(zip(labels, candidate.values, strict=True)))


def _value_problem(
    candidate: _Candidate, n: int, score_range: tuple[int, int]
) -> tuple[ParseErrorKind | None, str]:
    if problem := _count_problem(candidate, n):
        return ParseErrorKind.WRONG_COUNT, problem
    lo, hi = score_range
    for i, value in enumerate(_in_shown_order(candidate), 1):
        if value != int(value):
            return ParseErrorKind.NOT_INTEGER, f"score {value:g} of Response {i} is not an integer"
        if not lo <= value <= hi:
            return ParseErrorKind.OUT_OF_RANGE, (
                f"score {value:g} of Response {i} is outside the range {lo}..{hi}")
    return None, ""


def _numbers(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:g}" for v in values)

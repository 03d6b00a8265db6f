"""Cold-start data for the studio's own judge: strong judges' written critiques
rewritten into the GRM format (grm-method.md §1).

    for example in coldstart_examples(read_critiques(path), holdout=held_out):
        example.messages()   # user: the GRM prompt, assistant: criteria, analysis, scores

Each critique record (`shared/data/critiques`: a query, one or two responses, a
judge's critique and its scores or verdict) becomes one supervised example in
our template's three parts:

- **Specific Criteria**: the criteria the critique argues about (accuracy,
  instruction following, detail, ...; found by their words in it), weighted by
  how much the critique says about each, and tied to this query;
- **Analysis**: the critique itself, its references to "Assistant A/1" mapped
  to the response numbers of the shown order, verdict markers removed;
- **Scores**: `\\boxed{..}` with the record's scores, or for a verdict-only
  record scores drawn (per item, seeded) so that the winner is strictly above
  the loser and a tie is a tie.

Pairs are shown in either order (half of them swapped, by item hash), so the
format teaches no position. Over-long responses are cut with a marker; a
record whose prompt would still be too long is skipped with the reason.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.store.importing import content_hash
from core.templates import PRINCIPLES_PREFIX, SCORES_PREFIX, default_template
from core.training.rft_data import hash_fraction
from core.types import JudgeInput

TRUNCATION_MARK = "\n[... response cut here for length ...]"
MAX_RESPONSE_CHARS = 1500  # ~375 tokens: keeps a pair's prompt near 1k tokens
MAX_CRITIQUE_CHARS = 1200


@dataclass(frozen=True)
class CritiqueRecord:
    """One written judgement (shared/data/critiques format)."""

    source: str
    license: str
    query: str
    responses: tuple[str, ...]
    critique: str
    scores: tuple[float, ...] | None
    best: int | None
    judge: str

    @property
    def content_hash(self) -> str:
        """The store's hash of the same item (so a held-out rule keyed on it agrees with
        the preference sets that hold the same items, e.g. PandaLM)."""
        return content_hash(self.query, (), self.responses)


@dataclass(frozen=True)
class ColdStartExample:
    """A critique record rewritten as a GRM training example."""

    source: str
    content_hash: str
    prompt: str
    completion: str
    shown_order: tuple[int, ...]
    scores: tuple[int, ...]  # original order

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.prompt},
                {"role": "assistant", "content": self.completion}]


def read_critiques(path: Path) -> Iterator[CritiqueRecord]:
    """The records of one (gzipped) JSONL critique file."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as stream:
        for line in stream:
            if not line.strip():
                continue
            raw = json.loads(line)
            scores = raw.get("scores")
            yield CritiqueRecord(
                source=raw["source"], license=raw["license"], query=raw["query"],
                responses=tuple(raw["responses"]), critique=raw["critique"],
                scores=tuple(float(s) for s in scores) if scores else None,
                best=raw.get("best"), judge=raw.get("judge", ""),
            )


def coldstart_example(record: CritiqueRecord) -> ColdStartExample | str:
    """The training example for `record`, or the reason it is skipped."""
    n = len(record.responses)
    if n not in (1, 2):
        return f"{n} responses"
    scores = _integer_scores(record)
    if scores is None:
        return "no scores and no verdict"
    key = record.content_hash
    order = (1, 0) if n == 2 and _unit(key, "order") < 0.5 else tuple(range(n))
    analysis = _analysis(record.critique, order)
    if len(analysis) < 40:
        return "critique too short"
    item = JudgeInput(query=record.query, responses=tuple(_cut(r) for r in record.responses))
    prompt = default_template(n).render(item, order)
    shown = ", ".join(str(scores[i]) for i in order)
    completion = (f"{PRINCIPLES_PREFIX} {_principles(record.query, record.critique, key)}\n"
                  f"Analysis: {analysis}\n{SCORES_PREFIX}{shown}}}")
    return ColdStartExample(record.source, key, prompt, completion, order, scores)


def coldstart_examples(
    records: Iterable[CritiqueRecord], *, keep: Callable[[str], bool] = lambda _: True
) -> tuple[list[ColdStartExample], dict[str, int]]:
    """Examples of the records whose content hash `keep` accepts, and skip counts by reason."""
    examples: list[ColdStartExample] = []
    skipped: dict[str, int] = {}
    for record in records:
        if not keep(record.content_hash):
            skipped["held out"] = skipped.get("held out", 0) + 1
            continue
        made = coldstart_example(record)
        if isinstance(made, str):
            skipped[made] = skipped.get(made, 0) + 1
        else:
            examples.append(made)
    return examples, skipped


# -- scores ----------------------------------------------------------------------


def _integer_scores(record: CritiqueRecord) -> tuple[int, ...] | None:
    """Integer 1..10 scores that keep the record's verdict (x.5 rounds half up; a
    verdict-only record gets seeded scores with the winner strictly above)."""
    if record.scores is not None and len(record.scores) == len(record.responses):
        ints = [min(10, max(1, math.floor(s + 0.5))) for s in record.scores]
        if record.best is not None and len(ints) == 2:
            other = 1 - record.best
            if ints[record.best] <= ints[other]:  # rounding must not turn a win into a tie
                ints[other] = ints[record.best] - 1
                if ints[other] < 1:
                    ints[record.best], ints[other] = 2, 1
        return tuple(ints)
    if len(record.responses) != 2:
        return None
    u = _unit(record.content_hash, "scores")
    if record.best is None:  # a tie
        tied = 5 + int(u * 4)
        return (tied, tied)
    winner = 6 + int(u * 4)  # 6..9
    gap = 2 + int(_unit(record.content_hash, "gap") * 3)  # 2..4
    ints = [0, 0]
    ints[record.best], ints[1 - record.best] = winner, max(1, winner - gap)
    return tuple(ints)


def _unit(key: str, purpose: str) -> float:
    return hash_fraction(f"coldstart:{purpose}:{key}")


# -- analysis --------------------------------------------------------------------

_REF_RE = re.compile(
    r"\b(assistant|response|answer|output)(\s*)(?:#\s*)?([12AB])\b(?!\.\d)", re.IGNORECASE
)
_VERDICT_RE = re.compile(
    r"(?:final\s+verdict\s*:?\s*)?\[\[\s*(?:[ABC]|\d+(?:\.\d+)?)\s*\]\]\.?|rating\s*:\s*(?=$)",
    re.IGNORECASE,
)
_LEADING_SCORES_RE = re.compile(r"^\s*\d+(?:\.\d+)?\s+\d+(?:\.\d+)?\s*\n")


def _analysis(critique: str, order: tuple[int, ...]) -> str:
    """The critique on one line, its response references in shown positions."""
    text = _LEADING_SCORES_RE.sub("", critique)
    text = _VERDICT_RE.sub("", text)
    text = re.sub(r"\b(?:final\s+verdict|rating)\s*:\s*$", "", text.strip(), flags=re.IGNORECASE)
    position = {original: shown for shown, original in enumerate(order, start=1)}

    def renumber(match: re.Match[str]) -> str:
        original = "1A2B".index(match.group(3).upper()) // 2
        if original >= len(order):
            return match.group(0)
        return f"Response {position[original]}"

    text = _REF_RE.sub(renumber, text)
    text = " ".join(text.split())
    if len(text) > MAX_CRITIQUE_CHARS:
        cut = text[:MAX_CRITIQUE_CHARS]
        end = cut.rfind(". ")
        text = cut[: end + 1] if end > MAX_CRITIQUE_CHARS // 2 else cut.rstrip() + " ..."
    return text


def _cut(response: str) -> str:
    if len(response) <= MAX_RESPONSE_CHARS:
        return response
    return response[:MAX_RESPONSE_CHARS].rstrip() + TRUNCATION_MARK


# -- principles ------------------------------------------------------------------

# (name, words that show the critique weighs it, what it asks of a response)
_CRITERIA: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Accuracy", ("accura", "correct", "error", "mistake", "wrong", "factual", "false"),
     "every fact, number and step in it is correct"),
    ("Instruction adherence", ("instruction", "asked", "request", "constraint", "format",
                               "follow", "task"),
     "it does exactly what was asked, honouring every explicit constraint"),
    ("Helpfulness", ("helpful", "useful", "practical", "actionable", "valuable"),
     "it actually helps the user who asked"),
    ("Relevance", ("relevan", "on topic", "off-topic", "unrelated", "address"),
     "it stays on the query and answers the question that was asked"),
    ("Level of detail", ("detail", "thorough", "comprehensive", "depth", "elaborat", "specific"),
     "it gives as much detail as the query needs, with concrete specifics"),
    ("Clarity", ("clear", "concise", "readab", "structured", "organi", "wordy", "verbose",
                 "coheren"),
     "it is clear, well organised and free of padding"),
    ("Creativity", ("creativ", "engaging", "original", "vivid", "imaginat", "interesting"),
     "it is engaging and original where the query invites it"),
    ("Completeness", ("complete", "missing", "lack", "omit", "partial", "only"),
     "it covers every part of the query without leaving pieces out"),
    ("Safety", ("harm", "unsafe", "ethic", "danger", "illegal", "offensive", "inappropriate"),
     "it refuses or redirects anything harmful and stays respectful"),
    ("Reasoning", ("reason", "logic", "step", "explain", "explanation", "justif"),
     "its reasoning is sound and shown step by step"),
    ("Code quality", ("code", "function", "bug", "implement", "program"),
     "its code runs, handles the cases asked for and is readable"),
)


def _principles(query: str, critique: str, key: str) -> str:
    """Two to four weighted criteria for this query, from what the critique weighs."""
    lowered = critique.lower()
    hits = []
    for rank, (name, words, text) in enumerate(_CRITERIA):
        count = sum(lowered.count(w) for w in words)
        if count:
            hits.append((count + _unit(key, name), -rank, name, text))
    hits.sort(reverse=True)
    chosen = hits[: 2 + int(_unit(key, "how-many") * 3)]
    if len(chosen) < 2:  # the critique names too little: fall back to the general pair
        chosen = [(1.0, 0, n, t) for n, _, t in (_CRITERIA[1], _CRITERIA[0])]
    weights = _weights([c[0] for c in chosen])
    listed = " ".join(
        f"{i}. {name} ({w}%): {text}."
        for i, ((_, _, name, text), w) in enumerate(zip(chosen, weights, strict=True), start=1)
    )
    return f"For {_gist(query)}: {listed}"


def _weights(strengths: list[float]) -> list[int]:
    """Percentages in steps of 5, each at least 10, adding up to 100."""
    total = sum(strengths)
    raw = [max(10, 5 * round(20 * s / total)) for s in strengths]
    raw[0] += 100 - sum(raw)
    if raw[0] < 10:  # the top criterion absorbs the rounding; rebalance if that broke it
        raw = [100 // len(raw)] * len(raw)
        raw[0] += 100 - sum(raw)
    return raw


def _gist(query: str) -> str:
    """A short quotation of the query's first sentence."""
    first = re.split(r"(?<=[.?!])\s|\n", query.strip(), maxsplit=1)[0]
    words = first.split()
    short = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    short = re.sub(r"^\[Turn 1\]\s*", "", short).replace('"', "'")
    return f'"{short}"'

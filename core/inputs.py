"""Reading judge inputs from files: a JSON or JSONL responses file.

Accepted shapes, so that a user can point at what they already have:
- a JSON list of strings: `["first response", "second response"]`;
- a JSON object with `responses` (and optionally `query`, `context`);
- JSONL: one response per line, each a JSON string or `{"response": "..."}`
  / `{"text": "..."}`.
Errors name the line (and column) that could not be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.datasets.fields import unstorable
from core.errors import InputError, ResponsesFileError
from core.types import JudgeInput, Turn


def read_responses_file(path: Path) -> tuple[list[str], str | None, list[Turn]]:
    """(responses, query or None, context turns) from a JSON or JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ResponsesFileError(f"cannot read responses file {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ResponsesFileError(f"{path} is not UTF-8 text (byte {err.start})") from err
    if not text.strip():
        raise ResponsesFileError(f"{path} is empty")
    stripped = text.lstrip()
    if path.suffix == ".jsonl" or not stripped.startswith(("[", "{")):
        return _read_jsonl(path, text), None, []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if stripped.startswith("{") and "\n{" in text.strip():
            return _read_jsonl(path, text), None, []  # JSONL saved as .json
        raise ResponsesFileError(
            f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from err
    return _from_document(path, data)


def _read_jsonl(path: Path, text: str) -> list[str]:
    responses = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise ResponsesFileError(
                f"{path}: line {number} is not valid JSON ({err.msg} at column {err.colno})"
            ) from err
        responses.append(_response_text(path, value, f"line {number}"))
    return responses


def _from_document(path: Path, data: Any) -> tuple[list[str], str | None, list[Turn]]:
    if isinstance(data, list):
        return [_response_text(path, v, f"item {i}") for i, v in enumerate(data, 1)], None, []
    if isinstance(data, dict) and isinstance(data.get("responses"), list):
        query = data.get("query")
        if query is not None and not isinstance(query, str):
            raise ResponsesFileError(f"{path}: 'query' must be a string")
        if query is not None:
            _check_text(path, query, "'query'")
        try:
            context = [Turn.model_validate(t) for t in data.get("context") or []]
        except ValueError as err:
            raise ResponsesFileError(
                f"{path}: 'context' must be a list of {{role, content}} turns"
            ) from err
        for i, turn in enumerate(context, start=1):
            _check_text(path, turn.content, f"context turn {i}")
        responses = [_response_text(path, v, f"response {i}") for i, v in enumerate(data["responses"], 1)]
        return responses, query, context
    raise ResponsesFileError(
        f"{path}: expected a list of responses or an object with a 'responses' list"
    )


def _response_text(path: Path, value: Any, where: str) -> str:
    if isinstance(value, str):
        return _check_text(path, value, where)
    if isinstance(value, dict):
        for key in ("response", "text", "content"):
            if isinstance(value.get(key), str):
                return _check_text(path, value[key], where)
    raise ResponsesFileError(
        f"{path}: {where} must be a string or an object with a 'response' string, "
        f"got {type(value).__name__}"
    )


def _check_text(path: Path, text: str, where: str) -> str:
    """`text`, unless it holds what no model or database takes (NUL, a lone surrogate)."""
    problem = unstorable(text)
    if problem is not None:
        raise ResponsesFileError(f"{path}: {where} contains {problem}; fix or remove it")
    return text


def clean_text(text: str, where: str) -> str:
    """`text` as given, or InputError naming `where` when it holds what no database
    stores (a NUL, a lone UTF-16 surrogate): the one rule for text a user types or
    sends to be stored, the same as the importer's (`unstorable`)."""
    problem = unstorable(text)
    if problem is not None:
        raise InputError(f"{where} contains {problem}; remove it")
    return text


def check_storable(item: JudgeInput) -> JudgeInput:
    """`item` as given, or InputError naming the text that no database stores: the
    same rule (`clean_text`) for what a judgement saves as for labels and imports."""
    clean_text(item.query, "the query")
    for n, response in enumerate(item.responses, start=1):
        clean_text(response, f"response {n}")
    for n, turn in enumerate(item.context, start=1):
        clean_text(turn.content, f"earlier turn {n}")
    if item.reference is not None:
        clean_text(item.reference, "the reference answer")
    return item


_ROLE_PREFIXES = {"user:": "user", "assistant:": "assistant", "system:": "system"}


def parse_turns(text: str) -> tuple[Turn, ...]:
    """Earlier conversation turns written as lines starting `User:`,
    `Assistant:` or `System:`; a line without a prefix continues the turn above."""
    turns: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        lowered = line.lstrip().lower()
        prefix = next((p for p in _ROLE_PREFIXES if lowered.startswith(p)), None)
        if prefix is not None:
            turns.append((_ROLE_PREFIXES[prefix], [line.lstrip()[len(prefix):].strip()]))
        elif turns:
            turns[-1][1].append(line)
        elif line.strip():
            raise InputError(
                f"earlier turns, line {number}: start each turn with 'User:' or 'Assistant:'"
            )
    return tuple(Turn(role=role, content="\n".join(lines).strip()) for role, lines in turns)


def format_turns(turns: tuple[Turn, ...]) -> str:
    """Earlier turns as `parse_turns` reads them back: one 'User:' / 'Assistant:' /
    'System:' line per turn."""
    return "\n".join(f"{turn.role.capitalize()}: {turn.content}" for turn in turns)


def parse_score_list(text: str, n_responses: int) -> tuple[int, ...] | None:
    """Corrected scores typed as '7, 5' (one integer per response); None when blank."""
    if not text.strip():
        return None
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        scores = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"corrected scores must be integers separated by commas, got '{text}'") from None
    if len(scores) != n_responses:
        raise InputError(
            f"corrected scores need one integer per response ({n_responses}), got {len(scores)}"
        )
    return scores

"""What a prompt or a response field may hold, and how an item's query, earlier
turns and responses are read from them: the one rule every shape and mapping uses.

- A **prompt** is a string (with optional earlier turns beside it), or a list
  of {role, content} turns that ends with the user's turn: that turn is the
  query and the turns before it are the context.
- A **response** field holds a string, a conversation (a list of turns ending
  with the assistant's reply), or a list of either (best-of-n). A conversation
  gives its last assistant turn as the response; the turns before it must be
  the prompt and its context, or, when no prompt is given, the same in every
  response: they then give the query (the last user turn) and the context.
- Conversations may be cut at a user turn (`upto_turn`, MT-Bench's `turn`):
  what follows that turn's reply is left out.
- **Chosen and rejected** responses are put in a fixed hash order
  (`ranked_order`), so that the chosen one is not always first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.datasets import fields as f
from core.datasets.fields import RecordError
from core.types import Turn


@dataclass(frozen=True)
class Prompt:
    """The query of an item and the turns before it."""

    query: str
    context: tuple[Turn, ...] = ()


@dataclass(frozen=True)
class Reply:
    """One response, and the turns its conversation had before it (none for a string)."""

    text: str
    before: tuple[Turn, ...] = ()


def prompt_of(key: str, value: Any, context: tuple[Turn, ...] = ()) -> Prompt:
    """A prompt field's value: a string (with `context`), or turns ending with a user turn."""
    if isinstance(value, list):
        if context:
            raise RecordError(f"'{key}' is a list of turns, so it cannot have a context beside it")
        turns = f.to_turns(key, value)
        if not turns or turns[-1].role != "user":
            raise RecordError(f"'{key}' must end with a user turn")
        if not turns[-1].content.strip():
            raise RecordError(f"'{key}' has an empty last user turn")
        return Prompt(turns[-1].content, turns[:-1])
    if value is None:
        raise RecordError(f"missing field '{key}'")
    if not isinstance(value, str):
        raise RecordError(f"'{key}' must be a string, got {f.describe(value)}")
    if not value.strip():
        raise RecordError(f"'{key}' is empty")
    return Prompt(value, context)


def replies(key: str, value: Any, upto_turn: int | None = None) -> tuple[Reply, ...]:
    """A response field's value as one reply (a string, a conversation) or several
    (a list of strings or of conversations)."""
    if isinstance(value, str):
        if not value.strip():
            raise RecordError(f"'{key}' is empty")
        return (Reply(value),)
    if value is None:
        raise RecordError(f"missing field '{key}'")
    if not isinstance(value, list):
        raise RecordError(f"'{key}' must be a string, got {f.describe(value)}")
    if not value:
        raise RecordError(f"'{key}' is an empty list")
    if all(isinstance(v, dict) for v in value):
        return (_conversation_reply(key, value, upto_turn),)
    if all(isinstance(v, str) for v in value):
        for i, text in enumerate(value, start=1):
            if not text.strip():
                raise RecordError(f"'{key}' item {i} is empty")
        return tuple(Reply(text) for text in value)
    if all(isinstance(v, list) for v in value):
        return tuple(
            _conversation_reply(f"{key} item {i}", v, upto_turn) for i, v in enumerate(value, 1)
        )
    odd = next((i for i, v in enumerate(value, 1) if not isinstance(v, dict | str | list)), None)
    if odd is None:  # all usable kinds, but mixed
        odd = next(i for i, v in enumerate(value, 1) if not isinstance(v, type(value[0])))
    raise RecordError(
        f"'{key}' must be a string, a list of {{role, content}} turns, or a list of strings "
        f"or of conversations; its item {odd} is {f.describe(value[odd - 1])}"
    )


def _conversation_reply(key: str, value: list[Any], upto_turn: int | None) -> Reply:
    turns = f.to_turns(key, value)
    if upto_turn is not None:
        turns = cut_at_turn(key, turns, upto_turn)
    if not turns or turns[-1].role != "assistant":
        raise RecordError(f"'{key}' must end with an assistant turn")
    if not turns[-1].content.strip():
        raise RecordError(f"'{key}' has an empty last assistant turn")
    return Reply(turns[-1].content, turns[:-1])


def cut_at_turn(key: str, turns: tuple[Turn, ...], turn: int) -> tuple[Turn, ...]:
    """The turns up to the reply to the `turn`-th user turn (1-based)."""
    users = [i for i, t in enumerate(turns) if t.role == "user"]
    if turn < 1 or turn > len(users):
        raise RecordError(f"'{key}' has {len(users)} user turn(s), so no turn {turn}")
    end = users[turn] if turn < len(users) else len(turns)
    return turns[:end]


def settle(prompt: Prompt | None, named: Sequence[tuple[str, Reply]]) -> Prompt:
    """The item's prompt: `prompt` when given (every conversation reply must follow
    it), else the turns every reply shares before its last assistant turn."""
    if prompt is not None:
        expected = (*prompt.context, Turn(role="user", content=prompt.query))
        for key, reply in named:
            if reply.before and reply.before != expected:
                raise RecordError(
                    f"the turns of '{key}' before its last assistant turn are not the "
                    "prompt and its earlier turns"
                )
        return prompt
    first_key, first = named[0]
    for key, reply in named[1:]:
        if reply.before != first.before:
            raise RecordError(
                f"'{first_key}' and '{key}' differ before their last assistant turn "
                f"({len(first.before) + 1} and {len(reply.before) + 1} turns); an item "
                "holds one conversation and the responses to its last turn"
            )
    if not first.before:
        raise RecordError(
            f"no query: '{first_key}' is not a conversation, and no query field is mapped"
        )
    if first.before[-1].role != "user":
        raise RecordError(f"the last assistant turn of '{first_key}' does not follow a user turn")
    if not first.before[-1].content.strip():
        raise RecordError(f"the last user turn of '{first_key}' is empty")
    return Prompt(first.before[-1].content, first.before[:-1])


def ranked_order(query: str, texts: Sequence[str]) -> list[int]:
    """The order to store chosen-then-rejected `texts` in: for a pair, the fixed
    hash of `fields.chosen_first`; for more, sorted by a hash of each text."""
    if len(texts) == 2:
        return [0, 1] if f.chosen_first(query, *texts) else [1, 0]
    keys = [hashlib.sha256(f"{query}\x1f{text}".encode()).digest() for text in texts]
    return sorted(range(len(texts)), key=lambda i: keys[i])

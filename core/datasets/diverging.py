"""Battles whose conversations differ before their last reply: MT-Bench's second
turn, multi-turn Chatbot Arena battles. Each model answered the first question in
its own way, so the two conversations part after the first user turn; an item is
still made of them, as follows.

- **The shared part**: the turns every conversation has in common from the start,
  cut back to its last user turn (so at least the first user turn; conversations
  that differ from the first user turn on are refused, as is a plain string
  beside a conversation).
- **The query** is the user turn every conversation ends with before its last
  reply, when that turn is the same in all of them (MT-Bench's second question;
  in the Arena, the user's last prompt, sent to both models alike): it is what
  the labels judged. The context is then the whole shared part, so it ends with
  a user turn and the query follows it. When the last user turns differ, the
  query is the last user turn of the shared part and the context the turns
  before it.
- **Each response** is the rest of its own conversation, from the end of the
  shared part to its last reply, as a transcript: "Assistant: …\\n\\nUser: …\\n\\n
  Assistant: …" (`transcript`), so the judge sees each model's earlier turns as
  well as its last reply. The user turns repeat the query where it falls.
- **The mark**: such an item's category ends with `DIVERGING` ("English ·
  earlier turns differ"; the mark alone when the record has no category), so
  the evaluation reports them apart and a screen can say so (`is_diverging`).

Conversations that share every turn before their last reply are read as
before (`core.datasets.conversation.settle`): the shared turns give the query
and context, and each last reply is a response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.datasets.conversation import Prompt, Reply, settle
from core.datasets.fields import MAX_ID_CHARS, RecordError
from core.types import Turn

DIVERGING = "earlier turns differ"  # the category mark of an item of diverging conversations
_JOIN = " · "  # between a record's own category and the mark
_SPEAKER = {"user": "User", "assistant": "Assistant", "system": "System"}


@dataclass(frozen=True)
class Battle:
    """An item's prompt and responses, read from its response fields."""

    prompt: Prompt
    responses: tuple[str, ...]
    diverging: bool  # the conversations differ before their last reply (module docstring)


def settle_battle(prompt: Prompt | None, named: Sequence[tuple[str, Reply]]) -> Battle:
    """The item the replies make: as `settle` when a prompt is given or every reply
    has the same turns before it; else the diverging conversations' item (module
    docstring). RecordError when they make none."""
    if prompt is not None or all(reply.before == named[0][1].before for _, reply in named):
        return Battle(settle(prompt, named), tuple(reply.text for _, reply in named), False)
    plain = next((key for key, reply in named if not reply.before), None)
    if plain is not None:
        other = next(key for key, reply in named if reply.before)
        raise RecordError(
            f"'{plain}' is a single reply but '{other}' is a conversation; give every "
            "response as a conversation, or map the query"
        )
    for key, reply in named:
        if reply.before[-1].role != "user":
            raise RecordError(f"the last assistant turn of '{key}' does not follow a user turn")
    shared = _shared_part([reply.before for _, reply in named])
    if not shared:
        first, before = named[0][0], named[0][1].before
        second = next(key for key, reply in named[1:] if reply.before != before)
        raise RecordError(
            f"'{first}' and '{second}' share no user turn before they differ; an item needs "
            "the turns its conversations share, at least the first user turn"
        )
    if not shared[-1].content.strip():
        raise RecordError(f"the last user turn that '{named[0][0]}' and the others share is empty")
    lasts = {reply.before[-1] for _, reply in named}
    if len(lasts) == 1 and (last := lasts.pop()).content.strip():
        prompt = Prompt(last.content, shared[:-1] if shared[-1] == last else shared)
    else:
        prompt = Prompt(shared[-1].content, shared[:-1])
    responses = tuple(
        transcript((*reply.before[len(shared):], Turn(role="assistant", content=reply.text)))
        for _, reply in named
    )
    return Battle(prompt, responses, True)


def _shared_part(befores: Sequence[tuple[Turn, ...]]) -> tuple[Turn, ...]:
    """The turns every sequence starts with, cut back to the last user turn."""
    n = 0
    while all(len(b) > n and b[n] == befores[0][n] for b in befores):
        n += 1
    shared = befores[0][:n]
    while shared and shared[-1].role != "user":
        shared = shared[:-1]
    return shared


def transcript(turns: Sequence[Turn]) -> str:
    """Turns as one text: "Assistant: …\\n\\nUser: …\\n\\nAssistant: …"."""
    return "\n\n".join(f"{_SPEAKER[t.role]}: {t.content}" for t in turns)


def diverging_category(category: str | None) -> str:
    """`category` marked as an item of diverging conversations (cut to fit the store)."""
    if not category:
        return DIVERGING
    return f"{category[: MAX_ID_CHARS - len(_JOIN + DIVERGING)]}{_JOIN}{DIVERGING}"


def is_diverging(category: str | None) -> bool:
    """The category marks an item of diverging conversations (`diverging_category`)."""
    return category is not None and (category == DIVERGING or category.endswith(_JOIN + DIVERGING))

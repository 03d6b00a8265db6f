"""Anthropic HH-RLHF records: two whole "\\n\\nHuman: … \\n\\nAssistant: …" transcripts
that share everything but the last Assistant turn.

The shared part becomes the context and the query (its last Human turn); the two
last Assistant turns are the responses, in a fixed hash order (see
`fields.chosen_first`) so that the chosen one is not always first. The same
record with conversations (lists of {role, content}) instead of transcripts is
TRL's "implicit prompt" preference format, read by `core.datasets.conversation`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from core.datasets import fields as f
from core.datasets.field_map import FieldMap
from core.datasets.fields import RawRecord, RecordError
from core.datasets.mapped import read_mapped
from core.datasets.records import SourceItem, SourceLabel
from core.types import Turn

_SPEAKER = re.compile(r"\n\n(Human|Assistant):[ ]?")
_ROLE: Mapping[str, Literal["user", "assistant"]] = MappingProxyType(
    {"Human": "user", "Assistant": "assistant"}
)


def split_transcript(transcript: str, key: str) -> list[tuple[str, str]]:
    """[(speaker, text)] of a transcript; text is stripped."""
    if transcript.startswith(("Human:", "Assistant:")):
        transcript = "\n\n" + transcript
    parts = _SPEAKER.split(transcript)
    if parts[0].strip():
        raise RecordError(f"'{key}' does not start with a 'Human:' or 'Assistant:' turn")
    return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2)]


def read_hh_rlhf(rec: RawRecord) -> SourceItem:
    if isinstance(rec.data.get("chosen"), list) or isinstance(rec.data.get("rejected"), list):
        return read_mapped(FieldMap(chosen="chosen", rejected="rejected"), rec)
    chosen_text, rejected_text = f.text(rec, "chosen"), f.text(rec, "rejected")
    chosen = split_transcript(chosen_text, "chosen")
    rejected = split_transcript(rejected_text, "rejected")
    for key, turns in (("chosen", chosen), ("rejected", rejected)):
        if not turns or turns[-1][0] != "Assistant":
            raise RecordError(f"'{key}' has no final Assistant turn")
        if not turns[-1][1]:
            raise RecordError(f"the final Assistant turn of '{key}' is empty")
    shared = chosen[:-1]
    if shared != rejected[:-1]:
        raise RecordError(
            "'chosen' and 'rejected' differ before their final Assistant turn "
            f"({len(chosen)} and {len(rejected)} turns)"
        )
    if not shared or shared[-1][0] != "Human":
        raise RecordError("the final Assistant turn does not follow a Human turn")
    if not shared[-1][1]:
        raise RecordError("the last Human turn is empty")
    context = tuple(Turn(role=_ROLE[s], content=t) for s, t in shared[:-1])
    first = f.chosen_first(chosen_text, rejected_text)
    pair = (chosen[-1][1], rejected[-1][1])
    return SourceItem(
        line=rec.number,
        external_id=None,
        query=shared[-1][1],
        context=context,
        responses=pair if first else pair[::-1],
        labels=(SourceLabel(best=0 if first else 1, labeller=None),),
        category=None,
    )

"""A field mapping: which of a record's fields plays which role in an item.

    FieldMap(query="instruction", responses=("response1", "response2"), best="label",
             label_values=LabelValues.parse(["1=0,2=1,tie=tie"]))

is what `grm-studio import FILE --map query=instruction --map
responses=response1,response2 --map best=label --label-values 1=0,2=1,tie=tie`
builds (`parse_roles`). Every role names a field or a path into one
(`core.datasets.field_paths`). A map may be partial (a preset's map with a few
roles changed, `FieldMap.updated`); `check` says what a complete one lacks.

The responses come from `responses` (fields in order, each a string, a
conversation, or a list of either) with the label in `best`, or from `chosen`
and `rejected` (the chosen responses are the correct ones: one chosen is the
best response; several, as in RewardBench 2's Ties subset, must each score
above every rejected one, `core.labels.Accepted`). Per-response `ratings`
(numbers, one per response) give the label instead: the top-rated response,
or a tie when the top rating is shared.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any

from core.datasets.field_paths import top_key
from core.datasets.fields import RecordError, shown
from core.errors import InputError

TIE = "tie"
ROLES: Mapping[str, str] = MappingProxyType({
    "query": "the user's query: a string, or a conversation ending with the user's turn",
    "context": "earlier turns: a list of {role, content}",
    "responses": "the responses, in order: fields holding a string, a conversation or a list",
    "chosen": "the chosen response(s): a string, a conversation, or a list of either",
    "rejected": "the rejected response(s), like chosen",
    "best": "the label: which response is best (see label values), a tie, or a list of "
            "indices (the correct responses of a best-of-n item)",
    "ratings": "a numeric rating per response (fields, or one list); the top one is best",
    "reference": "a reference answer",
    "category": "a category or subset name",
    "id": "the record's own id",
    "turn": "which user turn of the conversations the label is about (1 = the first)",
    "labeller": "who gave the label: the label becomes that annotator's, not the dataset's",
})
_LISTS = ("responses", "ratings")


@dataclass(frozen=True)
class LabelValues:
    """How a label field's values name the best response: raw value -> 0-based
    response index, or None for a tie."""

    pairs: tuple[tuple[str, int | None], ...]

    @classmethod
    def parse(cls, specs: Sequence[str]) -> LabelValues:
        """From "1=0,2=1,tie=tie" strings (one or several): the value on the left,
        the response index (from 0) or "tie" on the right."""
        pairs: dict[str, int | None] = {}
        for spec in specs:
            for part in spec.split(","):
                raw, sep, target = part.rpartition("=")
                if not sep or not raw.strip() or not target.strip():
                    raise InputError(
                        f"label value {part.strip()!r} must be VALUE=INDEX or VALUE=tie, "
                        "as in 1=0,2=1,tie=tie"
                    )
                pairs[raw.strip()] = _target(raw.strip(), target.strip())
        if not pairs:
            raise InputError("label values are empty; write them as 1=0,2=1,tie=tie")
        return cls(tuple(pairs.items()))

    def label(self, key: str, value: Any) -> int | None:
        """The response index (None: a tie) that `value` of field `key` names."""
        name = value_key(value)
        for raw, target in self.pairs:
            if raw == name:
                return target
        for raw, target in self.pairs:
            if raw.casefold() == name.casefold():
                return target
        allowed = ", ".join(raw for raw, _ in self.pairs)
        raise RecordError(f"'{key}' must be one of {allowed} (the label values), got {shown(value)}")

    def spec(self) -> str:
        return ",".join(f"{raw}={TIE if t is None else t}" for raw, t in self.pairs)


def _target(raw: str, target: str) -> int | None:
    if target.lower() == TIE:
        return None
    if target.isascii() and target.isdigit() and len(target) <= 6:
        return int(target)
    raise InputError(
        f"label value {raw}={target}: the right side must be a response index from 0, "
        "or tie"
    )


def value_key(value: Any) -> str:
    """A label value as the text label values are written in: 1.0 and "1" are "1"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class FieldMap:
    """Which field (or path) plays which role; see the module docstring and ROLES."""

    query: str | None = None
    context: str | None = None
    responses: tuple[str, ...] = ()
    chosen: str | None = None
    rejected: str | None = None
    best: str | None = None
    label_values: LabelValues | None = None
    ratings: tuple[str, ...] = ()
    reference: str | None = None
    category: str | None = None
    id: str | None = None
    turn: str | None = None
    labeller: str | None = None

    def updated(self, other: FieldMap) -> FieldMap:
        """This map with every role `other` sets replaced by other's; choosing
        responses drops chosen/rejected and the reverse."""
        changes = {
            fld.name: getattr(other, fld.name)
            for fld in fields(other)
            if getattr(other, fld.name) not in (None, ())
        }
        if other.responses:
            changes |= {"chosen": other.chosen, "rejected": other.rejected}
        if other.chosen or other.rejected:
            changes |= {"responses": other.responses, "best": other.best,
                        "label_values": other.label_values}
        return replace(self, **changes)

    def check(self) -> None:
        """InputError saying what is missing or contradictory in this map."""
        has_pair = self.chosen is not None or self.rejected is not None
        if self.responses and has_pair:
            raise InputError("map either responses, or chosen and rejected, not both")
        if has_pair and (self.chosen is None or self.rejected is None):
            raise InputError("map both chosen and rejected (or map responses instead)")
        if not self.responses and not has_pair:
            raise InputError("the mapping has no responses: map responses, or chosen and rejected")
        if self.best is not None and has_pair:
            raise InputError("best cannot be mapped with chosen and rejected: the chosen is best")
        if self.best is not None and self.ratings:
            raise InputError("map best or ratings for the label, not both")
        if self.label_values is not None and self.best is None:
            raise InputError("label values need the label field: map best too")
        if self.labeller is not None and not (self.best or self.ratings or has_pair):
            raise InputError("labeller needs a label: map best, ratings, or chosen and rejected")

    def required_paths(self) -> tuple[str, ...]:
        """The fields (or paths) this map cannot do without."""
        paths = [self.query, *self.responses, self.chosen, self.rejected, self.best]
        return tuple(dict.fromkeys(p for p in paths if p is not None))

    def required_keys(self) -> tuple[str, ...]:
        """The record's own fields this map cannot do without."""
        return tuple(dict.fromkeys(top_key(p) for p in self.required_paths()))

    def roles(self) -> dict[str, str]:
        """role -> its field(s) as written after --map (only the roles set)."""
        found = {}
        for name in ROLES:
            value = getattr(self, name)
            if value:
                found[name] = ",".join(value) if isinstance(value, tuple) else value
        return found

    def cli_args(self) -> str:
        """The import options that give this map: --map role=field ... --label-values ..."""
        args = [f"--map {shlex.quote(f'{role}={value}')}" for role, value in self.roles().items()]
        if self.label_values is not None:
            args.append(f"--label-values {shlex.quote(self.label_values.spec())}")
        return " ".join(args)


def parse_roles(maps: Sequence[str], label_values: Sequence[str] = ()) -> FieldMap:
    """A (possibly partial) map from "role=field" strings ("responses=a,b" for a
    list role) and "1=0,2=1,tie=tie" label values; InputError naming what is wrong."""
    roles: dict[str, Any] = {}
    for spec in maps:
        role, sep, value = spec.partition("=")
        role, value = role.strip(), value.strip()
        if not sep or not value:
            raise InputError(f"{spec!r} must be ROLE=FIELD, as in query=instruction")
        if role not in ROLES:
            raise InputError(f"{spec!r}: unknown role {role!r}; the roles are {', '.join(ROLES)}")
        if role in roles:
            raise InputError(f"{spec!r}: the role {role!r} is mapped twice")
        if role in _LISTS:
            names = tuple(name.strip() for name in value.split(","))
            if not all(names):
                raise InputError(f"{spec!r}: an empty field name in the list")
            roles[role] = names
        elif "," in value:
            raise InputError(f"{spec!r}: {role} takes one field; only {', '.join(_LISTS)} take several")
        else:
            roles[role] = value
    if label_values:
        roles["label_values"] = LabelValues.parse(label_values)
    return FieldMap(**roles)

"""Reading one record through a `FieldMap` into a `SourceItem`.

Every refusal is a `RecordError` naming the field and what was expected; the
reader of the file prefixes the record ("line 7: ..."). What a prompt or a
response may hold is `core.datasets.conversation`'s rule, the same for every
shape; the label rules are here: `index_label` (an index, null or "tie", or a
list of indices: the correct responses of a best-of-n item), label values,
`ratings_label` (the top rating; a tie when it is shared), and chosen and
rejected: the chosen responses are the correct ones (`core.labels.best_of_n`:
one chosen is the best response; several, as in RewardBench 2's Ties subset,
are an accepted set, every one of them to be scored above every rejected one).
Responses given as conversations that differ before their last reply (MT-Bench's
second turn) make an item of diverging conversations (`core.datasets.diverging`);
chosen and rejected conversations must share every turn before their last reply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from core.datasets import fields as f
from core.datasets.conversation import Prompt, Reply, prompt_of, ranked_order, replies, settle
from core.datasets.diverging import diverging_category, settle_battle
from core.datasets.field_map import FieldMap
from core.datasets.field_paths import has_path, resolve, top_key
from core.datasets.fields import RawRecord, RecordError
from core.datasets.records import SourceItem, SourceLabel
from core.labels import Accepted, LabelValue, best_of_n
from core.types import Turn


def read_mapped(fmap: FieldMap, rec: RawRecord) -> SourceItem:
    """The item `fmap` reads from `rec` (a record with an object's fields)."""
    upto = _turn(rec, fmap.turn) if fmap.turn is not None else None
    prompt = _prompt(rec, fmap)
    diverging = False  # conversations that differ before their last reply
    if fmap.chosen is not None and fmap.rejected is not None:
        chosen = _replies(rec, (fmap.chosen,), upto, minimum=1)
        rejected = _replies(rec, (fmap.rejected,), upto, minimum=1)
        named = chosen + rejected
        prompt = settle(prompt, named)
        order = ranked_order(prompt.query, [reply.text for _, reply in named])
        positions = {order.index(i) for i in range(len(chosen))}  # where the chosen are stored
        best: LabelValue = best_of_n(positions, len(named))
        ratings = _ratings(rec, fmap.ratings, len(named)) if fmap.ratings else None
        if ratings is not None:
            ratings = tuple(ratings[i] for i in order)
            best = _rated_best(fmap, ratings, positions)
        responses = tuple(named[i][1].text for i in order)
        labels: tuple[SourceLabel, ...] = (_label(rec, fmap, best),)
    else:
        named = _replies(rec, fmap.responses, upto, one_field=len(fmap.responses) == 1)
        battle = settle_battle(prompt, named)
        prompt, responses, diverging = battle.prompt, battle.responses, battle.diverging
        ratings = _ratings(rec, fmap.ratings, len(responses)) if fmap.ratings else None
        labels = _labels(rec, fmap, ratings, len(responses))
    external_id = _optional_name(rec, fmap.id)
    category = _optional_name(rec, fmap.category)
    return SourceItem(
        line=rec.number,
        external_id=external_id,
        query=prompt.query,
        context=prompt.context,
        responses=responses,
        labels=labels,
        category=diverging_category(category) if diverging else category,
        reference=_optional_text(rec, fmap.reference),
        ratings=ratings,
    )


def _prompt(rec: RawRecord, fmap: FieldMap) -> Prompt | None:
    context: tuple[Turn, ...] = ()
    if fmap.context is not None and has_path(rec, fmap.context):
        value = resolve(rec, fmap.context)
        context = f.to_turns(fmap.context, _list(rec, fmap.context, value))
    if fmap.query is None:
        if context:
            raise RecordError(f"'{fmap.context}' is mapped as context, but no query is mapped")
        return None
    return prompt_of(fmap.query, resolve(rec, fmap.query), context)


def _replies(
    rec: RawRecord,
    keys: Sequence[str],
    upto: int | None,
    *,
    one_field: bool = False,
    minimum: int = 2,
) -> list[tuple[str, Reply]]:
    """(name for messages, reply) of every response the fields hold, in order; a
    lone responses field (`one_field`) must hold a list (JSON in a CSV cell)."""
    named = []
    for key in keys:
        value = resolve(rec, key)
        if one_field:
            value = _list(rec, key, value)
        found = replies(key, value, upto)
        named += [(key if len(found) == 1 else f"{key} item {i}", r) for i, r in enumerate(found, 1)]
    if len(named) < minimum:
        names = ", ".join(f"'{k}'" for k in keys)
        raise RecordError(f"{names} must hold at least {minimum} responses, got {len(named)}")
    return named


def _list(rec: RawRecord, key: str, value: Any) -> list[Any]:
    """A list value; in CSV, a JSON list written in the cell."""
    if rec.textual and isinstance(value, str):
        return f.json_list(RawRecord(rec.number, rec.where, {key: value}, textual=True), key)
    if not isinstance(value, list):
        raise RecordError(f"'{key}' must be a list, got {f.describe(value)}")
    return value


def _label(rec: RawRecord, fmap: FieldMap, best: LabelValue) -> SourceLabel:
    """The record's label, the dataset's or (with a labeller) an annotator's; an
    annotator's label names one best response or a tie, never several correct ones."""
    labeller = _labeller(rec, fmap)
    if labeller is not None and isinstance(best, Accepted):
        raise RecordError(
            f"the label names several correct responses, but it is {labeller}'s "
            "(labeller is mapped) and an annotator's label names one best response or a "
            "tie; leave labeller unmapped to keep it as the dataset's")
    return SourceLabel(best=best, labeller=labeller)


def _labels(
    rec: RawRecord, fmap: FieldMap, ratings: tuple[float, ...] | None, n: int
) -> tuple[SourceLabel, ...]:
    if ratings is not None:
        return (_label(rec, fmap, ratings_label(ratings)),)
    if fmap.best is None:
        return ()
    try:
        value = resolve(rec, fmap.best)
    except RecordError:
        return ()  # no label field: an unlabelled item
    if isinstance(value, str) and not value.strip():
        return ()  # an empty label (an empty CSV cell): an unlabelled item
    best: LabelValue
    if fmap.label_values is None:
        best = index_label(fmap.best, value, n)
    else:
        best = fmap.label_values.label(fmap.best, value)
        if best is not None and best >= n:
            raise RecordError(
                f"'{fmap.best}' is {f.shown(value)}, which the label values make response "
                f"index {best}, but the record has {n} responses (indices 0 to {n - 1})"
            )
    return (_label(rec, fmap, best),)


def index_label(key: str, value: Any, n: int) -> LabelValue:
    """A label written as a 0-based response index; null or "tie" is a tie; a list of
    indices (a JSON list in a text cell) names the correct responses of a best-of-n
    item (`core.labels.best_of_n`)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("tie", "null")):
        return None
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = _list(RawRecord(0, "", {}, textual=True), key, value)
    if isinstance(value, list):
        return _correct_label(key, value, n)
    best = -1
    if isinstance(value, int) and not isinstance(value, bool):
        best = value
    elif isinstance(value, float) and value.is_integer():
        best = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        best = int(value.strip()) if len(value.strip()) <= f.MAX_DIGITS else -1
    if not 0 <= best < n:
        raise RecordError(
            f"'{key}' must be a response index from 0 to {n - 1}, null or \"tie\", "
            f"got {f.shown(value)}"
        )
    return best


def _correct_label(key: str, values: list[Any], n: int) -> int | Accepted:
    """A list of the correct responses' 0-based indices, as a label."""
    indices = [index_label(f"{key} item {i}", v, n) for i, v in enumerate(values, 1)]
    if not all(isinstance(i, int) for i in indices) or len(set(indices)) != len(indices):
        raise RecordError(f"'{key}' must list distinct response indices, got {f.shown(values)}")
    try:
        return best_of_n((i for i in indices if isinstance(i, int)), n)
    except ValueError:
        raise RecordError(
            f"'{key}' lists {len(indices)} correct response(s) of {n}; a label needs one or "
            "more, and at least one response that is not correct") from None


def ratings_label(ratings: Sequence[float]) -> int | None:
    """The top-rated response's index; None (a tie) when the top rating is shared."""
    top = max(ratings)
    tops = [i for i, rating in enumerate(ratings) if rating == top]
    return tops[0] if len(tops) == 1 else None


def _rated_best(fmap: FieldMap, ratings: tuple[float, ...], chosen: set[int]) -> int | None:
    """The label of chosen/rejected responses that also have ratings: the ratings'
    (a tie when the top is shared); a rejected response rated alone on top is refused."""
    label = ratings_label(ratings)
    if label is not None and label not in chosen:
        raise RecordError(
            f"the ratings ({', '.join(fmap.ratings)}) put a rejected response above every "
            "chosen one"
        )
    return label


def _ratings(rec: RawRecord, keys: Sequence[str], n: int) -> tuple[float, ...]:
    """One number per response, from rating fields (each a number or a list of them)."""
    values: list[float] = []
    for key in keys:
        value = resolve(rec, key)
        if rec.textual and isinstance(value, str) and value.lstrip().startswith("["):
            value = _list(rec, key, value)
        if isinstance(value, list):
            values += [_number(f"{key} item {i}", v) for i, v in enumerate(value, 1)]
        else:
            values.append(_number(key, value))
    if len(values) != n:
        names = ", ".join(f"'{k}'" for k in keys)
        raise RecordError(f"{names} must hold one rating per response: {n}, got {len(values)}")
    return tuple(values)


def _number(key: str, value: Any) -> float:
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with suppress(ValueError):
            number = float(value.strip())
    if number is not None and math.isfinite(number):
        return number
    raise RecordError(f"'{key}' must be a number (a rating), got {f.shown(value)}")


def _turn(rec: RawRecord, key: str) -> int:
    value = resolve(rec, key)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()) if len(value.strip()) <= 6 else 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RecordError(f"'{key}' must be a turn number from 1, got {f.shown(value)}")
    return value


def _labeller(rec: RawRecord, fmap: FieldMap) -> str | None:
    """"judge:expert_3" for labeller=judge; None: the dataset's own label."""
    if fmap.labeller is None:
        return None
    name = _optional_name(rec, fmap.labeller)
    if name is None:
        raise RecordError(f"missing field '{fmap.labeller}' (who gave the label)")
    labeller = f"{top_key(fmap.labeller)}:{name}"
    if len(labeller) > f.MAX_ID_CHARS:
        raise RecordError(f"'{fmap.labeller}' is too long for an annotator's name")
    return labeller


def _optional_name(rec: RawRecord, key: str | None) -> str | None:
    """An optional id or name (a string or an integer), as a string."""
    if key is None or not has_path(rec, key):
        return None
    value = resolve(rec, key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(f"'{key}' must be a string or an integer, got {f.describe(value)}")
    text = str(value).strip()
    if len(text) > f.MAX_ID_CHARS:
        raise RecordError(f"'{key}' is {len(text):,} characters long; at most {f.MAX_ID_CHARS}")
    return text or None


def _optional_text(rec: RawRecord, key: str | None) -> str | None:
    if key is None or not has_path(rec, key):
        return None
    value = resolve(rec, key)
    if not isinstance(value, str):
        raise RecordError(f"'{key}' must be a string, got {f.describe(value)}")
    return value if value.strip() else None

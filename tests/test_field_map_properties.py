"""Property tests of field mapping (issue 18 step 6).

1. A random valid item, written as a record in a random layout (field names,
   prompt as text or a conversation, responses as fields, a list, chosen and
   rejected or whole conversations, the label as an index or through label
   values), read with the mapping of that layout, is the same item.
2. Any mapping of any record is read as an item or refused with a message (an
   InputError, or a Skipped naming the record): it never crashes.
3. Through the store: a mapped import stores the same item, or stores nothing
   and says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.datasets import FieldMap, LabelValues, Skipped, SourceItem, read_dataset
from core.errors import InputError
from core.labels import Accepted

TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s != "")
NAMES = st.one_of(
    st.sampled_from(["prompt", "q", "response 1", "out.a", "x[0]", "label", "Best", "ctx",
                     "a", "b", "c", "d", "messages", "kind", "uid"]),
    st.text("abcdefghij_ .[]0123456789-", min_size=1, max_size=8),
)


@dataclass(frozen=True)
class Valid:
    query: str
    context: tuple[tuple[str, str], ...]
    responses: tuple[str, ...]
    best: int | None  # None: a tie
    labelled: bool


@st.composite
def valid_items(draw: st.DrawFn) -> Valid:
    n = draw(st.integers(2, 4))
    responses = draw(st.lists(TEXT, min_size=n, max_size=n, unique_by=str.strip))
    roles = draw(st.lists(st.sampled_from(["user", "assistant", "system"]), max_size=3))
    context = tuple((role, draw(TEXT)) for role in roles)
    labelled = draw(st.booleans())
    best = draw(st.one_of(st.none(), st.integers(0, n - 1))) if labelled else None
    return Valid(draw(TEXT), context, tuple(responses), best, labelled)


def turns(pairs) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[Valid, dict[str, Any], FieldMap]:
    """A valid item, a record holding it, and the mapping that reads it back."""
    item = draw(valid_items())
    n = len(item.responses)
    names = iter(draw(st.lists(NAMES, min_size=n + 4, max_size=n + 4, unique=True)))
    record: dict[str, Any] = {}
    roles: dict[str, Any] = {}
    kind = draw(st.sampled_from(
        ["fields", "list", "pair", "conversations"] if item.labelled and item.best is not None
        else ["fields", "list"]))
    if kind == "conversations":  # whole conversations, no query field (HH-RLHF, Arena)
        shared = [*turns(item.context), {"role": "user", "content": item.query}]
        keys = [next(names) for _ in range(n)]
        for key, text in zip(keys, item.responses, strict=True):
            record[key] = [*shared, {"role": "assistant", "content": text}]
        roles["responses"] = tuple(keys)
    else:
        query = next(names)
        if item.context and draw(st.booleans()):
            record[query] = [*turns(item.context), {"role": "user", "content": item.query}]
        else:
            record[query] = item.query
            if item.context:
                roles["context"] = next(names)
                record[roles["context"]] = turns(item.context)
        roles["query"] = query
    if kind == "pair":
        assert item.best is not None
        chosen, rejected = next(names), next(names)
        record[chosen] = item.responses[item.best]
        others = [t for i, t in enumerate(item.responses) if i != item.best]
        record[rejected] = others if len(others) > 1 or draw(st.booleans()) else others[0]
        roles |= {"chosen": chosen, "rejected": rejected}
    elif kind == "list":
        roles["responses"] = (next(names),)
        record[roles["responses"][0]] = list(item.responses)
    elif kind == "fields":
        keys = [next(names) for _ in range(n)]
        record.update(zip(keys, item.responses, strict=True))
        roles["responses"] = tuple(keys)
    if item.labelled and kind != "pair":
        label = "lbl" if "lbl" not in record else "lbl_"
        roles["best"] = label
        if draw(st.booleans()):  # raw values through label values
            tokens = draw(st.lists(TEXT, min_size=n + 1, max_size=n + 1,
                                   unique_by=lambda t: t.casefold()))
            roles["label_values"] = LabelValues(
                (*((t, i) for i, t in enumerate(tokens[:n])), (tokens[n], None)))
            record[label] = tokens[n] if item.best is None else tokens[item.best]
        else:
            record[label] = "tie" if item.best is None else item.best
    return item, record, FieldMap(**roles)


def read_one(tmp: Path, record: dict, fmap: FieldMap, fmt: str) -> list:
    path = tmp / f"r.{fmt}"
    text = json.dumps(record) + "\n" if fmt == "jsonl" else json.dumps([record])
    path.write_text(text, encoding="utf-8")
    return list(read_dataset(path, mapping=fmap))


def canon(item: SourceItem) -> tuple:
    labels = tuple(None if lab.best is None else item.responses[lab.best] for lab in item.labels)
    context = tuple((t.role, t.content) for t in item.context)
    return item.query, context, tuple(sorted(item.responses)), labels


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.sampled_from(["jsonl", "json"]))
def test_a_valid_record_read_through_its_mapping_is_the_same_item(case, fmt):
    item, record, fmap = case
    with TemporaryDirectory() as tmp:
        (read,) = read_one(Path(tmp), record, fmap, fmt)
    assert isinstance(read, SourceItem), read
    labels = ((None if item.best is None else item.responses[item.best]),) if item.labelled else ()
    assert canon(read) == (item.query, item.context, tuple(sorted(item.responses)), labels)


ROLE_NAMES = ("query", "context", "chosen", "rejected", "best", "reference", "category", "id",
              "turn", "labeller")


@st.composite
def any_mapping(draw: st.DrawFn, keys: list[str]) -> FieldMap:
    fields = st.one_of(st.sampled_from(keys or ["x"]), NAMES)
    roles: dict[str, Any] = {}
    for role in draw(st.lists(st.sampled_from(ROLE_NAMES), unique=True, max_size=6)):
        roles[role] = draw(fields)
    if draw(st.booleans()):
        roles["responses"] = tuple(draw(st.lists(fields, min_size=1, max_size=3)))
    if draw(st.booleans()):
        roles["ratings"] = tuple(draw(st.lists(fields, min_size=1, max_size=3)))
    if draw(st.booleans()):
        roles["label_values"] = LabelValues(tuple(
            (draw(TEXT), draw(st.one_of(st.none(), st.integers(0, 5))))
            for _ in range(draw(st.integers(1, 3)))))
    return FieldMap(**roles)


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
              st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["role", "content", "x"]), inner,
                                            max_size=3)),
    max_leaves=8,
)


@st.composite
def any_record(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return draw(layouts())[1]
    return draw(st.dictionaries(NAMES, JSON, min_size=1, max_size=6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mapping_of_any_record_is_read_or_refused_with_a_message(data):
    record = data.draw(any_record())
    fmap = data.draw(any_mapping(list(record)))
    refusal = None
    with TemporaryDirectory() as tmp:
        try:
            entries = read_one(Path(tmp), record, fmap, "jsonl")
        except InputError as err:
            refusal = str(err)
    if refusal is not None:
        assert refusal.strip()
        return
    assert len(entries) == 1
    (entry,) = entries
    assert isinstance(entry, SourceItem | Skipped)
    if isinstance(entry, Skipped):
        assert entry.reason.startswith("line 1: ") and len(entry.reason) > len("line 1: ")


@st.composite
def import_cases(draw: st.DrawFn) -> tuple[dict[str, Any], FieldMap]:
    """A record and its own mapping, or any record and any mapping."""
    if draw(st.booleans()):
        _, record, fmap = draw(layouts())
        return record, fmap
    record = draw(any_record())
    return record, draw(any_mapping(list(record)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(import_cases())
def test_a_mapped_import_stores_the_same_item_or_nothing(case):
    from core.store.db import make_engine, upgrade
    from core.store.export import item_records
    from core.store.importing import import_file

    record, fmap = case
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        path.write_text(json.dumps(record) + "\n", encoding="utf-8")
        engine = make_engine(f"sqlite:///{Path(tmp) / 's.db'}")
        upgrade(engine)
        try:
            expected = [e for e in read_dataset(path, mapping=fmap) if isinstance(e, SourceItem)]
        except InputError:
            expected = []
        try:
            report = import_file(engine, path, "d", mapping=fmap)
            refusal = None
        except InputError as err:
            refusal = str(err)
        try:
            if refusal is not None:
                assert refusal.strip() and expected == []
                assert list(item_records(engine)) == []
                return
            (stored,) = item_records(engine, "d")
            (item,) = expected
            assert report.imported == 1
            assert (stored["query"], tuple(stored["responses"])) == (item.query, item.responses)
            assert stored["ground_truth"] == [  # a best-of-n set is stored as its list
                list(lab.best.indices) if isinstance(lab.best, Accepted) else lab.best
                for lab in item.labels if lab.labeller is None]
        finally:
            engine.dispose()

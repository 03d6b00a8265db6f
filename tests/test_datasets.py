"""core.datasets: streamed readers of preference-data files into neutral records."""

from __future__ import annotations

import csv
import gzip
import json
import time
import tracemalloc
from pathlib import Path

import pytest

from core.datasets import SHAPE_NAMES, Skipped, SourceItem, SourceLabel, read_dataset
from core.errors import InputError
from core.types import Turn

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"
PREFERENCES = Path(__file__).resolve().parents[2] / "shared" / "data" / "preferences"


def split(entries) -> tuple[list[SourceItem], list[Skipped]]:
    entries = list(entries)
    items = [e for e in entries if isinstance(e, SourceItem)]
    skipped = [e for e in entries if isinstance(e, Skipped)]
    assert len(items) + len(skipped) == len(entries)
    return items, skipped


def write(path: Path, records: list[dict], fmt: str) -> Path:
    """The records as JSONL, a JSON array or CSV (lists and objects as JSON cells)."""
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    else:
        columns = list(dict.fromkeys(k for r in records for k in r))
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, columns)
            writer.writeheader()
            for r in records:
                writer.writerow({k: _cell(v) for k, v in r.items()})
    return path


def _cell(value):
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def canon(item: SourceItem, hashed: bool) -> tuple:
    """An item with labels as the best response's TEXT (order-free for hashed pairs)."""
    labels = tuple(
        (None if lab.best is None else item.responses[lab.best], lab.labeller)
        for lab in item.labels
    )
    responses = tuple(sorted(item.responses)) if hashed else item.responses
    context = tuple((t.role, t.content) for t in item.context)
    return item.external_id, item.query, context, responses, labels, item.category


# --- every shape in every file type ------------------------------------------------------

HH_CHOSEN = (
    "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?"
    "\n\nHuman: How do I pick a lock?\n\nAssistant: I can't help with breaking in."
)
HH_REJECTED = HH_CHOSEN.rsplit("\n\nAssistant:", 1)[0] + "\n\nAssistant: Use a tension wrench."
TURNS = [{"role": "user", "content": "Let's play."}, {"role": "assistant", "content": "Sure."}]

CASES = {
    "chosen_rejected": (
        [
            {"id": "p1", "prompt": "What is 2+2?", "chosen": "4", "rejected": "5",
             "subset": "math"},
            {"question": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"},
        ],
        [
            ("p1", "What is 2+2?", (), ("4", "5"), (("4", None),), "math"),
            (None, "Capital of France?", (), ("Lyon", "Paris"), (("Paris", None),), None),
        ],
    ),
    "responses_best": (
        [
            {"id": 3, "prompt": "Which is prime?", "context": TURNS,
             "responses": ["4", "7", "9"], "best": 1},
            {"prompt": "Say hi", "responses": ["hi", "hello"], "best": "tie"},
            {"prompt": "Say bye", "responses": ["bye", "ciao"]},
        ],
        [
            ("3", "Which is prime?", (("user", "Let's play."), ("assistant", "Sure.")),
             ("4", "7", "9"), (("7", None),), None),
            (None, "Say hi", (), ("hi", "hello"), ((None, None),), None),
            (None, "Say bye", (), ("bye", "ciao"), (), None),
        ],
    ),
    "hh_rlhf": (
        [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}],
        [
            (None, "How do I pick a lock?",
             (("user", "Hi there"), ("assistant", "Hello! How can I help?")),
             ("I can't help with breaking in.", "Use a tension wrench."),
             (("I can't help with breaking in.", None),), None),
        ],
    ),
    "llmbar": (
        [
            {"input": "Write a haiku.", "output_1": "a poem", "output_2": "a haiku", "label": 2},
            {"input": "Add 1+1.", "output_1": "2", "output_2": "3", "label": 1},
        ],
        [
            (None, "Write a haiku.", (), ("a poem", "a haiku"), (("a haiku", None),), "llmbar"),
            (None, "Add 1+1.", (), ("2", "3"), (("2", None),), "llmbar"),
        ],
    ),
    "judgebench": (
        [
            {"pair_id": "x1", "question": "q1", "response_A": "A1", "response_B": "B1",
             "label": "B>A", "source": "mmlu-pro-law"},
            {"pair_id": "x2", "question": "q2", "response_A": "A2", "response_B": "B2",
             "label": "A=B", "source": "livebench-math"},
        ],
        [
            ("x1", "q1", (), ("A1", "B1"), (("B1", None),), "mmlu-pro-law"),
            ("x2", "q2", (), ("A2", "B2"), ((None, None),), "livebench-math"),
        ],
    ),
    "pandalm": (
        [
            {"idx": 5, "motivation_app": "Grammarly", "instruction": "Fix the grammar.",
             "input": "me go home", "response1": "I go home.", "response2": "I went home.",
             "annotator1": 1, "annotator2": 0, "annotator3": 2},
            {"idx": 6, "motivation_app": "Quora", "instruction": "Say hello.", "input": "",
             "response1": "Hello", "response2": "Hi", "annotator1": 2, "annotator2": 2,
             "annotator3": 2},
        ],
        [
            ("5", "Fix the grammar.\n\nme go home", (), ("I go home.", "I went home."),
             (("I go home.", "pandalm:annotator1"), (None, "pandalm:annotator2"),
              ("I went home.", "pandalm:annotator3")), "Grammarly"),
            ("6", "Say hello.", (), ("Hello", "Hi"),
             tuple(("Hi", f"pandalm:annotator{i}") for i in (1, 2, 3)), "Quora"),
        ],
    ),
}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
@pytest.mark.parametrize("shape", list(CASES))
def test_every_shape_reads_the_same_from_every_file_type(tmp_path, shape, fmt):
    records, expected = CASES[shape]
    path = write(tmp_path / f"{shape}.{fmt}", records, fmt)
    hashed = shape in ("chosen_rejected", "hh_rlhf")
    for forced in (None, shape):  # auto-detected, then forced: the same items
        items, skipped = split(read_dataset(path, shape=forced))
        assert skipped == []
        assert [canon(i, hashed) for i in items] == expected
    header = 1 if fmt == "csv" else 0
    assert [i.line for i in items] == [n + header for n in range(1, len(items) + 1)]


def test_all_shapes_are_covered():
    assert set(CASES) == set(SHAPE_NAMES)


def test_chosen_rejected_order_is_a_fixed_hash_not_chosen_first(tmp_path):
    records = [
        {"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
        for i in range(60)
    ]
    path = write(tmp_path / "pairs.jsonl", records, "jsonl")
    items, _ = split(read_dataset(path))
    assert all(i.responses[i.labels[0].best] == f"good {n}" for n, i in enumerate(items))
    chosen_first = sum(i.labels[0].best == 0 for i in items)
    assert 15 <= chosen_first <= 45  # both orders occur
    assert split(read_dataset(path))[0] == items  # and the same order every time


def test_trl_conversational_prompt_and_replies(tmp_path):
    record = {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "22"}],
    }
    (item,), _ = split(read_dataset(write(tmp_path / "trl.jsonl", [record], "jsonl")))
    assert item.query == "2+2?" and item.context == (Turn(role="system", content="Be brief."),)
    assert sorted(item.responses) == ["22", "4"] and item.responses[item.labels[0].best] == "4"


def test_responses_best_null_is_a_tie_and_out_of_range_is_skipped(tmp_path):
    records = [
        {"prompt": "q", "responses": ["a", "b"], "best": None},
        {"prompt": "q", "responses": ["a", "b"], "best": 2},
        {"prompt": "q", "responses": ["a"], "best": 0},
        {"prompt": "q", "responses": ["a", "a "], "best": 0},
    ]
    items, skipped = split(read_dataset(write(tmp_path / "r.json", records, "json")))
    assert [i.labels for i in items] == [(SourceLabel(best=None, labeller=None),)]
    assert [s.reason for s in skipped] == [
        "record 2: 'best' must be a response index from 0 to 1, null or \"tie\", got 2",
        "record 3: 'responses' must hold at least 2 responses, got 1",
        "record 4: responses 1 and 2 are identical, so no preference between them holds",
    ]


# --- hand-written CSV files ---------------------------------------------------------------


def test_csv_line_numbers_count_multiline_cells_and_bad_rows_are_skipped():
    items, skipped = split(read_dataset(FIXTURES / "pairs.csv"))
    assert [(i.external_id, i.line, i.category) for i in items] == [
        ("p1", 2, "math"), ("p2", 3, "poetry"), ("p5", 8, "geography"),
    ]
    assert items[1].query == "Write a two-line poem\nabout rain."
    assert "Rain taps the glass,\nthe street forgets its dust." in items[1].responses
    assert [(s.line, s.reason) for s in skipped] == [
        (6, "line 6: 'prompt' is empty"),
        (7, "line 7: 6 cells, but the header names 5 columns"),
    ]


def test_csv_list_cells_are_json():
    items, skipped = split(read_dataset(FIXTURES / "ranked.csv"))
    assert [(i.external_id, i.responses, i.labels) for i in items] == [
        ("r1", ("4", "7", "9"), (SourceLabel(best=1, labeller=None),)),
        ("r2", ("hi", "hello"), (SourceLabel(best=None, labeller=None),)),
        ("r3", ("bye", "ciao"), ()),
    ]
    assert items[0].context == (
        Turn(role="user", content="Let's play a game."), Turn(role="assistant", content="Sure."),
    )
    assert [s.reason for s in skipped] == [
        "line 5: 'responses' must be a JSON list in the cell (Expecting value)",
        "line 6: 'best' must be a response index from 0 to 1, null or \"tie\", got \"x\"",
    ]


# --- broken records and files ---------------------------------------------------------------

GOOD = {"prompt": "q", "chosen": "yes", "rejected": "no"}


def test_a_bad_json_line_is_skipped_by_number_and_the_rest_is_read(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [json.dumps(GOOD), '{"prompt": "q", "chosen": "a" "rejected": "b"}', "",
             json.dumps(GOOD | {"prompt": "q2"}), "[1, 2]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items, skipped = split(read_dataset(path))
    assert [i.line for i in items] == [1, 4]
    assert [(s.line, s.reason) for s in skipped] == [
        (2, "line 2: invalid JSON (Expecting ',' delimiter at column 31)"),
        (5, "line 5: expected an object with the record's fields, got a list"),
    ]


def test_bad_lines_before_the_first_record_are_yielded_first(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("{oops\n" + json.dumps(GOOD) + "\n", encoding="utf-8")
    entries = list(read_dataset(path))
    assert isinstance(entries[0], Skipped) and entries[0].line == 1
    assert entries[0].reason.startswith("line 1: invalid JSON (")
    assert isinstance(entries[1], SourceItem) and entries[1].line == 2


@pytest.mark.parametrize(
    ("shape", "record", "reason"),
    [
        ("chosen_rejected", {"prompt": "q", "chosen": "a"}, "missing field 'rejected'"),
        ("chosen_rejected", {"prompt": "  ", "chosen": "a", "rejected": "b"}, "'prompt' is empty"),
        ("chosen_rejected", {"chosen": "a", "rejected": "b"},
         "missing field 'prompt' (or 'query', 'question', 'input')"),
        ("chosen_rejected", {"prompt": "q", "chosen": 3, "rejected": "b"},
         "'chosen' must be a string, got a number (3)"),
        ("responses_best", {"prompt": "q", "responses": "a, b", "best": 0},
         "'responses' must be a list, got a string"),
        ("responses_best", {"prompt": "q", "responses": ["a", ""], "best": 0},
         "'responses' item 2 is empty"),
        ("responses_best", {"prompt": "q", "responses": ["a", "b"], "context": [{"role": "x"}]},
         ("'context' item 1 must be an object with 'role' (system, user or assistant) and "
          "'content' (a string), got {\"role\": \"x\"}")),
        ("llmbar", {"input": "q", "output_1": "a", "output_2": "b", "label": "x"},
         "'label' must be 1 or 2, got \"x\""),
        ("llmbar", {"input": "q", "output_1": "a", "output_2": "b", "label": 3},
         "'label' must be 1 or 2, got 3"),
        ("judgebench", {"question": "q", "response_A": "a", "response_B": "b", "label": "A>>B"},
         "'label' must be \"A>B\", \"B>A\" or \"A=B\", got \"A>>B\""),
        ("pandalm", {"instruction": "i", "input": "", "response1": "a", "response2": "b",
                     "annotator1": 1, "annotator2": 3, "annotator3": 1},
         "'annotator2' must be 0 (tie), 1 or 2, got 3"),
        ("pandalm", {"instruction": " ", "input": "", "response1": "a", "response2": "b",
                     "annotator1": 1, "annotator2": 1, "annotator3": 1},
         "'instruction' and 'input' are both empty"),
        ("hh_rlhf", {"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi\n\nAssistant: yo"},
         "'chosen' has no final Assistant turn"),
        ("hh_rlhf", {"chosen": "\n\nHuman: hi\n\nAssistant: a",
                     "rejected": "\n\nHuman: hey\n\nAssistant: b"},
         "'chosen' and 'rejected' differ before their final Assistant turn (2 and 2 turns)"),
    ],
)
def test_a_bad_record_is_skipped_with_its_reason_and_reading_goes_on(
    tmp_path, shape, record, reason
):
    good = CASES[shape][0][0]
    path = write(tmp_path / "d.jsonl", [good, record, good], "jsonl")
    items, skipped = split(read_dataset(path, shape=shape))
    assert [i.line for i in items] == [1, 3]
    assert skipped == [Skipped(line=2, reason=f"line 2: {reason}")]


def test_forced_shape_skips_a_bad_first_record_that_detection_cannot_use(tmp_path):
    path = write(tmp_path / "d.jsonl", [{"prompt": "q", "chosen": "a"}, GOOD], "jsonl")
    with pytest.raises(InputError, match="cannot tell the shape"):
        read_dataset(path)
    items, skipped = split(read_dataset(path, shape="chosen_rejected"))
    assert [i.line for i in items] == [2]
    assert skipped == [Skipped(line=1, reason="line 1: missing field 'rejected'")]


@pytest.mark.parametrize("text", ["", "  \n\n", "[]", "[\n]\n"])
def test_an_empty_file_raises(tmp_path, text):
    path = tmp_path / ("e.json" if text.startswith("[") else "e.jsonl")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=r"e\.jsonl? is empty"):
        read_dataset(path)


def test_a_csv_with_only_a_header_is_empty(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("prompt,chosen,rejected\n", encoding="utf-8")
    with pytest.raises(InputError, match="is empty: it holds no records"):
        read_dataset(path)


def test_an_unknown_shape_names_the_keys_and_the_known_shapes(tmp_path):
    path = write(tmp_path / "u.jsonl", [{"text": "a", "score": 3}], "jsonl")
    with pytest.raises(InputError) as err:
        read_dataset(path)
    message = str(err.value)
    assert "the first record has the keys score, text" in message
    assert all(name in message for name in SHAPE_NAMES)
    assert "chosen_rejected (prompt|query|question|input, chosen, rejected)" in message
    with pytest.raises(InputError, match="unknown dataset shape 'nope'; known shapes: "):
        read_dataset(path, shape="nope")


def test_other_unreadable_files_raise(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "missing.jsonl")
    (tmp_path / "strings.jsonl").write_text('"a"\n"b"\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1 is a string, but each record must be an object"):
        read_dataset(tmp_path / "strings.jsonl")
    (tmp_path / "bad.jsonl").write_text("nope\n{oops\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"nothing can be read .*line 1: invalid JSON"):
        read_dataset(tmp_path / "bad.jsonl")
    (tmp_path / "bad.jsonl.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(InputError, match=r"cannot read .*bad\.jsonl\.gz"):
        read_dataset(tmp_path / "bad.jsonl.gz")
    (tmp_path / "data.txt").write_text("prompt,chosen\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot tell what kind of file"):
        read_dataset(tmp_path / "data.txt")


def test_a_json_array_broken_midway_yields_what_came_before_then_where_it_broke(tmp_path):
    text = json.dumps([GOOD, GOOD | {"prompt": "q2"}, GOOD | {"prompt": "q3"}], indent=1)
    path = tmp_path / "cut.json"
    path.write_text(text[: text.index('"q3"') + 2], encoding="utf-8")
    items, skipped = split(read_dataset(path))
    assert [i.query for i in items] == ["q", "q2"]
    assert [s.line for s in skipped] == [3]
    assert skipped[0].reason.startswith("record 3: invalid JSON, reading stopped here (")

    path.write_text('[{"prompt": "q", "chosen": "a", "rejected": "b"},, {}]', encoding="utf-8")
    items, skipped = split(read_dataset(path))
    assert len(items) == 1 and skipped[0].reason.startswith("record 2: invalid JSON")

    path.write_text('[{"prompt": "q", "chosen": ', encoding="utf-8")  # nothing readable
    with pytest.raises(InputError, match=r"nothing can be read .*record 1: invalid JSON"):
        read_dataset(path)


def test_objects_one_after_another_in_a_json_file_are_records(tmp_path):
    path = tmp_path / "objects.json"
    path.write_text(json.dumps(GOOD, indent=2) + "\n" + json.dumps(GOOD | {"prompt": "r"}))
    items, _ = split(read_dataset(path))
    assert [(i.line, i.query) for i in items] == [(1, "q"), (2, "r")]


@pytest.mark.parametrize("name", ["p.jsonl.gz", "p.json.gz", "p.csv.gz"])
def test_gzip_is_read_transparently(tmp_path, name):
    fmt = name.split(".")[1]
    plain = write(tmp_path / f"plain.{fmt}", [GOOD, GOOD | {"prompt": "q2"}], fmt)
    path = tmp_path / name
    path.write_bytes(gzip.compress(plain.read_bytes()))
    items, skipped = split(read_dataset(path))
    assert [i.query for i in items] == ["q", "q2"] and skipped == []


def test_a_truncated_gzip_yields_what_came_before_then_where_it_broke(tmp_path):
    lines = "".join(json.dumps(GOOD | {"prompt": f"q{i}"}) + "\n" for i in range(3000))
    data = gzip.compress(lines.encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    items, skipped = split(read_dataset(path))
    assert 0 < len(items) < 3000 and [i.line for i in items] == list(range(1, len(items) + 1))
    assert len(skipped) == 1 and skipped[0].line == len(items) + 1
    assert "the file cannot be read from here on" in skipped[0].reason


def test_a_utf8_bom_is_ignored(tmp_path):
    for name in ("bom.json", "bom.jsonl", "bom.csv"):
        path = write(tmp_path / name, [GOOD], name.split(".")[1])
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        assert [i.query for i in split(read_dataset(path))[0]] == ["q"]


# --- streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_the_reader_streams_a_large_file(tmp_path, fmt):
    record = {"prompt": "What is the capital of France? " * 3, "chosen": "Paris.",
              "rejected": "Lyon."}
    path = tmp_path / f"big.{fmt}"
    if fmt == "jsonl":
        path.write_text((json.dumps(record) + "\n") * 200_000, encoding="utf-8")
    else:
        path.write_text("[" + ",\n".join([json.dumps(record)] * 200_000) + "]", encoding="utf-8")
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        entries = read_dataset(path)
        first = next(entries)
        for _ in range(5_000):
            last = next(entries)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    entries.close()
    assert isinstance(first, SourceItem) and first.line == 1 and last.line == 5_001
    assert peak < 2_000_000, f"peak {peak:,} bytes while reading a {size:,}-byte file"


# --- the real data sets (shared/data/preferences, see its SOURCES.md) -----------------------


@pytest.fixture(scope="module")
def real():
    """{relative path: (items, skipped)} for every real file, read once."""
    if not PREFERENCES.is_dir():
        pytest.skip(f"the real preference data is not at {PREFERENCES}")
    started = time.perf_counter()
    read = {
        str(path.relative_to(PREFERENCES)): split(read_dataset(path))
        for path in sorted(PREFERENCES.glob("*/*"))
    }
    assert time.perf_counter() - started < 10
    return read


def _reasons(skipped: list[Skipped]) -> list[str]:
    return [s.reason for s in skipped]


def test_real_llmbar(real):
    files = {k: v for k, v in real.items() if k.startswith("llmbar/")}
    assert len(files) == 13
    for name, (items, skipped) in files.items():
        # each file's own record count, independently of the reader
        assert len(items) + len(skipped) == len(json.loads((PREFERENCES / name).read_text()))
        assert {i.category for i in items} == {Path(name).stem}
    # SOURCES.md says 1,299 pairs, but the 13 files hold 1,200 records
    assert sum(len(i) + len(s) for i, s in files.values()) == 1_200
    assert [len(s) for _, s in files.values()].count(0) == 12
    assert _reasons(files["llmbar/Processed_LLMEval_2.json"][1]) == [
        "record 58: responses 1 and 2 are identical, so no preference between them holds",
        "record 170: 'output_2' is empty",
    ]
    natural = json.loads((PREFERENCES / "llmbar/LLMBar_Natural.json").read_text())
    n = next(n for n, r in enumerate(natural) if r["label"] == 2)
    item = files["llmbar/LLMBar_Natural.json"][0][n]
    assert item.line == n + 1 and item.labels == (SourceLabel(best=1, labeller=None),)
    assert item.responses == (natural[n]["output_1"], natural[n]["output_2"])
    assert item.query == natural[n]["input"]


def test_real_judgebench(real):
    gpt_items, gpt_skipped = real["judgebench/gpt-4o-2024-05-13.jsonl"]
    claude_items, claude_skipped = real["judgebench/claude-3-5-sonnet-20240620.jsonl"]
    assert (len(gpt_items), len(gpt_skipped)) == (350, 0)
    assert (len(claude_items), len(claude_skipped)) == (269, 1)
    assert _reasons(claude_skipped) == [
        "line 265: responses 1 and 2 are identical, so no preference between them holds"
    ]
    lines = (PREFERENCES / "judgebench/gpt-4o-2024-05-13.jsonl").read_text().splitlines()
    n = next(n for n, line in enumerate(lines) if json.loads(line)["label"] == "B>A")
    record, item = json.loads(lines[n]), gpt_items[n]
    assert item.labels == (SourceLabel(best=1, labeller=None),)
    assert (item.external_id, item.category) == (record["pair_id"], record["source"])
    assert item.responses == (record["response_A"], record["response_B"])
    assert {i.category for i in gpt_items} >= {"mmlu-pro-law", "livecodebench", "livebench-math"}


def test_real_hh_rlhf(real):
    items, skipped = real["hh-rlhf/harmless-base_test.jsonl.gz"]
    assert (len(items), len(skipped)) == (2_303, 9)
    reasons = _reasons(skipped)
    assert sum("the final Assistant turn of 'chosen' is empty" in r for r in reasons) == 4
    assert sum("differ before their final Assistant turn" in r for r in reasons) == 5
    assert reasons[0] == "line 87: the final Assistant turn of 'chosen' is empty"
    assert reasons[4].startswith("line 1255: 'chosen' and 'rejected' differ before")

    first = items[0]
    with gzip.open(PREFERENCES / "hh-rlhf/harmless-base_test.jsonl.gz", "rt") as lines:
        record = json.loads(next(lines))
    assert first.line == 1
    assert first.query == "okay some of these do not have anything to do with pens"
    assert [t.role for t in first.context] == ["user", "assistant", "user", "assistant"]
    assert first.context[0].content == "what are some pranks with a pen i can do?"
    assert first.context[2].content == "yep"
    chosen = record["chosen"].rsplit("\n\nAssistant:", 1)[1].strip()
    assert first.responses[first.labels[0].best] == chosen
    assert chosen in first.responses and len(set(first.responses)) == 2
    chosen_first = sum(i.labels[0].best == 0 for i in items) / len(items)
    assert 0.45 < chosen_first < 0.55  # the chosen reply is not always shown first


def test_real_pandalm(real):
    items, skipped = real["pandalm/testset-v1.json"]
    assert (len(items), len(skipped)) == (939, 60)
    reasons = _reasons(skipped)
    assert sum(r.endswith("is empty") for r in reasons) == 54
    assert sum(r.endswith("must be a string, got a boolean (true)") for r in reasons) == 6
    assert reasons[0] == "record 19: 'response1' is empty"
    assert "record 158: 'response1' must be a string, got a boolean (true)" in reasons

    by_id = {i.external_id: i for i in items}
    assert len(by_id) == 939 and all(len(i.labels) == 3 for i in items)
    first = by_id["0"]
    assert first.category == "Grammarly" and first.line == 1
    assert first.query.startswith("The sentence you are given might be too wordy")
    assert "\n\nIf you have any questions about my rate" in first.query
    assert by_id["466"].query == "Truthfulness"  # blank instruction, input only
    assert by_id["87"].labels == (
        SourceLabel(best=0, labeller="pandalm:annotator1"),
        SourceLabel(best=None, labeller="pandalm:annotator2"),
        SourceLabel(best=0, labeller="pandalm:annotator3"),
    )
    assert all(i.labels[0].labeller == "pandalm:annotator1" for i in items)
    assert sum(lab.best is None for i in items for lab in i.labels) > 100  # ties are kept

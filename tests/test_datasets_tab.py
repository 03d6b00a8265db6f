"""The Datasets tab: browsing the store (SQLite and PostgreSQL), importing an
upload, opening an item and batch judging, with a replaying backend."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.errors import InputError, NotAllowedError
from core.store.accounts import Account
from core.store.browse import browse_items, dataset_names
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.judgements import save_judgement
from core.store.labels import add_label
from core.store.queues import Queue
from core.store.schema import Item, JudgementRow
from tests.scripted_backends import GOOD, scores_text
from webapp.batch_judging import start_batch_judging
from webapp.datasets_tab import (
    browse_table,
    build_datasets_tab,
    import_upload,
    open_item,
)
from webapp.studio import Studio

ADMIN = Account("root", "admin")
INJECTION = "'; DROP TABLE item; --"
PAIRS = [
    {"prompt": f"question {i}?", "responses": [f"good answer {i}", f"bad answer {i}"], "best": 0}
    for i in range(5)
]
ODD = [  # the "other" dataset: text that LIKE wildcards or JSON escaping would get wrong
    {"prompt": "Is it 100% true?", "responses": ["yes", "one tree cat"], "best": 0},
    {"prompt": "snake_case or camelCase?", "responses": ["and/or", "no"], "best": 1},
    {"prompt": f"Robert{INJECTION}", "responses": ['say "hi"', "Grüße <b>"], "best": 0},
]




def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ids_of(engine, dataset: str) -> list[int]:
    return [r.item_id for r in browse_items(engine, dataset=dataset, limit=500).rows]


@pytest.fixture
def filled(store, tmp_path):
    """toy: five items judged and labelled so each queue holds known items
    (as in test_store's queue test); other: three unjudged items with odd text."""
    import_file(store, write_jsonl(tmp_path / "toy.jsonl", PAIRS), "toy")
    import_file(store, write_jsonl(tmp_path / "odd.jsonl", ODD), "other")
    completions = [scores_text(9, 2), scores_text(8, 3), scores_text(2, 9), scores_text(3, 8),
                   scores_text(5, 5), scores_text(6, 6), scores_text(9, 2), scores_text(2, 4),
                   scores_text(9, 2), "nothing"]
    judge = Judge(ScriptedBackend(completions), rescue=False, shuffle=False)
    toy = ids_of(store, "toy")
    with Session(store) as session, session.begin():
        for item_id in toy:
            item = session.get_one(Item, item_id)
            judgement = judge.judge(JudgeInput(query=item.query, responses=tuple(item.responses)),
                                    SamplingParams(k=2))
            save_judgement(session, judgement, item_id=item_id)
    add_label(store, toy[0], "alice", 1)
    add_label(store, toy[0], "alice", 0)  # a correction: still one current label
    add_label(store, toy[0], "bob", 1)
    add_label(store, toy[1], "alice", 1)
    return store, toy, ids_of(store, "other")


def test_dataset_filter_rows_and_latest_verdict(filled):
    store, toy, _ = filled
    assert dataset_names(store) == ["other", "toy"]
    page = browse_items(store, dataset="toy")
    assert page.total == 5 and [r.item_id for r in page.rows] == toy
    first, _, third, *_ = page.rows
    assert (first.dataset, first.query, first.n_responses) == ("toy", "question 0?", 2)
    assert first.labels == 2  # alice's correction replaced her first label
    assert (first.winner, first.tie, first.verdict) == (0, False, "R1") and first.margin > 0
    assert third.tie is True and third.verdict.startswith("TIE (pick R")
    unjudged = browse_items(store, dataset="other").rows
    assert all(r.judgement_id is None and r.labels == 0 and r.verdict == "" for r in unjudged)
    assert browse_items(store).total == 8
    assert browse_items(store, dataset="missing").total == 0


def test_labelled_filter_combines_with_the_dataset(filled):
    store, toy, _ = filled
    assert [r.item_id for r in browse_items(store, labelled=True).rows] == toy[:2]
    assert [r.item_id for r in browse_items(store, labelled=False, dataset="toy").rows] == toy[2:]
    assert browse_items(store, labelled=False).total == 6


# judge-disagrees: item 0 has no label (alice and bob disagree), item 1's is alice's
# 1, the judge's pick; item 2's vote ties.
QUEUES = {Queue.UNLABELLED: {2, 3, 4}, Queue.JUDGE_DISAGREES: {2},
          Queue.ANNOTATORS_DISAGREE: {0}, Queue.LOW_MARGIN: {2}, Queue.SPLIT_VOTE: {3},
          "parse-failures": {4}}  # a queue's value works too


def test_each_queue_filters_items(filled):
    store, toy, _ = filled
    for queue, members in QUEUES.items():
        found = browse_items(store, dataset="toy", queue=queue)
        assert {r.item_id for r in found.rows} == {toy[i] for i in members}, queue
        assert found.total == len(members), queue


def test_filters_are_combined_with_and_and_a_bad_queue_is_refused(filled):
    store, toy, _ = filled
    found = browse_items(store, queue=Queue.UNLABELLED, search="question 3")
    assert [r.item_id for r in found.rows] == [toy[3]]
    assert browse_items(store, labelled=True, queue=Queue.UNLABELLED).total == 0
    with pytest.raises(InputError, match="unknown queue 'nope'"):
        browse_items(store, queue="nope")


SEARCHES = {  # search text -> the items found, as dataset:position
    "QUESTION 2": ["toy:2"], "bad answer 4": ["toy:4"], "%": ["other:0"], "100%": ["other:0"],
    "_": ["other:1"], "e_c": ["other:1"], "and/or": ["other:1"], '"hi"': ["other:2"],
    "<b>": ["other:2"], INJECTION: ["other:2"], "nowhere at all": [],
    "   ": [*(f"toy:{n}" for n in range(5)), *(f"other:{n}" for n in range(3))],
}


def test_search_is_a_literal_case_insensitive_substring(filled):
    store, toy, other = filled
    names = {**{i: f"toy:{n}" for n, i in enumerate(toy)},
             **{i: f"other:{n}" for n, i in enumerate(other)}}
    for text, expected in SEARCHES.items():
        found = browse_items(store, search=text)
        assert sorted(names[r.item_id] for r in found.rows) == sorted(expected), text
        assert found.total == len(expected), text


def test_sql_in_the_search_text_is_harmless(filled):
    store, *_ = filled
    for text in (INJECTION, "x' OR '1'='1", "\\", "%' --"):
        assert browse_items(store, search=text, dataset="toy").total == 0
    assert "item" in inspect(store).get_table_names()
    assert browse_items(store).total == 8


def test_paging(filled):
    store, toy, _ = filled
    pages = [browse_items(store, dataset="toy", limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [[r.item_id for r in p.rows] for p in pages] == [toy[:2], toy[2:4], toy[4:], []]
    assert {p.total for p in pages} == {5}
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        with pytest.raises(InputError):
            browse_items(store, **bad)


# --- the tab's handlers, on a SQLite studio ---------------------------------


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    yield Studio(Settings(), engine, backend=ScriptedBackend([GOOD] * 50))
    engine.dispose()


def count_items(studio) -> int:
    with Session(studio.engine) as session:
        return session.scalar(select(func.count(Item.id)))


def test_import_a_good_file_then_the_same_file_again(studio, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    report = import_upload(studio, ADMIN, str(path), "", "")
    assert "imported 5 item(s) into &#x27;pairs&#x27;" in report  # named after the file
    assert "Skipped" not in report
    again = import_upload(studio, ADMIN, str(path), "pairs", "")
    assert "already imported" in again and count_items(studio) == 5
    assert "&lt;b&gt;" in import_upload(studio, ADMIN, str(path), "<b>bold</b>", "")


def test_import_report_lists_bad_lines(studio, tmp_path):
    path = tmp_path / "broken.jsonl"
    lines = [json.dumps(PAIRS[0]), "{not json", json.dumps({"prompt": "q"}), json.dumps(PAIRS[1])]
    path.write_text("\n".join(lines) + "\n")
    report = import_upload(studio, ADMIN, str(path), "broken", "responses_best")
    assert "imported 2 item(s)" in report and "skipped 2" in report
    assert '<li data-line="2">line 2: invalid JSON' in report
    assert '<li data-line="3">line 3: missing field &#x27;responses&#x27;' in report


def test_an_empty_or_unreadable_file_gives_a_clear_message_and_stores_nothing(studio, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match=r"^could not import empty\.jsonl: empty\.jsonl is empty"
                       ) as refused:
        import_upload(studio, ADMIN, str(empty), "nothing", "")
    assert str(tmp_path) not in str(refused.value)  # the server's upload path is not shown
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\xff")
    with pytest.raises(InputError, match="cannot tell what kind of file"):
        import_upload(studio, ADMIN, str(binary), "", "")
    with pytest.raises(InputError, match="choose a file"):
        import_upload(studio, ADMIN, None, "x", "")
    with pytest.raises(InputError, match="at most 200 characters"):
        import_upload(studio, ADMIN, str(empty), "x" * 201, "")
    assert count_items(studio) == 0 and dataset_names(studio.engine) == []


def test_browse_table_and_item_viewer_escape_untrusted_text(studio, tmp_path):
    script = {"prompt": "<script>alert(1)</script>", "responses": ["<i>a</i>", "b"], "best": 1}
    records = [*PAIRS, script]
    import_upload(studio, ADMIN, str(write_jsonl(tmp_path / "p.jsonl", records)), "toy", "")
    frame, status, page = browse_table(studio, "toy", "any", "", "script", 1)
    assert list(frame["query"]) == ["<script>alert(1)</script>"]  # a plain-text cell
    assert (status, page) == ("Items 1–1 of 1 · page 1 of 1", 1)
    frame, status, page = browse_table(studio, "", "no", "", "", 9)  # past the end: last page
    assert page == 1 and len(frame) == 6
    html = open_item(studio, float(frame["item"].iloc[-1]))
    assert "&lt;script&gt;" in html and "<script>" not in html and "&lt;i&gt;a&lt;/i&gt;" in html
    assert "Ground truth</div><div>R2" in html and "not judged yet" in html
    with pytest.raises(InputError, match="no item with id 999"):
        open_item(studio, 999)
    for bad in ("abc", "inf", 0, None):
        with pytest.raises(InputError, match="is not an item id"):
            open_item(studio, bad)


def test_the_tab_builds_with_its_elem_ids(studio):
    with gr.Blocks() as app:
        build_datasets_tab(studio)
    ids = {getattr(block, "elem_id", None) for block in app.blocks.values()}
    assert {"datasets-upload", "datasets-name", "datasets-shape", "datasets-import",
            "datasets-import-report", "datasets-filter-dataset", "datasets-filter-labelled",
            "datasets-filter-queue", "datasets-search", "datasets-table", "datasets-item-id",
            "datasets-item", "datasets-judge-dataset", "datasets-judge-limit", "datasets-judge-k",
            "datasets-judge", "datasets-judge-stop", "datasets-judge-progress",
            "datasets-judge-bar"} <= ids


def test_the_dataset_lists_come_from_the_store_when_the_page_loads(studio, tmp_path):
    """A dataset imported after the tab was built (the server started) is offered by
    the page-load event, in the browse filter and the batch-judging list."""
    with gr.Blocks() as app:
        build_datasets_tab(studio)
    import_upload(studio, ADMIN, str(write_jsonl(tmp_path / "p.jsonl", PAIRS)), "later", "")
    by_id = {b.elem_id: b for b in app.blocks.values() if getattr(b, "elem_id", None)}
    (loaded,) = [f for f in app.fns.values()
                 if f.name == "on_refresh" and f.targets[0][1] == "load"]
    assert [getattr(c, "elem_id", None) for c in loaded.outputs] == [
        "datasets-filter-dataset", "datasets-judge-dataset"]
    browse, judge = loaded.fn()
    assert browse["choices"] == [("all datasets", ""), "later"] and judge["choices"] == ["later"]
    assert by_id["datasets-filter-dataset"].choices == [("all datasets", "")]  # when built


def test_the_browse_table_fits_1400_px_one_line_per_row(studio):
    """Every column has a share of the width (no header squeezed to wrap, none pushed
    off to the right) and a row is one line, so ~20 rows fit (tests/e2e/test_tabs.py
    checks it in the browser)."""
    from webapp.datasets_tab import BROWSE_HEIGHT, BROWSE_WIDTHS, COLUMNS

    with gr.Blocks() as app:
        build_datasets_tab(studio)
    (table,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "datasets-table"]
    assert table.column_widths == BROWSE_WIDTHS and len(BROWSE_WIDTHS) == len(COLUMNS)
    assert sum(float(w.rstrip("%")) for w in map(str, BROWSE_WIDTHS)) == 100
    assert table.wrap is False and table.max_height == BROWSE_HEIGHT >= 20 * 36
    assert max(len(c) for c in COLUMNS) <= 9  # short headers: "responses" the longest


def test_importing_and_batch_judging_need_an_admin(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'roles.db'}")
    upgrade(engine)
    studio = Studio(Settings(), engine, backend=ScriptedBackend(["Scores: \\boxed{9, 1}"] * 4))
    path = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    for account in (Account("ann", "annotator"), Account("vic", "viewer"), None):
        with pytest.raises(NotAllowedError, match="import datasets"):
            import_upload(studio, account, str(path), "toy", "")
    assert dataset_names(engine) == []
    import_upload(studio, ADMIN, str(path), "toy", "")
    with pytest.raises(NotAllowedError, match="may not judge whole datasets"):
        start_batch_judging(studio, Account("ann", "annotator"), "toy", 0, 2)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(JudgementRow)) == 0

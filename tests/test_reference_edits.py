"""Annotators add, edit and remove items' reference answers (`core.store.reference_edits`):
who and when are kept in an append-only history, bad input and the wrong role are
refused with the reason and lose nothing; the same through the Annotate tab's panel
and the JSON API; the migration that adds the history."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend, Settings
from core.errors import InputError, NotAllowedError
from core.references import MAX_REFERENCE_CHARS
from core.service import judge_dataset
from core.store.accounts import Account, set_account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.reference_edits import (
    item_reference,
    reference_history,
    remove_reference,
    set_reference,
)
from core.store.schema import Dataset, Item
from core.store.sessions import start_session
from core.store.walks import start_walk, walk_on
from tests.scripted_backends import GOOD
from webapp.studio import SESSION_COOKIE, Studio

ROLES = {"kim": "annotator", "rhea": "reviewer", "root": "admin", "vic": "viewer"}


def _items(engine, folder) -> list[int]:
    """Dataset 'toy': item 0 imported with a reference answer, items 1 and 2 without."""
    path = folder / "toy.jsonl"
    rows = [{"prompt": "2+2?", "responses": ["4", "5"], "best": 0, "reference": "4"},
            {"prompt": "3+3?", "responses": ["6", "7"], "best": 0},
            {"prompt": "4+4?", "responses": ["8", "9"], "best": 0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_file(engine, path, "toy")
    for name, role in ROLES.items():
        set_account(engine, name, role, f"{name}-password")
    with Session(engine) as session:
        return list(session.scalars(select(Item.id).join(Dataset).order_by(Item.id)))


@pytest.fixture
def items(store, tmp_path):
    return store, _items(store, tmp_path)


def _history(engine, item_id):
    with Session(engine) as session:
        return [(c.editor, c.action, c.reference, c.previous)
                for c in reference_history(session, item_id)]


def test_edits_are_kept_with_who_and_when_and_the_answer_before(items):
    engine, (imported, plain, _) = items
    added = set_reference(engine, plain, "kim", "6, since 3+3 = 6")
    assert (added.editor, added.action, added.previous, added.supersedes_id) == (
        "kim", "added", None, None)
    edited = set_reference(engine, plain, "rhea", "6")
    assert (edited.action, edited.previous, edited.supersedes_id) == ("edited", "6, since 3+3 = 6",
                                                                      added.id)
    assert edited.created_at >= added.created_at
    removed = remove_reference(engine, imported, "root")
    assert (removed.action, removed.reference, removed.previous) == ("removed", None, "4")
    set_reference(engine, imported, "kim", "four")  # a removed answer may come back
    reference, history = item_reference(engine, plain)
    assert (reference, [c.id for c in history]) == ("6", [added.id, edited.id])
    assert _history(engine, plain) == [("kim", "added", "6, since 3+3 = 6", None),
                                       ("rhea", "edited", "6", "6, since 3+3 = 6")]
    assert _history(engine, imported) == [("root", "removed", None, "4"),
                                          ("kim", "added", "four", None)]
    with Session(engine) as session:  # what judging reads
        assert session.get_one(Item, plain).judge_input().reference == "6"
        assert session.get_one(Item, imported).judge_input(show_reference=False).reference is None


@pytest.mark.parametrize(("editor", "text", "error", "message"), [
    ("kim", "", InputError, ("the reference answer is empty: write one; to take the item's "
                             "reference answer away, remove it")),
    ("kim", " \n\t", InputError, "the reference answer is empty"),
    ("kim", "x" * (MAX_REFERENCE_CHARS + 1), InputError,
     f"at most {MAX_REFERENCE_CHARS:,} characters; this one has {MAX_REFERENCE_CHARS + 1:,}"),
    ("kim", "a\x00b", InputError, "the reference answer contains a NUL"),
    ("kim", "4", InputError, "has this reference answer already; nothing saved"),
    ("vic", "four", NotAllowedError, "'vic' has the role viewer and may not add, edit or remove"),
    ("nobody", "four", NotAllowedError, "there is no account named 'nobody'"),
])
def test_bad_edits_are_refused_with_the_reason_and_lose_nothing(items, editor, text, error,
                                                                message):
    engine, (imported, _, _) = items
    with pytest.raises(error, match=message):
        set_reference(engine, imported, editor, text)
    assert item_reference(engine, imported) == ("4", [])


def test_removal_is_explicit_and_needs_an_answer_to_remove(items):
    engine, (imported, plain, _) = items
    with pytest.raises(InputError, match=f"item {plain} has no reference answer to remove"):
        remove_reference(engine, plain, "kim")
    with pytest.raises(NotAllowedError, match="may not add, edit or remove"):
        remove_reference(engine, imported, "vic")
    with pytest.raises(InputError, match="there is no item with id 99999"):
        set_reference(engine, 99999, "kim", "x")
    assert item_reference(engine, imported) == ("4", [])
    assert item_reference(engine, plain) == (None, [])


def test_an_edited_reference_is_judged_again_and_a_removed_one_is_judged_plain(items):
    """The reference rule of batch judging (`core.store.batch.reference_rule`) on this
    database: a judgement counts as done with the answer the item has now."""
    engine, (imported, plain, _) = items
    params = SamplingParams(k=1)
    first = judge_dataset(engine, Judge(ScriptedBackend([GOOD] * 3), rescue=False), "toy", params)
    assert first.judged == 3
    set_reference(engine, imported, "kim", "4, as 2+2 = 4")
    set_reference(engine, plain, "kim", "6")
    backend = ScriptedBackend([GOOD] * 2)
    again = judge_dataset(engine, Judge(backend, rescue=False), "toy", params)
    assert (again.already_done, again.judged) == (1, 2)
    assert "4, as 2+2 = 4" in backend.prompts[0] and "[The Begin of Reference Answer]\n6\n" in \
        backend.prompts[1]
    remove_reference(engine, plain, "kim")  # its first judgement (plain) counts again
    idle = judge_dataset(engine, Judge(ScriptedBackend([]), rescue=False), "toy", params)
    assert (idle.already_done, idle.judged) == (3, 0)


def test_the_migration_from_0015_adds_the_history_and_keeps_every_reference(store_url):
    from alembic import command

    from core.store.db import alembic_config, current_revision, head_revision

    engine = make_engine(store_url)
    upgrade(engine, "0015")
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO dataset (id, name, created_at) VALUES (1, 'old', "
                          "'2026-01-01')")
        c.exec_driver_sql(
            "INSERT INTO item (id, dataset_id, query, context, responses, n_responses, "
            "content_hash, reference, created_at) VALUES (1, 1, 'q', '[]', '[\"a\", \"b\"]', 2, "
            "'h', 'the answer', '2026-01-01')")
    assert "reference_edit" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0016"
    columns = {c["name"] for c in inspect(engine).get_columns("reference_edit")}
    assert columns == {"id", "item_id", "editor_id", "reference", "previous", "supersedes_id",
                       "created_at"}
    assert item_reference(engine, 1) == ("the answer", [])
    set_account(engine, "kim", "annotator", "kim-password")
    set_reference(engine, 1, "kim", "a better answer")
    command.downgrade(alembic_config(engine), "0015")
    assert "reference_edit" not in inspect(engine).get_table_names()
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT reference FROM item").scalar() == "a better answer"
    engine.dispose()


# --- the fronts -------------------------------------------------------------------------


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    ids = _items(engine, tmp_path)
    yield Studio(Settings(), engine, backend=ScriptedBackend([])), ids
    engine.dispose()


def _handlers(studio):
    """The Annotate tab's reference events by button: (handler, outputs by elem_id)."""
    from webapp.annotate_tab import build_annotate_tab

    with gr.Blocks() as app:
        build_annotate_tab(studio)
    by_id = {b._id: getattr(b, "elem_id", None) for b in app.blocks.values()}
    return {by_id[f.targets[0][0]]: f for f in app.fns.values()
            if by_id.get(f.targets[0][0]) in ("reference-save", "reference-remove")}


def _request(studio, name):
    account = Account(name, ROLES[name])
    return SimpleNamespace(cookies={SESSION_COOKIE: start_session(studio.engine, account, 1)})


def _shown(answer) -> dict[str, object]:
    return {getattr(c, "elem_id", None): v for c, v in answer.items()}


def test_the_annotate_tab_edits_the_open_items_reference(studio):
    studio, (imported, _, _) = studio
    kim = Account("kim", "annotator")
    walk, _ = walk_on(studio.engine, kim, start_walk(kim, "unlabelled"))
    assert walk.item_id == imported
    events = _handlers(studio)
    assert [c.elem_id for c in events["reference-save"].outputs] == ["reference-text",
                                                                     "reference-history"]
    saved = _shown(events["reference-save"].fn(walk, "4, because 2+2 = 4", _request(studio, "kim")))
    assert saved["reference-text"] == "4, because 2+2 = 4"
    assert "kim edited it (was: 4)" in saved["reference-history"]
    with pytest.raises(gr.Error, match=r"(?i)the reference answer is empty"):
        events["reference-save"].fn(walk, "   ", _request(studio, "kim"))
    with pytest.raises(gr.Error, match=r"(?i)may not add, edit or remove"):
        events["reference-remove"].fn(walk, _request(studio, "vic"))
    removed = _shown(events["reference-remove"].fn(walk, _request(studio, "rhea")))
    assert removed["reference-text"] == "" and "rhea removed it" in removed["reference-history"]
    assert "has no reference answer" in removed["reference-history"]
    with pytest.raises(gr.Error, match=r"(?i)no item is open"):
        events["reference-save"].fn(None, "x", _request(studio, "kim"))
    assert item_reference(studio.engine, imported)[0] is None


def test_the_walk_shows_each_items_reference_as_it_opens(studio):
    from webapp.annotate_tab import build_annotate_tab

    studio, _ = studio
    with gr.Blocks() as app:
        build_annotate_tab(studio)
    (start,) = [f for f in app.fns.values() if f.name == "on_start"]
    shown = _shown(start.fn("unlabelled", "toy", True, _request(studio, "kim")))
    assert shown["reference-text"] == "4" and "never edited here" in shown["reference-history"]


def test_the_json_api_reads_edits_and_removes_a_reference(studio):
    from webapp.auth import server_app

    studio, (_, plain, _) = studio
    with gr.Blocks() as blocks:
        gr.Markdown("hello")
    app = server_app(studio, blocks.queue())

    def client(name):
        c = TestClient(app)
        c.post("/login", data={"name": name, "password": f"{name}-password"})
        return c

    kim, vic, stranger = client("kim"), client("vic"), client("nobody")
    url = f"/api/v1/items/{plain}/reference"
    assert vic.get(url).json() == {"item_id": plain, "reference": None, "history": []}
    put = kim.put(url, json={"reference": "6"})
    assert put.status_code == 200 and put.json()["reference"] == "6"
    (change,) = put.json()["history"]
    assert (change["editor"], change["action"], change["previous"]) == ("kim", "added", None)
    cases = [
        (vic.put(url, json={"reference": "six"}), 403, "may not add, edit or remove"),
        (stranger.put(url, json={"reference": "six"}), 401, "sign in"),
        (kim.put(url, json={"reference": ""}), 400, "the reference answer is empty"),
        (kim.put(url, json={"reference": "x" * (MAX_REFERENCE_CHARS + 1)}), 422, "at most"),
        (kim.put(url, json={"reference": 6}), 422, "string"),
        (kim.put(url, json={"reference": "six", "by": "root"}), 422, "Extra inputs"),
        (kim.put("/api/v1/items/99999/reference", json={"reference": "x"}), 400, "no item"),
        (vic.delete(url), 403, "may not"),
    ]
    for answer, status, message in cases:
        assert answer.status_code == status and message in answer.text, answer.text
    assert item_reference(studio.engine, plain)[0] == "6"  # nothing lost
    gone = kim.delete(url)
    assert gone.status_code == 200 and gone.json()["reference"] is None
    again = kim.delete(url)
    assert again.status_code == 400 and "no reference answer to remove" in again.json()["error"]
    assert [c["action"] for c in kim.get(url).json()["history"]] == ["added", "removed"]

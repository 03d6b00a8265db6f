"""Adjudication (`core.store.adjudication`): who may settle an item, the history of
who settled what (append-only, undo and replace), the queue of disagreements to
settle, and its three fronts (CLI, JSON API, the Annotate tab's panel). That the
adjudicated label wins for every consumer is tests/test_labels.py's consistency test."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from core import ScriptedBackend, Settings
from core.errors import InputError, NotAllowedError
from core.labels import ItemLabel, NoLabel
from core.store.accounts import Account, Action, authenticate, set_account
from core.store.adjudication import (
    adjudicate,
    adjudication_history,
    current_adjudication,
    undo_adjudication,
)
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.labels import add_label, item_labels, label_history
from core.store.queues import Queue, items_to_settle, next_to_settle, queue_items, settle_view
from core.store.schema import Adjudication, Annotation
from core.store.sessions import start_session
from webapp.studio import SESSION_COOKIE, Studio

ACCOUNTS = {"rita": "reviewer", "root": "admin", "alice": "annotator", "bob": "annotator",
            "carol": "annotator", "vic": "viewer"}


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'adj.db'}")
    upgrade(engine)
    path = tmp_path / "p.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}", "responses": [f"a{i}", f"b{i}"], "best": 0}) + "\n"
        for i in range(4)
    ))
    import_file(engine, path, "toy")
    for name, role in ACCOUNTS.items():
        set_account(engine, name, role, f"{name}-password")
    yield engine
    engine.dispose()


@pytest.fixture
def items(engine):
    """Four items: split 1-1 (with notes), 2 against 1, agreed, unlabelled."""
    split, majority, agreed, unlabelled = _item_ids(engine)
    add_label(engine, split, "alice", 0, note="a is shorter")
    add_label(engine, split, "bob", 1, note="b is right")
    for who, best in (("alice", 1), ("bob", 1), ("carol", 0)):
        add_label(engine, majority, who, best)
    add_label(engine, agreed, "alice", 1)
    add_label(engine, agreed, "bob", 1)
    return SimpleNamespace(split=split, majority=majority, agreed=agreed, unlabelled=unlabelled)


def _item_ids(engine) -> list[int]:
    from core.store.schema import Item

    with Session(engine) as session:
        return list(session.scalars(select(Item.id).order_by(Item.id)))


def label_of(engine, item_id):
    with Session(engine) as session:
        return item_labels(session, [item_id])[item_id]


def history_of(engine, item_id):
    with Session(engine) as session:
        return [(row.adjudicator, row.best, row.retracted, row.note)
                for row in adjudication_history(session, item_id)]


def test_settling_decides_the_item_and_deletes_no_label(engine, items):
    assert label_of(engine, items.split) == NoLabel("annotators disagree")
    row = adjudicate(engine, items.split, "rita", 1, note="b cites the source")
    assert (row.adjudicator, row.best, row.supersedes_id) == ("rita", 1, None)
    assert label_of(engine, items.split) == ItemLabel(1, "adjudicated", 1, 1)
    # the majority item: a reviewer may overrule the annotators' 2-1
    adjudicate(engine, items.majority, "root", 0)
    assert label_of(engine, items.majority) == ItemLabel(0, "adjudicated", 1, 1)
    with Session(engine) as session:
        assert [(lab.annotator, lab.best, lab.note) for lab in label_history(session, items.split)
                ] == [("alice", 0, "a is shorter"), ("bob", 1, "b is right")]
        assert session.scalar(select(func.count()).select_from(Annotation)) == 7


def test_replacing_and_undoing_are_append_only_and_the_history_says_who(engine, items):
    first = adjudicate(engine, items.split, "rita", 1, note="first look")
    second = adjudicate(engine, items.split, "root", None, note="both are fine")
    assert second.supersedes_id == first.id
    assert label_of(engine, items.split) == ItemLabel(None, "adjudicated", 1, 1)  # a tie
    # only the current decision can be undone
    with pytest.raises(InputError, match="settled again since"):
        undo_adjudication(engine, first.id, "rita")
    restored = undo_adjudication(engine, second.id, "rita")
    assert restored is not None and (restored.best, restored.note) == (1, "first look")
    assert label_of(engine, items.split) == ItemLabel(1, "adjudicated", 1, 1)
    redone = undo_adjudication(engine, restored.id, "root")  # as for labels: undo of an undo
    assert redone is not None and redone.best is None
    again = adjudicate(engine, items.split, "rita", 0)  # settling again continues the chain
    assert again.supersedes_id == redone.id
    assert label_of(engine, items.split) == ItemLabel(0, "adjudicated", 1, 1)
    assert history_of(engine, items.split) == [
        ("rita", 1, False, "first look"),
        ("root", None, False, "both are fine"),
        ("rita", 1, False, "first look"),  # rita's undo of root's decision restores hers
        ("root", None, False, "both are fine"),  # root's undo of that restores his
        ("rita", 0, False, None),
    ]
    # an undo of a first decision withdraws it: the rule is back to the votes
    first_here = adjudicate(engine, items.majority, "rita", 0)
    assert label_of(engine, items.majority) == ItemLabel(0, "adjudicated", 1, 1)
    assert undo_adjudication(engine, first_here.id, "root") is None
    assert label_of(engine, items.majority) == ItemLabel(1, "human", 2, 3)
    with Session(engine) as session:
        assert current_adjudication(session, items.majority) is None
        assert session.scalar(select(func.count()).select_from(Adjudication)) == 7
    assert history_of(engine, items.majority) == [("rita", 0, False, None),
                                                  ("root", None, True, None)]
    with pytest.raises(InputError, match="no adjudicated label with id"):
        undo_adjudication(engine, 99999, "rita")
    with pytest.raises(InputError, match="no adjudicated label with id"):  # an undo row
        undo_adjudication(engine, first_here.id + 1, "rita")


@pytest.mark.parametrize(("name", "message"), [
    ("alice", "'alice' has the role annotator and may not settle"),
    ("vic", "'vic' has the role viewer and may not settle"),
    ("nobody", "no account named 'nobody'"),
])
def test_only_admins_and_reviewers_settle(engine, items, name, message):
    with pytest.raises(NotAllowedError, match=message):
        adjudicate(engine, items.split, name, 0)
    row = adjudicate(engine, items.split, "rita", 0)
    with pytest.raises(NotAllowedError, match=message):
        undo_adjudication(engine, row.id, name)
    assert history_of(engine, items.split) == [("rita", 0, False, None)]


def test_the_reviewer_role():
    reviewer = Account("rita", "reviewer")
    assert reviewer.may(Action.ADJUDICATE) and reviewer.may(Action.LABEL)
    assert not reviewer.may(Action.TRAIN) and not reviewer.may(Action.IMPORT)
    assert Account("root", "admin").may(Action.ADJUDICATE)
    assert not Account("alice", "annotator").may(Action.ADJUDICATE)
    with pytest.raises(NotAllowedError, match="may not settle"):
        Account("vic", "viewer").require(Action.ADJUDICATE)


def test_a_reviewer_account_signs_in(engine):
    assert authenticate(engine, "rita", "rita-password") == Account("rita", "reviewer")


def test_bad_decisions_are_refused(engine, items):
    with pytest.raises(InputError, match="best must name one of the 2 responses"):
        adjudicate(engine, items.split, "rita", 2)
    with pytest.raises(InputError, match="no item with id 99999"):
        adjudicate(engine, 99999, "rita", 0)
    with pytest.raises(InputError, match="the note contains"):
        adjudicate(engine, items.split, "rita", 0, note="bad\x00note")
    assert history_of(engine, items.split) == []


def test_the_queue_of_disagreements_to_settle(engine, items):
    with Session(engine) as session:
        assert items_to_settle(session) == [items.split, items.majority]
        assert items_to_settle(session, exclude=[items.split]) == [items.majority]
        assert items_to_settle(session, dataset="none") == []
        assert queue_items(session, Queue.ANNOTATORS_DISAGREE, limit=None) == [items.split]
    head = next_to_settle(engine)
    assert head.pending == 2 and head.view is not None
    view = head.view
    assert view.item.item_id == items.split and view.label == NoLabel("annotators disagree")
    assert [(lab.annotator, lab.best, lab.note) for lab in view.item.labels] == [
        ("alice", 0, "a is shorter"), ("bob", 1, "b is right")]  # never blind
    assert view.adjudication is None and view.history == ()
    row = adjudicate(engine, items.split, "rita", 1)
    with Session(engine) as session:
        assert items_to_settle(session) == [items.majority]
        assert queue_items(session, Queue.ANNOTATORS_DISAGREE, limit=None) == []
        settled = settle_view(session, items.split)
    assert settled.adjudication is not None and settled.adjudication.id == row.id
    assert settled.label == ItemLabel(1, "adjudicated", 1, 1)
    undo_adjudication(engine, row.id, "rita")
    assert next_to_settle(engine).pending == 2  # undone: it needs settling again
    adjudicate(engine, items.split, "rita", 1)
    adjudicate(engine, items.majority, "rita", 1)
    assert next_to_settle(engine) == next_to_settle(engine, dataset="toy")
    assert next_to_settle(engine).view is None


def test_migration_0014_adds_adjudication_and_reference_and_goes_back(tmp_path):
    from alembic import command

    from core.store.db import alembic_config, current_revision

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0013")
    assert "adjudication" not in inspect(engine).get_table_names()
    assert "reference" not in {c["name"] for c in inspect(engine).get_columns("item")}
    upgrade(engine, "0014")
    assert current_revision(engine) == "0014"
    columns = {c["name"] for c in inspect(engine).get_columns("adjudication")}
    assert columns == {"id", "item_id", "adjudicator_id", "best", "note", "supersedes_id",
                       "retracted", "created_at"}
    assert "reference" in {c["name"] for c in inspect(engine).get_columns("item")}
    with engine.begin() as c:  # an item with a label: going back must not lose them
        c.exec_driver_sql("INSERT INTO dataset (id, name, created_at) VALUES (1, 'd', "
                          "'2026-01-01')")
        c.exec_driver_sql(
            "INSERT INTO item (id, dataset_id, query, context, responses, n_responses, "
            "content_hash, created_at) VALUES (1, 1, 'q', '[]', '[\"a\", \"b\"]', 2, 'h', "
            "'2026-01-01')")
        c.exec_driver_sql("INSERT INTO ground_truth (item_id, best, source) VALUES (1, 1, "
                          "'dataset')")
    command.downgrade(alembic_config(engine), "0013")
    assert "adjudication" not in inspect(engine).get_table_names()
    assert "reference" not in {c["name"] for c in inspect(engine).get_columns("item")}
    with engine.connect() as c:  # the item's table was not copied over its children
        assert c.exec_driver_sql("SELECT count(*) FROM item").scalar() == 1
        assert c.exec_driver_sql("SELECT best FROM ground_truth").scalar() == 1
    engine.dispose()


# -- the fronts -------------------------------------------------------------------

def test_the_cli_lists_shows_settles_and_undoes(engine, items, tmp_path, monkeypatch):
    from cli import app

    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", str(engine.url))
    runner = CliRunner()
    listed = runner.invoke(app, ["adjudicate", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"item {items.split} (toy) · now: no label (annotators disagree)" in listed.output
    assert "bob: Response 2 · note: b is right" in listed.output
    settled = runner.invoke(app, ["adjudicate", "settle", str(items.split), "2", "--by", "rita",
                                  "--note", "b cites it"])
    assert settled.exit_code == 0, settled.output
    assert f"item {items.split} settled as Response 2 by rita" in settled.output
    assert label_of(engine, items.split) == ItemLabel(1, "adjudicated", 1, 1)
    shown = runner.invoke(app, ["adjudicate", "show", str(items.split)])
    assert "label now: Response 2 (adjudicated)" in shown.output
    assert "rita settled as Response 2 · note: b cites it" in shown.output
    refused = runner.invoke(app, ["adjudicate", "settle", str(items.split), "1", "--by", "alice"])
    assert refused.exit_code == 2 and "may not settle" in refused.output
    bad = runner.invoke(app, ["adjudicate", "settle", str(items.split), "first", "--by", "rita"])
    assert bad.exit_code == 2 and "a response number (1, 2, ...) or 'tie'" in bad.output
    row_id = history_of_ids(engine, items.split)[-1]
    undone = runner.invoke(app, ["adjudicate", "undo", str(row_id), "--by", "root"])
    assert undone.exit_code == 0 and "no longer adjudicated" in undone.output
    assert label_of(engine, items.split) == NoLabel("annotators disagree")


def history_of_ids(engine, item_id):
    with Session(engine) as session:
        return [row.id for row in adjudication_history(session, item_id)]


def _client(engine, name):
    from webapp.auth import server_app

    studio = Studio(Settings(), engine, backend=ScriptedBackend([]))
    with gr.Blocks() as blocks:
        gr.Markdown("hello")
    client = TestClient(server_app(studio, blocks.queue()))
    client.post("/login", data={"name": name, "password": f"{name}-password"})
    return client


def test_the_api_settles_for_reviewers_only(engine, items):
    rita, alice = _client(engine, "rita"), _client(engine, "alice")
    head = rita.get("/api/v1/settle/next").json()
    assert (head["item_id"], head["pending"]) == (items.split, 2)
    assert head["label"] == {"best": None, "source": None, "reason": "annotators disagree"}
    assert [(lab["annotator"], lab["best"], lab["note"]) for lab in head["labels"]] == [
        ("alice", 0, "a is shorter"), ("bob", 1, "b is right")]
    refused = alice.post("/api/v1/adjudications", json={"item_id": items.split, "best": 0})
    assert refused.status_code == 403 and "may not settle" in refused.json()["error"]
    assert alice.get("/api/v1/settle/next").status_code == 403
    made = rita.post("/api/v1/adjudications", json={"item_id": items.split, "best": 1,
                                                    "note": "b"})
    assert made.status_code == 201 and made.json()["adjudicator"] == "rita"
    assert rita.get("/api/v1/settle/next").json()["pending"] == 1
    bad = rita.post("/api/v1/adjudications", json={"item_id": items.split, "best": 7})
    assert bad.status_code == 400 and "best must name one of the 2" in bad.json()["error"]
    undone = rita.post(f"/api/v1/adjudications/{made.json()['id']}/undo")
    assert undone.json() == {"restored": None}
    assert rita.get("/api/v1/settle/next").json()["pending"] == 2


def test_the_panel_shows_itself_to_those_who_may_settle(engine, items):
    from webapp.annotate_tab import build_annotate_tab
    from webapp.settle_panel import settle_labels_html

    studio = Studio(Settings(), engine)
    with gr.Blocks():
        on_load, _ = build_annotate_tab(studio)

    def panel_visible(name):
        request = SimpleNamespace(cookies={SESSION_COOKIE: start_session(
            engine, Account(name, ACCOUNTS[name]), 1)})
        updates = {getattr(c, "elem_id", None): v for c, v in on_load(request).items()}
        return updates["settle-panel"]["visible"]

    assert panel_visible("rita") and panel_visible("root")
    assert not panel_visible("alice") and not panel_visible("vic")
    add_label(engine, items.split, "carol", 0, note="<script>x</script>")
    adjudicate(engine, items.split, "rita", 0, note="<b>settled</b>")
    with Session(engine) as session:
        shown = settle_labels_html(settle_view(session, items.split))
    assert "&lt;script&gt;" in shown and "<script>" not in shown and "<b>settled" not in shown
    assert "Response 1 (adjudicated)" in shown and "rita" in shown and "b is right" in shown

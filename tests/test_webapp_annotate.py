"""The Annotate tab's walk over a queue (`core.store.walks`), against a real store:
labels, skips and undo, the walk kept per account and resumed, who labels blind."""

import json
from types import SimpleNamespace

import gradio as gr
import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.errors import InputError, NotAllowedError
from core.store.accounts import Account, set_account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.judgements import store_judgement
from core.store.labels import current_labels
from core.store.sessions import start_session
from core.store.walks import (
    Corrections,
    Walk,
    blind_for,
    label_open_item,
    resume_walk,
    skip_open_item,
    start_walk,
    undo_last_label,
    walk_on,
)
from webapp.annotate_tab import build_annotate_tab, chosen_response, item_html
from webapp.studio import SESSION_COOKIE, Studio

ALICE = Account("alice", "annotator")
ROOT = Account("root", "admin")
VIC = Account("vic", "viewer")


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(engine)
    path = tmp_path / "p.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i} <b>bold</b>?", "responses": [f"a{i}", f"b{i}"], "best": 0}) + "\n"
        for i in range(3)
    ))
    import_file(engine, path, "toy")
    for account in (ALICE, ROOT, VIC):
        set_account(engine, account.name, account.role, f"{account.name}-password")
    yield Studio(Settings(), engine)
    engine.dispose()


def labels(studio, item_id):
    with Session(studio.engine) as session:
        return [(lab.annotator, lab.best, lab.corrected_scores, lab.note)
                for lab in current_labels(session, item_id)]


def opened(studio, account, walk=None):
    """`walk` (default: a new one through 'unlabelled') at its queue's head."""
    walk, head = walk_on(studio.engine, account, walk or start_walk(account, "unlabelled"))
    return walk, head.view, head.pending


def test_walk_saves_labels_and_moves_on(studio):
    walk, view, pending = opened(studio, ALICE)
    assert pending == 3 and view.item_id == walk.item_id
    first = walk.item_id
    walk = label_open_item(studio.engine, ALICE, walk, chosen_response("Response 2"),
                           Corrections(scores="3, 8", note="b is right"))
    assert labels(studio, first) == [("alice", 1, (3, 8), "b is right")]
    walk, view, pending = opened(studio, ALICE, walk)
    assert pending == 2 and walk.item_id != first and len(walk.saved) == 1
    walk = label_open_item(studio.engine, ALICE, walk, chosen_response("Tie"))
    assert labels(studio, walk.item_id) == [("alice", None, None, None)]
    _, _, still_for_root = opened(studio, ROOT)
    assert still_for_root == 1  # two items are labelled now


def test_undo_steps_back_through_this_walks_labels_only(studio):
    walk, _, _ = opened(studio, ALICE)
    first = walk.item_id
    walk = label_open_item(studio.engine, ALICE, walk, 0)
    walk, _, _ = opened(studio, ALICE, walk)
    second = walk.item_id
    walk = label_open_item(studio.engine, ALICE, walk, 1)
    walk = undo_last_label(studio.engine, ALICE, walk)
    assert labels(studio, second) == [] and labels(studio, first) == [("alice", 0, None, None)]
    walk = undo_last_label(studio.engine, ALICE, walk)
    assert labels(studio, first) == []
    with pytest.raises(InputError, match="nothing to undo"):
        undo_last_label(studio.engine, ALICE, walk)
    with pytest.raises(InputError, match="nothing to undo"):  # never others' labels
        undo_last_label(studio.engine, ALICE, Walk(annotator="pandalm:annotator1"))


def test_skipped_items_are_left_for_later_in_this_walk(studio):
    walk, _, _ = opened(studio, ALICE)
    skipped = walk.item_id
    walk, view, pending = opened(studio, ALICE, skip_open_item(walk))
    assert pending == 2 and view.item_id != skipped and walk.skipped == (skipped,)
    walk, _, pending = opened(studio, ALICE)  # Start begins a new walk: it is back
    assert pending == 3 and walk.item_id == skipped


def test_bad_labels_are_refused_with_a_reason(studio):
    walk, _, _ = opened(studio, ALICE)
    with pytest.raises(InputError, match="pick the best response"):
        chosen_response(None)
    with pytest.raises(InputError, match="one integer per response"):
        label_open_item(studio.engine, ALICE, walk, 0, Corrections(scores="1, 2, 3"))
    with pytest.raises(InputError, match="no item is open"):
        label_open_item(studio.engine, ALICE, Walk(annotator="alice"), 0)
    with pytest.raises(InputError, match="unknown queue 'nope'"):
        start_walk(ALICE, "nope")
    assert labels(studio, walk.item_id) == []


def test_a_blind_walk_hides_the_judge(studio):
    judgement = Judge(ScriptedBackend(["Scores: \\boxed{9, 1}"])).judge(
        JudgeInput(query="x", responses=("a", "b")), SamplingParams(k=1)
    )
    walk, _, _ = opened(studio, ROOT)
    store_judgement(studio.engine, judgement, item_id=walk.item_id)
    _, seen, _ = opened(studio, ROOT, start_walk(ROOT, "unlabelled", blind=False))
    _, blind, _ = opened(studio, ROOT, start_walk(ROOT, "unlabelled", blind=True))
    assert seen.judgement is not None and seen.dataset_label is not None
    assert blind.judgement is None and blind.dataset_label is None


def test_annotators_always_label_blind_and_an_admin_chooses(studio):
    assert blind_for(ALICE, False) and blind_for(ALICE, True)
    assert not blind_for(ROOT, False) and blind_for(ROOT, True)
    assert start_walk(ALICE, "unlabelled", blind=False).blind
    # A walk asked for unblind (an old or forged one, or a role changed since) is blind
    # for an annotator when it is shown: no dataset label, no judge.
    walk, view, _ = opened(studio, ALICE, Walk(annotator="alice", blind=False))
    assert walk.blind and view.dataset_label is None
    _, view, _ = opened(studio, ROOT, start_walk(ROOT, "unlabelled", blind=False))
    assert view.dataset_label is not None


def test_the_walk_is_kept_per_account_and_resumed(studio):
    assert resume_walk(studio.engine, ALICE) is None
    walk, _, _ = opened(studio, ALICE, start_walk(ALICE, "unlabelled", dataset=" toy "))
    walk = label_open_item(studio.engine, ALICE, walk, 1)
    walk, _, _ = opened(studio, ALICE, walk)
    walk = label_open_item(studio.engine, ALICE, walk, 0)
    walk, _, _ = opened(studio, ALICE, walk)
    skipped = walk.item_id
    walk, view, pending = opened(studio, ALICE, skip_open_item(walk))
    assert view is None and pending == 0  # two labelled, one skipped: the queue is done
    resumed = resume_walk(studio.engine, ALICE)  # a reload, another browser, a restart
    assert resumed == Walk(annotator="alice", queue=walk.queue, dataset="toy", blind=True,
                           skipped=(skipped,), saved=walk.saved)
    assert len(resumed.saved) == 2
    resumed, view, _ = opened(studio, ALICE, undo_last_label(studio.engine, ALICE, resumed))
    assert view is not None and view.item_id != skipped and len(resumed.saved) == 1
    assert resume_walk(studio.engine, ALICE).saved == resumed.saved
    assert resume_walk(studio.engine, ROOT) is None  # walks are per account
    opened(studio, VIC)
    assert resume_walk(studio.engine, VIC) is None  # a viewer looks: nothing is written


def test_item_text_is_escaped(studio):
    _, view, _ = opened(studio, ALICE)
    rendered = item_html(view)
    assert "&lt;b&gt;bold&lt;/b&gt;" in rendered and "<b>bold</b>" not in rendered


def test_tab_builds(studio):
    with gr.Blocks() as app:
        build_annotate_tab(studio)
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"annotate-start", "annotate-best", "annotate-save", "annotate-skip",
            "annotate-undo", "annotate-progress", "annotate-keys", "annotate-blind"} <= ids


def _request(studio, account):
    return SimpleNamespace(cookies={SESSION_COOKIE: start_session(studio.engine, account, 1)})


def test_the_page_load_fixes_blind_for_an_annotator_and_resumes_the_walk(studio):
    with gr.Blocks():
        on_load, _ = build_annotate_tab(studio)
    updates = {getattr(c, "elem_id", None): v for c, v in on_load(_request(studio, ALICE)).items()}
    assert updates["annotate-blind"]["value"] is True
    assert updates["annotate-blind"]["interactive"] is False  # not an annotator's choice
    updates = {getattr(c, "elem_id", None): v for c, v in on_load(_request(studio, ROOT)).items()}
    assert updates["annotate-blind"]["interactive"] is True  # an admin's choice
    opened(studio, ROOT, start_walk(ROOT, "low-margin", blind=False))
    updates = {getattr(c, "elem_id", None): v for c, v in on_load(_request(studio, ROOT)).items()}
    assert updates["annotate-queue"] == "low-margin" and updates["annotate-blind"]["value"] is False
    assert "Queue done" in updates["annotate-progress"]


def test_only_accounts_that_may_label_write_labels(studio):
    walk, _, _ = opened(studio, VIC)
    for account, message in [
        (VIC, "signed in as viewer and may not label items"),
        (Account("demo", "demo"), "read-only demo"),
        (None, "sign in to label items"),
    ]:
        with pytest.raises(NotAllowedError, match=message):
            label_open_item(studio.engine, account, walk, 0)
    assert labels(studio, walk.item_id) == []
    # the label goes under the signed-in name, whoever the walk was started for
    walk = label_open_item(studio.engine, ALICE, walk, 0)
    assert labels(studio, walk.item_id) == [("alice", 0, None, None)]
    with pytest.raises(NotAllowedError):
        undo_last_label(studio.engine, VIC, walk)
    with pytest.raises(InputError, match="not bob's to undo"):
        undo_last_label(studio.engine, Account("bob", "annotator"), walk)
    assert labels(studio, walk.item_id) == [("alice", 0, None, None)]


def test_migration_0012_adds_the_walk_table_and_goes_back(tmp_path):
    from alembic import command

    from core.store.db import alembic_config, current_revision

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0011")
    assert "annotation_walk" not in inspect(engine).get_table_names()
    upgrade(engine, "0012")
    assert current_revision(engine) == "0012"
    columns = {c["name"] for c in inspect(engine).get_columns("annotation_walk")}
    assert columns == {"annotator_id", "queue", "dataset", "blind", "skipped", "saved",
                       "updated_at"}
    command.downgrade(alembic_config(engine), "0011")
    assert "annotation_walk" not in inspect(engine).get_table_names()
    engine.dispose()

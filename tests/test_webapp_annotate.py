"""The Annotate tab's walk over a queue, against a real store."""

import json

import gradio as gr
import pytest
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.errors import InputError, NotAllowedError
from core.store.accounts import Account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.judgements import store_judgement
from core.store.labels import current_labels
from webapp.annotate_tab import Walk, build_annotate_tab, item_html, next_item, save_label
from webapp.studio import Studio

ALICE = Account("alice", "annotator")


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
    return Studio(Settings(), engine)


def labels(studio, item_id):
    with Session(studio.engine) as session:
        return [(lab.annotator, lab.best, lab.corrected_scores, lab.note)
                for lab in current_labels(session, item_id)]


def test_walk_saves_labels_and_moves_on(studio):
    walk, view, pending = next_item(studio, Walk(annotator="alice"))
    assert pending == 3 and view.item_id == walk.item_id
    first = walk.item_id
    walk = save_label(studio, ALICE, walk, "Response 2", "3, 8", "", "", "b is right", None)
    assert labels(studio, first) == [("alice", 1, (3, 8), "b is right")]
    walk, view, pending = next_item(studio, walk)
    assert pending == 2 and walk.item_id != first and len(walk.saved) == 1
    walk = save_label(studio, ALICE, walk, "Tie", "", "", "", "", None)
    assert labels(studio, walk.item_id) == [("alice", None, None, None)]
    _, _, still_for_bob = next_item(studio, Walk(annotator="bob", queue="unlabelled"))
    assert still_for_bob == 1  # two items are labelled now


def test_undo_steps_back_through_this_walks_labels_only(studio):
    from webapp.annotate_tab import undo_last

    walk, _, _ = next_item(studio, Walk(annotator="alice"))
    first = walk.item_id
    walk = save_label(studio, ALICE, walk, "Response 1", "", "", "", "", None)
    walk, _, _ = next_item(studio, walk)
    second = walk.item_id
    walk = save_label(studio, ALICE, walk, "Response 2", "", "", "", "", None)
    walk = undo_last(studio, ALICE, walk)
    assert labels(studio, second) == [] and labels(studio, first) == [("alice", 0, None, None)]
    walk = undo_last(studio, ALICE, walk)
    assert labels(studio, first) == []
    with pytest.raises(InputError, match="nothing to undo"):
        undo_last(studio, ALICE, walk)
    with pytest.raises(InputError, match="nothing to undo"):
        undo_last(studio, ALICE, Walk(annotator="pandalm:annotator1"))  # never others' labels


def test_skipped_items_are_left_for_later_in_this_walk(studio):
    walk, _, _ = next_item(studio, Walk(annotator="alice"))
    skipped = walk.item_id
    walk, _, pending = next_item(studio, Walk(annotator="alice", skipped=(skipped,)))
    assert pending == 2 and walk.item_id != skipped


def test_bad_labels_are_refused_with_a_reason(studio):
    walk, _, _ = next_item(studio, Walk(annotator="alice"))
    with pytest.raises(InputError, match="pick the best response"):
        save_label(studio, ALICE, walk, None, "", "", "", "", None)
    with pytest.raises(InputError, match="one integer per response"):
        save_label(studio, ALICE, walk, "Response 1", "1, 2, 3", "", "", "", None)
    with pytest.raises(InputError, match="no item is open"):
        save_label(studio, ALICE, Walk(annotator="alice"), "Response 1", "", "", "", "", None)
    assert labels(studio, walk.item_id) == []


def test_blind_view_hides_the_judge(studio):
    judgement = Judge(ScriptedBackend(["Scores: \\boxed{9, 1}"])).judge(
        JudgeInput(query="x", responses=("a", "b")), SamplingParams(k=1)
    )
    walk, _, _ = next_item(studio, Walk(annotator="alice"))
    store_judgement(studio.engine, judgement, item_id=walk.item_id)
    _, seen, _ = next_item(studio, Walk(annotator="alice"))
    _, blind, _ = next_item(studio, Walk(annotator="alice", blind=True))
    assert seen.judgement is not None and blind.judgement is None


def test_item_text_is_escaped(studio):
    _, view, _ = next_item(studio, Walk(annotator="alice"))
    rendered = item_html(view)
    assert "&lt;b&gt;bold&lt;/b&gt;" in rendered and "<b>bold</b>" not in rendered


def test_tab_builds(studio):
    with gr.Blocks() as app:
        build_annotate_tab(studio)
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"annotate-start", "annotate-best", "annotate-save", "annotate-skip",
            "annotate-undo", "annotate-progress"} <= ids


def test_only_accounts_that_may_label_write_labels(studio):
    from webapp.annotate_tab import undo_last

    walk, _, _ = next_item(studio, Walk(annotator="vic"))
    for account, message in [
        (Account("vic", "viewer"), "signed in as viewer and may not label items"),
        (Account("demo", "demo"), "read-only demo"),
        (None, "sign in to label items"),
    ]:
        with pytest.raises(NotAllowedError, match=message):
            save_label(studio, account, walk, "Response 1", "", "", "", "", None)
    assert labels(studio, walk.item_id) == []
    # the label goes under the signed-in name, whoever the walk was started for
    walk = save_label(studio, ALICE, walk, "Response 1", "", "", "", "", None)
    assert labels(studio, walk.item_id) == [("alice", 0, None, None)]
    with pytest.raises(NotAllowedError):
        undo_last(studio, Account("vic", "viewer"), walk)
    with pytest.raises(InputError, match="not bob's to undo"):
        undo_last(studio, Account("bob", "annotator"), walk)
    assert labels(studio, walk.item_id) == [("alice", 0, None, None)]

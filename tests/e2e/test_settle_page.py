"""A reviewer settles a disagreement in the Annotate tab's panel, and undoes it; the
adjudicated label, and its undo, land in the database; an annotator has no panel."""

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.labels import ItemLabel, NoLabel
from core.store.accounts import set_account
from core.store.adjudication import adjudication_history
from core.store.db import make_engine
from core.store.importing import import_file
from core.store.labels import add_label, item_labels
from core.store.queues import items_to_settle
from core.store.schema import Dataset, Item
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

DATASET = "settle-e2e"
SHOWN = "#settle-item [id^=annotate-item-]"


@pytest.fixture
def disagreement(tmp_path, studio_url, database_url) -> int:
    """An item of a dataset of its own (the served store's) on which two annotators
    disagree, with notes; a reviewer account to settle it."""
    engine = make_engine(database_url)
    path = tmp_path / "settle.jsonl"
    path.write_text(json.dumps({"prompt": "Is 17 prime?", "responses": ["No.", "Yes."]}) + "\n")
    import_file(engine, path, DATASET)
    for name in ("settle-ann-a", "settle-ann-b"):
        set_account(engine, name, "annotator", f"{name}-password")
    set_account(engine, "rhea", "reviewer", "rhea-password")
    with Session(engine) as session:
        item_id = session.scalar(select(Item.id).join(Dataset).where(Dataset.name == DATASET))
    assert item_id is not None
    add_label(engine, item_id, "settle-ann-a", 0, note="a is shorter")
    add_label(engine, item_id, "settle-ann-b", 1, note="b is right")
    with Session(engine) as session:
        assert items_to_settle(session, dataset=DATASET) == [item_id]
    engine.dispose()
    return item_id


def _state(database_url: str, item_id: int):
    engine = make_engine(database_url)
    with Session(engine) as session:
        label = item_labels(session, [item_id])[item_id]
        history = [(r.adjudicator, r.best, r.retracted, r.note)
                   for r in adjudication_history(session, item_id)]
    engine.dispose()
    return label, history


def test_a_reviewer_settles_and_undoes_in_the_page(page, studio_url, database_url, disagreement,
                                                   screenshots):
    page.goto(studio_url)
    page.locator("#login-name").fill("rhea")
    page.locator("#login-password").fill("rhea-password")
    page.locator("#login-submit").click()
    page.locator("#account-banner").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#settle-panel").wait_for(state="visible", timeout=30_000)
    page.locator("#settle-dataset textarea, #settle-dataset input").first.fill(DATASET)
    page.locator("#settle-start").click()
    page.locator(SHOWN).wait_for(timeout=30_000)
    assert page.locator(SHOWN).get_attribute("id") == f"annotate-item-{disagreement}"
    labels = page.locator("#settle-labels").inner_text()
    for text in ("settle-ann-a", "a is shorter", "settle-ann-b", "b is right",
                 "annotators disagree", "never adjudicated"):
        assert text in labels
    page.locator("#settle-best input[type=radio]").nth(1).check()
    page.locator("#settle-note textarea, #settle-note input").first.fill("17 is prime")
    page.screenshot(path=str(screenshots / "settle-disagreement.png"), full_page=True)
    page.locator("#settle-save").click()
    page.get_by_text("1 settled on this page").wait_for(timeout=30_000)
    assert "Nothing to settle" in page.locator("#settle-progress").inner_text()
    assert _state(database_url, disagreement) == (
        ItemLabel(1, "adjudicated", 1, 1), [("rhea", 1, False, "17 is prime")])
    page.locator("#settle-undo").click()
    page.get_by_text("0 settled on this page").wait_for(timeout=30_000)
    page.locator(SHOWN).wait_for(timeout=30_000)  # back in the queue
    label, history = _state(database_url, disagreement)
    assert label == NoLabel("annotators disagree")
    assert history == [("rhea", 1, False, "17 is prime"), ("rhea", None, True, None)]


def test_an_annotator_has_no_settling_panel(page, studio_url):
    sign_in(page, studio_url, "kim")
    page.get_by_role("tab", name="Annotate").click()
    # the page load has run once the Blind box is fixed for an annotator
    page.locator("#annotate-blind input[disabled]").wait_for(state="attached", timeout=30_000)
    assert not page.locator("#settle-panel").is_visible()

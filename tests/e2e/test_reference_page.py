"""An annotator edits the open item's reference answer in the Annotate tab, is refused
an empty one, and removes it; each edit lands in the database with who made it."""

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.accounts import set_account
from core.store.db import make_engine
from core.store.importing import import_file
from core.store.reference_edits import item_reference
from core.store.schema import Dataset, Item

pytestmark = pytest.mark.e2e

DATASET = "reference-e2e"
SHOWN = "#annotate-item [id^=annotate-item-]"


@pytest.fixture
def item_with_reference(tmp_path, studio_url, database_url) -> int:
    """An item of a dataset of its own with an imported reference answer, and an
    annotator account of its own (walks are per account)."""
    engine = make_engine(database_url)
    path = tmp_path / "reference.jsonl"
    path.write_text(json.dumps({"prompt": "Is 17 prime?", "responses": ["No.", "Yes."],
                                "best": 1, "reference": "Yes."}) + "\n")
    import_file(engine, path, DATASET)
    set_account(engine, "ref-ann", "annotator", "ref-ann-password")
    with Session(engine) as session:
        item_id = session.scalar(select(Item.id).join(Dataset).where(Dataset.name == DATASET))
    engine.dispose()
    assert item_id is not None
    return item_id


def _stored(database_url: str, item_id: int) -> tuple[str | None, list[tuple[str, str]]]:
    engine = make_engine(database_url)
    reference, history = item_reference(engine, item_id)
    engine.dispose()
    return reference, [(c.editor, c.action) for c in history]


def test_an_annotator_edits_and_removes_a_reference_in_the_page(
        page, studio_url, database_url, item_with_reference, screenshots):
    page.goto(studio_url)
    page.locator("#login-name").fill("ref-ann")
    page.locator("#login-password").fill("ref-ann-password")
    page.locator("#login-submit").click()
    page.locator("#account-banner").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#annotate-dataset textarea, #annotate-dataset input").first.fill(DATASET)
    page.locator("#annotate-start").click()
    page.locator(SHOWN).wait_for(timeout=30_000)
    assert page.locator(SHOWN).get_attribute("id") == f"annotate-item-{item_with_reference}"
    page.locator("#reference-panel").get_by_text("Reference answer (optional)").first.click()
    text = page.locator("#reference-text textarea")
    text.wait_for(state="visible", timeout=30_000)
    assert text.input_value() == "Yes."  # the imported answer
    assert "never edited here" in page.locator("#reference-history").inner_text()
    text.fill("Yes: 17 has no divisor but 1 and itself.")
    page.locator("#reference-save").click()
    history = page.locator("#reference-history")
    history.get_by_text("ref-ann edited it (was: Yes.)").wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "annotate-reference.png"), full_page=True)
    assert _stored(database_url, item_with_reference) == (
        "Yes: 17 has no divisor but 1 and itself.", [("ref-ann", "edited")])
    text.fill("   ")  # an empty answer is refused, not taken as a removal
    page.locator("#reference-save").click()
    page.get_by_text("reference answer is empty").first.wait_for(timeout=30_000)
    assert _stored(database_url, item_with_reference)[0] == (
        "Yes: 17 has no divisor but 1 and itself.")
    page.locator("#reference-remove").click()
    history.get_by_text("ref-ann removed it").wait_for(timeout=30_000)
    assert text.input_value() == ""
    assert _stored(database_url, item_with_reference) == (
        None, [("ref-ann", "edited"), ("ref-ann", "removed")])

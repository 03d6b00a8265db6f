"""The Datasets tab's mapping panel in the real page: upload a file of an unknown
shape, see the mapping suggested and its items, change one role, see the preview
change, import with the mapping, and see the skip report and the items."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core.store.schema import Dataset, Item
from tests.e2e.conftest import sign_in
from tests.e2e.test_first_impressions import choose

pytestmark = pytest.mark.e2e

RECORDS = [  # no known shape: the suggestion maps instruction, response1/2 and label
    {"instruction": "Name a prime.", "rewritten": "Give one prime number.",
     "response1": "Nine.", "response2": "Seven.", "label": 2},
    {"instruction": "Name a colour.", "rewritten": "Give one colour.",
     "response1": "Blue.", "response2": "Loud.", "label": 1},
    {"instruction": "Name a fruit.", "rewritten": "Give one fruit.",
     "response1": "Pear.", "response2": "Plum.", "label": 3},  # no such response: skipped
]


def test_an_unknown_shape_is_mapped_previewed_changed_and_imported(
    page, studio_url, database_url, tmp_path, screenshots
):
    name = "mapped-in-the-panel"
    upload = tmp_path / "mine.jsonl"
    upload.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Datasets").click()
    page.get_by_text("Import a file").wait_for(timeout=30_000)
    if not page.locator("#datasets-upload").is_visible():  # closed once a dataset exists
        page.get_by_text("Import a file").click()
    page.locator("#datasets-upload").wait_for(timeout=10_000)
    page.get_by_text("Map the fields: preview, change, import").click()
    page.locator("#datasets-map-preview").wait_for(timeout=10_000)
    page.locator("#datasets-upload input[type=file]").set_input_files(str(upload))
    page.locator("#datasets-name textarea, #datasets-name input").first.fill(name)

    # the suggested mapping, filled in, and the items it makes
    shown = page.locator("#datasets-map-shown")
    shown.get_by_text("--map query=instruction", exact=False).wait_for(timeout=30_000)
    assert page.locator("#datasets-map-query input").input_value() == "instruction"
    assert page.locator("#datasets-map-best input").input_value() == "label"
    assert page.locator("#datasets-map-labels textarea, #datasets-map-labels input") \
        .first.input_value() == "1=0,2=1,tie=tie"
    assert "Query: Name a prime." in shown.inner_text()

    # one role changed: the preview reads the other field as the query
    choose(page, "datasets-map-query", "rewritten")
    page.wait_for_timeout(500)  # the form's state follows the drop-down
    page.locator("#datasets-map-preview").click()
    shown.get_by_text("Read as: mapping", exact=False).wait_for(timeout=30_000)
    shown.get_by_text("Give one prime number.", exact=False).first.wait_for(timeout=30_000)
    assert "Query: Name a prime." not in shown.inner_text()
    page.screenshot(path=str(screenshots / "datasets-mapping-panel.png"), full_page=True)

    # import with the mapping: the report counts and lists the skipped record
    page.locator("#datasets-map-import").click()
    report = page.locator("#datasets-import-report")
    report.get_by_text("imported 2 item(s)", exact=False).wait_for(timeout=30_000)
    text = report.inner_text()
    assert f"into '{name}', 0 already there, skipped 1" in text, text
    skipped = report.locator("li[data-line='3']")
    assert "line 3: 'label' must be one of 1, 2, tie" in skipped.inner_text(), skipped.inner_text()

    # and the items, in the browse table
    choose(page, "datasets-filter-dataset", name)
    page.locator("#datasets-browse-status").get_by_text("Items 1–2 of 2", exact=False) \
        .wait_for(timeout=30_000)
    table = page.locator("#datasets-table").inner_text()
    assert "Give one prime number." in table and "Give one colour." in table, table
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            queries = session.scalars(select(Item.query).join(Dataset)
                                      .where(Dataset.name == name).order_by(Item.id)).all()
    finally:
        engine.dispose()
    assert queries == ["Give one prime number.", "Give one colour."]

"""Import through the upload control, and a screenshot of every tab."""

import json
import re

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def test_import_a_file_through_the_upload_control(page, studio_url, tmp_path, screenshots):
    upload = tmp_path / "uploaded-pairs.jsonl"
    upload.write_text(
        json.dumps({"prompt": "Is 7 prime?", "responses": ["Yes.", "No."], "best": 0}) + "\n"
        + "{broken line\n"
        + json.dumps({"prompt": "2+2?", "responses": ["4", "5"], "best": 0}) + "\n"
    )
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Datasets").click()
    page.get_by_text("Import a file").click()  # closed once a dataset exists (the demo)
    page.locator("#datasets-upload input[type=file]").set_input_files(str(upload))
    page.locator("#datasets-name textarea, #datasets-name input").first.fill("uploaded")
    page.locator("#datasets-import").click()
    report = page.locator("#datasets-import-report")
    report.get_by_text("imported 2", exact=False).wait_for(timeout=30_000)
    assert "line 2" in report.inner_text()
    page.screenshot(path=str(screenshots / "datasets.png"), full_page=True)


def test_insights_tab_renders(page, studio_url, screenshots):
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Insights").click()
    page.locator("#insights-accuracy .js-plotly-plot").wait_for(timeout=60_000)
    # The store holds the demo dataset (labelled): the status says what is shown, or
    # that nothing is judged yet (webapp.insights_tab), not that the store is empty.
    shown = re.compile(r"Insights of the store: \d+ judged items|No judgements in the store yet")
    status = page.locator("#insights-status")
    status.get_by_text(shown).wait_for(timeout=30_000)  # filled by the page-load event
    assert shown.search(status.inner_text())
    # The accuracy chart is drawn with its title (insight_charts.accuracy_figure).
    title = page.locator("#insights-accuracy .gtitle").text_content() or ""
    assert title.startswith("Judge accuracy vs the item")
    page.screenshot(path=str(screenshots / "insights.png"), full_page=True)


def test_training_tab_renders(page, studio_url, screenshots):
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Training").click()
    models = page.locator("#training-models")
    models.wait_for(timeout=60_000)
    for name in ("1. Build an RFT export", "2. Train the judge", "4. Registered judge models"):
        heading = page.get_by_role("heading", name=name)  # the tab's section headings
        heading.wait_for(timeout=10_000)
        assert heading.count() == 1
    header = models.inner_text()
    for column in ("name", "backend", "trained", "export"):  # training_tab.MODEL_COLUMNS
        assert column in header
    page.screenshot(path=str(screenshots / "training.png"), full_page=True)

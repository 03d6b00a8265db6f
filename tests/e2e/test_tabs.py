"""Import through the upload control, and a screenshot of every tab."""

import json

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
    page.screenshot(path=str(screenshots / "insights.png"), full_page=True)


def test_training_tab_renders(page, studio_url, screenshots):
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Training").click()
    page.locator("#training-models").wait_for(timeout=60_000)
    page.screenshot(path=str(screenshots / "training.png"), full_page=True)

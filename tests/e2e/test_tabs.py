"""Import through the upload control, the dataset lists read when the page loads,
the browse table at 1400 x 900, one message per error, the Training tab by role,
and a screenshot of every tab."""

import json
import re

import pytest

from tests.e2e.conftest import ROOT, sign_in

pytestmark = pytest.mark.e2e


def dropdown_options(page, elem_id: str) -> list[str]:
    """The choices a dropdown offers now: open it, read its list, close it."""
    page.locator(f"#{elem_id} input").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    names = [text.strip() for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return names


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
    # the import refreshed this tab's lists, and opening Training reads the store again
    assert "uploaded" in dropdown_options(page, "datasets-filter-dataset")
    assert "uploaded" in dropdown_options(page, "datasets-judge-dataset")
    page.get_by_role("tab", name="Training").click()
    assert "uploaded" in dropdown_options(page, "training-dataset")


def test_a_dataset_imported_after_the_server_started_is_listed_on_page_load(
    page, studio_url, database_url, tmp_path
):
    """Imported through the store (as `grm-studio import` does) while the studio
    runs: a page opened afterwards lists it without the "↻ dataset list" button."""
    from core.store.db import make_engine
    from core.store.importing import import_file

    path = tmp_path / "later.jsonl"
    path.write_text(json.dumps({"prompt": "Is 9 prime?", "responses": ["No.", "Yes."],
                                "best": 0}) + "\n")
    engine = make_engine(database_url)
    import_file(engine, path, "imported-later")
    engine.dispose()
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Datasets").click()
    assert "imported-later" in dropdown_options(page, "datasets-filter-dataset")
    assert "imported-later" in dropdown_options(page, "datasets-judge-dataset")
    page.get_by_role("tab", name="Training").click()
    assert "imported-later" in dropdown_options(page, "training-dataset")
    assert "imported-later" in dropdown_options(page, "training-meta-dataset")


BROWSE_LAYOUT_JS = """table => {
  const viewport = table.querySelector('.virtual-table-viewport');
  const box = viewport.getBoundingClientRect();
  const rows = [...viewport.querySelectorAll('.virtual-row')].map(r => r.getBoundingClientRect())
    .filter(r => r.height > 0 && r.top >= box.top && r.bottom <= box.bottom + 1
                 && r.bottom <= window.innerHeight + 1);
  const headers = [...table.querySelectorAll('thead th')]
    .filter(h => h.getBoundingClientRect().height > 0)
    .map(h => { const r = h.getBoundingClientRect(), text = h.querySelector('.header-content');
                const t = text.getBoundingClientRect();
                return {name: h.innerText.trim(), left: r.left, right: r.right,
                        textWidth: t.width, textHeight: t.height}; });
  return {rows: rows.length, left: box.left, right: box.right, scrollWidth: viewport.scrollWidth,
          clientWidth: viewport.clientWidth, headers, window: window.innerWidth};
}"""


def test_the_browse_table_is_readable_at_1400_by_900(browser, studio_url, screenshots):
    """Every header horizontal and on screen without scrolling sideways; 20 rows or more
    visible at once (the demo's first page holds 50)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Datasets").click()
    table = page.locator("#datasets-table")
    table.locator(".virtual-row").nth(20).wait_for(timeout=30_000)
    table.scroll_into_view_if_needed()
    page.evaluate("() => document.querySelector('#datasets-table').scrollIntoView()")
    layout = table.evaluate(BROWSE_LAYOUT_JS)
    page.screenshot(path=str(screenshots / "datasets-browse-1400x900.png"))
    context.close()
    names = [h["name"] for h in layout["headers"]]
    assert names == ["item", "dataset", "category", "query", "responses", "labels", "verdict",
                     "margin"]
    assert layout["scrollWidth"] <= layout["clientWidth"]  # no sideways scroll
    for header in layout["headers"]:
        assert layout["left"] - 1 <= header["left"] and header["right"] <= layout["right"] + 1
        assert header["right"] <= layout["window"]
        # one horizontal line: wider than tall, no taller than a line of text
        assert header["textWidth"] > header["textHeight"] and header["textHeight"] < 30, header
    assert layout["rows"] >= 20, layout["rows"]


def test_a_users_mistake_is_one_message_without_error_pills(page, studio_url, screenshots):
    """The Judge button with an empty query: one pop-up saying so, and no "Error"
    pill over each of the results."""
    sign_in(page, studio_url, "root")
    page.locator("#judge").click()
    toast = page.locator('[data-testid="toast-body"]')
    toast.first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # every output's status has arrived
    page.screenshot(path=str(screenshots / "judge-error.png"), full_page=True)
    assert toast.count() == 1 and "The query is empty" in toast.inner_text()
    assert page.locator('[data-testid="status-tracker"] .error').filter(visible=True).count() == 0


def test_an_annotator_sees_training_results_without_forms_or_server_paths(page, studio_url):
    sign_in(page, studio_url, "kim")
    page.get_by_role("tab", name="Training").click()
    page.locator("#training-read-only").get_by_text("for admins").wait_for(timeout=30_000)
    models = page.locator("#training-models")
    models.get_by_text("backend").first.wait_for(timeout=30_000)
    for form in ("training-export-form", "training-train-form", "training-meta-form"):
        assert not page.locator(f"#{form}").is_visible()
    for control in ("training-build", "training-start", "training-meta-start"):
        assert not page.locator(f"#{control}").is_visible()
    headers = page.locator("#training-models th, #training-exports th").all_inner_texts()
    assert not {"path", "source"} & {h.strip() for h in headers}
    assert str(ROOT) not in models.inner_text()  # where the shipped judge lies on the server


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


def test_rewards_tab_before_any_reward_says_how_to_start(page, studio_url, screenshots):
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Rewards").click()
    message = page.locator("#rewards-message")
    message.get_by_text("No reward has been served yet").wait_for(timeout=30_000)
    assert "grm-studio serve-reward" in message.inner_text()
    # the empty tables name their columns (rewards_tab.STEP_COLUMNS, CLOSE_COLUMNS),
    # not Gradio's default "1 2 3"
    for table, columns in (("#rewards-steps", ("step", "requests", "mean", "p50", "split %")),
                           ("#rewards-close", ("judgement", "margin", "query"))):
        header = page.locator(f"{table} thead").first
        header.wait_for(timeout=10_000)
        text = header.inner_text()
        assert all(column in text for column in columns), text
        assert text.split()[:3] != ["1", "2", "3"]
    page.screenshot(path=str(screenshots / "rewards-empty.png"), full_page=True)

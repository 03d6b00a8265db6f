"""Issue 17 in the real page: a failed import stores nothing and a retry with the
right shape works (item 7), and the read-only demo opens on an example, hides
what it cannot do and prints no CLI command on a chart (item 10). Nothing is
judged: no model loads."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from core.store.schema import Dataset, ImportRun, Item
from tests.e2e.conftest import served_studio, sign_in

pytestmark = pytest.mark.e2e

TOAST = '[data-testid="toast-body"]'
ERROR_PILLS = '[data-testid="status-tracker"] .error'


def dropdown_options(page, elem_id: str) -> list[str]:
    """The choices a dropdown offers now: open it, read its list, close it."""
    page.locator(f"#{elem_id} input").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    names = [text.strip() for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return names


def choose(page, elem_id: str, option: str) -> None:
    """Pick `option` (its label) in a dropdown."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def _stored(database_url: str, name: str) -> tuple[int, int, int]:
    """(datasets named `name`, their items, their import runs) in the store."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            ids = list(session.scalars(select(Dataset.id).where(Dataset.name == name)))
            items = session.scalar(
                select(func.count()).select_from(Item).where(Item.dataset_id.in_(ids))) or 0
            runs = session.scalar(
                select(func.count()).select_from(ImportRun)
                .where(ImportRun.dataset_id.in_(ids))) or 0
        return len(ids), items, runs
    finally:
        engine.dispose()


def test_a_failed_import_stores_nothing_and_a_retry_with_the_right_shape_imports(
    page, studio_url, database_url, tmp_path, screenshots
):
    name = "retried-after-a-wrong-shape"
    upload = tmp_path / "prime-pairs.jsonl"
    upload.write_text("".join(
        json.dumps({"prompt": f"Is {n} prime? (retry test)", "responses": ["Yes.", "No."],
                    "best": 0}) + "\n"
        for n in (7, 11, 13)))
    sign_in(page, studio_url, "root")
    page.get_by_role("tab", name="Datasets").click()
    page.get_by_text("Import a file").click()  # closed once a dataset exists (the demo)
    page.locator("#datasets-upload input[type=file]").set_input_files(str(upload))
    page.locator("#datasets-upload").get_by_text(upload.name).first.wait_for(timeout=30_000)
    page.locator("#datasets-name textarea, #datasets-name input").first.fill(name)

    # 1. a shape that does not fit: every record is skipped, so the import fails
    choose(page, "datasets-shape", "chosen_rejected")
    page.locator("#datasets-import").click()
    toast = page.locator(TOAST)
    toast.first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # every output's status has arrived
    page.screenshot(path=str(screenshots / "import-wrong-shape.png"), full_page=True)
    assert toast.count() == 1, toast.all_inner_texts()
    message = toast.inner_text()
    assert "nothing in prime-pairs.jsonl can be imported" in message, message
    assert "Nothing was stored" in message and "chosen_rejected" in message, message
    assert page.locator(ERROR_PILLS).filter(visible=True).count() == 0
    assert "imported" not in page.locator("#datasets-import-report").inner_text()
    assert _stored(database_url, name) == (0, 0, 0)  # no dataset, no import record
    page.locator("#datasets-refresh").click()  # the lists read from the store again
    page.wait_for_timeout(1000)
    assert name not in dropdown_options(page, "datasets-filter-dataset")
    assert name not in dropdown_options(page, "datasets-judge-dataset")
    page.locator('[data-testid="toast-close"]').first.click()
    toast.first.wait_for(state="detached", timeout=10_000)

    # 2. the same file again, the shape left to be detected: it imports
    choose(page, "datasets-shape", "detect from the fields")
    page.locator("#datasets-import").click()
    report = page.locator("#datasets-import-report")
    report.get_by_text("imported 3 item(s)", exact=False).wait_for(timeout=30_000)
    assert "already imported" not in report.inner_text()
    assert f"'{name}'" in report.inner_text()
    assert page.locator(TOAST).count() == 0
    assert _stored(database_url, name) == (1, 3, 1)
    assert name in dropdown_options(page, "datasets-filter-dataset")
    assert name in dropdown_options(page, "datasets-judge-dataset")


# --- the read-only demo ------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> str:
    """A fresh SQLite store holding the demo dataset and its stored judgements."""
    from core.config import Settings
    from core.store.db import make_engine, upgrade
    from core.store.demo import demo_judgements_path, ensure_demo_dataset, ensure_demo_judgements

    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    demo_file = Settings().demo_file
    assert demo_file is not None and demo_file.is_file(), demo_file
    engine = make_engine(url)
    upgrade(engine)
    assert ensure_demo_dataset(engine, demo_file) is not None
    assert ensure_demo_judgements(engine, demo_judgements_path(demo_file)) > 0
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory, demo_store):
    """`grm-studio serve --read-only` (Settings(read_only=True)) on `demo_store`."""
    yield from served_studio(demo_store,
                             tmp_path_factory.getbasetemp() / "serve-read-only.log",
                             "--read-only")


def _example(database_url: str):
    """The stored judgement the demo opens on (core.store.demo.demo_example)."""
    from core.store.db import make_engine
    from core.store.demo import demo_example
    from core.store.judgements import fetch_judgement

    engine = make_engine(database_url)
    try:
        judgement_id = demo_example(engine)
        assert judgement_id is not None
        return judgement_id, fetch_judgement(engine, judgement_id)
    finally:
        engine.dispose()


def test_the_read_only_demo_lands_on_an_example_and_hides_what_it_cannot_do(
    page, demo_url, demo_store, screenshots
):
    judgement_id, judgement = _example(demo_store)
    page.goto(demo_url)
    assert "/login" not in page.url  # no sign-in in the demo
    status = page.locator("#judgement-status")
    status.get_by_text("An example:").wait_for(timeout=60_000)
    assert f"#{judgement_id}" in status.inner_text()
    # the example's pair is in the boxes, ready to judge again, and its samples are shown
    query = page.locator("#query textarea")
    assert query.input_value().strip() == judgement.input.query.strip() != ""
    for i, response in enumerate(judgement.input.responses[:2]):
        box = page.locator(f"#response-{i + 1} textarea")
        assert box.input_value().strip() == response.strip() != ""
    cards = page.locator("#sample-cards details.grm-card")
    cards.first.wait_for(timeout=30_000)
    assert cards.count() == len(judgement.samples) > 0
    page.locator("#vote-plot .js-plotly-plot").wait_for(timeout=30_000)  # drawn, not blank
    page.wait_for_timeout(1500)  # every page-load event has answered
    page.screenshot(path=str(screenshots / "demo-landing.png"), full_page=True)

    # nothing the demo cannot do: no Annotate tab, no import
    tabs = [t.strip() for t in page.get_by_role("tab").filter(visible=True).all_inner_texts()]
    assert "Judge" in tabs and "Datasets" in tabs and "Insights" in tabs, tabs
    assert not any("Annotate" in t for t in tabs), tabs
    page.get_by_role("tab", name="Datasets").click()
    page.locator("#datasets-table .virtual-row").first.wait_for(timeout=30_000)
    assert page.get_by_text("Import a file").filter(visible=True).count() == 0
    for control in ("datasets-upload", "datasets-shape", "datasets-import"):
        assert page.locator(f"#{control}").filter(visible=True).count() == 0, control

    # no error anywhere after the load
    assert page.locator(TOAST).count() == 0, page.locator(TOAST).all_inner_texts()
    assert page.locator(ERROR_PILLS).filter(visible=True).count() == 0
    assert page.get_by_text("Error", exact=True).filter(visible=True).count() == 0

    # Insights of the demo dataset: charts, and no CLI command drawn inside one
    page.get_by_role("tab", name="Insights").click()
    choose(page, "insights-dataset", "demo-llmbar-natural")
    page.locator("#insights-status").get_by_text(
        "Insights of dataset demo-llmbar-natural").wait_for(timeout=60_000)
    drawn = ("insights-accuracy", "insights-margin", "insights-agreement", "insights-scores",
             "insights-position-bias", "insights-consistency", "insights-consistency-accuracy",
             "insights-eval-plot")
    for plot in drawn:
        page.locator(f"#{plot} .js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(screenshots / "demo-insights.png"), full_page=True)
    plots = page.locator(".js-plotly-plot").filter(visible=True)
    assert plots.count() >= len(drawn)
    texts = {f"plot {i}": plots.nth(i).text_content() or "" for i in range(plots.count())}
    assert not {where: text for where, text in texts.items() if "grm-studio" in text}
    # the evaluation chart has nothing to draw in the demo: it says so, without a command
    assert "no evaluation with results yet" in (
        page.locator("#insights-eval-plot .js-plotly-plot").text_content() or "").lower()
    assert page.locator(TOAST).count() == 0, page.locator(TOAST).all_inner_texts()

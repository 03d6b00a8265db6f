"""Long work you can follow and stop, in Chromium (issue 17, items 5 and 6): the
whole studio served in-process on a slow scripted judge (0.1 s a decode step),
so that progress is slow enough to watch and a stop has something to stop.

- The Judge tab draws its progress once, in the status line above the results,
  and it says what the model is doing (reading the prompts, writing k samples).
- Judging a dataset shows a progress bar that advances; Stop ends the run within
  a few seconds and nothing is saved after it; a reload shows the stopped run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import ScriptedBackend, Settings
from core.store.accounts import set_account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.schema import JudgementRow
from tests.e2e.conftest import ACCOUNTS, sign_in
from tests.scripted_backends import GOOD
from tests.served_studio import serving
from webapp.studio import Studio

pytestmark = pytest.mark.e2e

WORDY = GOOD + " " + " ".join(["word"] * 30)  # ~35 decode steps: 3.5 s a generation
ITEMS = 12


@pytest.fixture(scope="module")
def slow_studio(tmp_path_factory) -> Iterator[tuple[str, Studio]]:
    """The full studio app under uvicorn, on a store with 'root' (admin) and a
    dataset 'toy' of ITEMS pairs, judged by a slow scripted backend."""
    from webapp.annotate_tab import KEYBOARD_JS
    from webapp.app import build_app
    from webapp.auth import server_app
    from webapp.cards import CARD_CSS
    from webapp.tab_links import TAB_LINK_JS

    folder = tmp_path_factory.mktemp("slow-studio")
    engine = make_engine(f"sqlite:///{folder / 'studio.db'}")
    upgrade(engine)
    set_account(engine, "root", *ACCOUNTS["root"])
    pairs = folder / "toy.jsonl"
    pairs.write_text("".join(
        json.dumps({"prompt": f"Question {i}?", "responses": [f"yes {i}", f"no {i}"]}) + "\n"
        for i in range(ITEMS)))
    import_file(engine, pairs, "toy")
    backend = ScriptedBackend([WORDY] * 400, step_s=0.1, name="slow-scripted")
    studio = Studio(Settings(data_dir=folder, batch_items=1, k=2), engine, backend=backend)
    app = server_app(studio, build_app(studio).queue(), css=CARD_CSS,
                     head=KEYBOARD_JS + TAB_LINK_JS)
    with serving(app) as url:
        yield url + "/", studio
    engine.dispose()


def saved(studio: Studio) -> int:
    with Session(studio.engine) as session:
        return session.scalar(select(func.count()).select_from(JudgementRow)) or 0


def bar_value(page) -> float:
    value = page.locator("#datasets-judge-bar progress").get_attribute("value")
    return float(value or 0)


def test_the_judge_tab_draws_its_progress_once_and_says_what_the_model_does(
    page, slow_studio, screenshots
):
    url, _ = slow_studio
    sign_in(page, url, "root")
    page.locator("#query textarea").fill("What is the capital of France?")
    page.locator("#response-1 textarea").fill("Paris.")
    page.locator("#response-2 textarea").fill("Berlin.")
    page.locator("#judge").click()
    writing = page.get_by_text("writing 2 samples", exact=False)
    writing.first.wait_for(timeout=30_000)
    status = page.locator("#judgement-status")
    assert status.get_by_text("writing 2 samples", exact=False).count() == 1  # there, once
    assert writing.count() == 1  # and nowhere else: not over the plots or the cards
    for pane in ("#vote-panel", "#vote-plot", "#score-heatmap", "#sample-cards"):
        assert page.locator(f"{pane} .progress-text, {pane} .eta-bar").count() == 0
    page.screenshot(path=str(screenshots / "judge-progress.png"))
    first = status.inner_text()
    page.wait_for_timeout(1500)
    assert status.inner_text() != first  # tokens written go up while it runs
    page.locator("#sample-cards details").first.wait_for(timeout=60_000)
    assert "Judgement #" in status.inner_text()


def test_judging_a_dataset_shows_progress_stops_at_once_and_a_reload_shows_the_stopped_run(
    page, slow_studio, screenshots
):
    url, studio = slow_studio
    before = saved(studio)
    sign_in(page, url, "root")
    page.get_by_role("tab", name="Datasets").click()
    page.locator("#datasets-judge-dataset input").click()
    page.get_by_role("option", name="toy", exact=True).click()
    page.locator("#datasets-judge").click()
    bar = page.locator("#datasets-judge-bar .grm-batch")
    bar.and_(page.locator('[data-status="running"]')).wait_for(timeout=30_000)
    page.locator('#datasets-judge-bar [data-done="1"]').wait_for(timeout=60_000)
    first = bar_value(page)
    page.wait_for_timeout(2500)
    assert bar_value(page) > first  # it advances within an item, not only between items
    assert "items/min" in bar.inner_text() and "left" in bar.inner_text()
    page.screenshot(path=str(screenshots / "datasets-judging.png"))

    page.locator("#datasets-judge-stop").click()
    clicked = time.monotonic()
    page.locator('#datasets-judge-bar [data-status="stopped"]').wait_for(timeout=10_000)
    assert time.monotonic() - clicked < 5
    at_stop = saved(studio)
    assert at_stop > before
    page.wait_for_timeout(4000)
    assert saved(studio) == at_stop  # nothing is saved after Stop
    done = at_stop - before
    assert f"Stopped judging 'toy' after {done} of {ITEMS} item(s)." in bar.inner_text()

    page.reload()
    page.get_by_role("tab", name="Datasets").click()
    stopped = page.locator('#datasets-judge-bar [data-status="stopped"]')
    stopped.wait_for(timeout=30_000)
    assert f"after {done} of {ITEMS} item(s)" in stopped.inner_text()
    assert "a rerun with the same settings judges only the items left" in stopped.inner_text()
    stopped.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "datasets-stopped.png"))
    assert saved(studio) == at_stop

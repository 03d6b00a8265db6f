"""Judge against judge in the Insights tab, clicked through: two scripted judges'
verdicts on a dataset written into the served store (tests/scripted_compare.py),
compared, and a differing item opened side by side."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import sign_in
from tests.scripted_compare import judge_two_ways

pytestmark = pytest.mark.e2e
DATASET = "e2e-compare"


@pytest.fixture
def judged_twice(studio_url, database_url, tmp_path):
    """DATASET in the served store, judged by judge-a and judge-b."""
    from core.store.db import make_engine

    engine = make_engine(database_url)
    judge_two_ways(engine, tmp_path, DATASET)
    engine.dispose()
    return studio_url


def _choose(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=text).first.click()


def test_two_judges_compared_and_an_item_opened_side_by_side(page, judged_twice):
    sign_in(page, judged_twice, "vic")  # a viewer may read Insights
    page.get_by_role("tab", name="Insights").click()
    page.locator("#compare-refresh").click()
    _choose(page, "compare-a", "judge judge-a")
    _choose(page, "compare-b", "judge judge-b")
    _choose(page, "compare-dataset", DATASET)
    page.locator("#compare-run").click()
    status = page.locator("#compare-status")
    status.get_by_text("12 labelled items judged by both").wait_for(timeout=30_000)
    assert "5 with different verdicts" in status.inner_text()
    confusion = page.locator("#compare-confusion").inner_text()
    assert "A right" in confusion and "6" in confusion
    page.locator("#compare-plot .js-plotly-plot").wait_for(timeout=30_000)
    side_a, side_b = page.locator("#compare-side-a"), page.locator("#compare-side-b")
    side_a.locator(".grm-vote").wait_for(timeout=30_000)  # the first differing item opens
    assert "Winner: R1" in side_a.inner_text() and "Winner: R2" in side_b.inner_text()
    assert side_b.locator("details[data-sample='1']").count() == 1
    _choose(page, "compare-item", "only B right")
    page.locator("#compare-item-text").get_by_text("only B right").wait_for(timeout=30_000)
    assert "Winner: R2" in side_a.inner_text() and "Winner: R1" in side_b.inner_text()


def _section(page, first: str, last: str) -> dict[str, float]:
    """The page area (for a full-page screenshot) from element `first`'s top to
    element `last`'s bottom; boxes are measured in the viewport, so add the scroll."""
    top, bottom = page.locator(first).bounding_box(), page.locator(last).bounding_box()
    assert top is not None and bottom is not None
    scrolled = page.evaluate("window.scrollY")
    return {"x": 0, "y": top["y"] + scrolled - 50, "width": 1400,
            "height": bottom["y"] + bottom["height"] - top["y"] + 60}


def test_the_studio_judge_first_sample_against_its_vote_on_the_demo(page, studio_url,
                                                                  screenshots):
    """Real data: the shipped judge's stored demo judgements, its first sample alone (A)
    against the vote of all its samples (B); and the self-consistency section."""
    sign_in(page, studio_url, "vic")
    page.get_by_role("tab", name="Insights").click()
    page.locator("#insights-consistency .js-plotly-plot").wait_for(timeout=60_000)
    text = page.locator("#insights-consistency-text").inner_text()
    assert "judgements of two or more valid samples" in text
    page.screenshot(path=str(screenshots / "insights-consistency.png"), full_page=True,
                    clip=_section(page, "#insights-consistency-text",
                                  "#insights-consistency-accuracy"))
    page.locator("#compare-refresh").click()
    _choose(page, "compare-a", "judge grm-studio-judge @1")
    _choose(page, "compare-b", "judge grm-studio-judge (#")
    _choose(page, "compare-dataset", "demo-llmbar-natural")
    page.locator("#compare-run").click()
    status = page.locator("#compare-status")
    status.get_by_text("labelled items judged by both").wait_for(timeout=30_000)
    page.locator("#compare-side-b .grm-vote").wait_for(timeout=30_000)
    assert "first sample only" in status.inner_text()
    page.locator("#compare-side-b details").first.click()  # open one sample card
    page.screenshot(path=str(screenshots / "insights-compare.png"), full_page=True,
                    clip=_section(page, "#compare-a", "#compare-side-b"))

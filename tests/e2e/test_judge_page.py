"""Judge a pair in the browser with the embedded model."""

import re

import pytest

from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.model, pytest.mark.e2e]


def test_judge_a_pair_and_see_the_cards_and_the_chart(page, studio_url, screenshots):
    sign_in(page, studio_url, "kim")
    page.locator("#query textarea").fill("What is the capital of France?")
    page.locator("#response-1 textarea").fill("Paris.")
    page.locator("#response-2 textarea").fill("<script>window.pwned = 1</script>Berlin.")
    page.locator("#k input[type=number]").fill("2")
    page.locator("#k input[type=number]").press("Enter")
    page.locator("#judge").click()
    cards = page.locator("#sample-cards details")
    cards.first.wait_for(timeout=240_000)
    assert cards.count() == 2
    page.locator("#vote-plot .js-plotly-plot").wait_for(timeout=30_000)
    page.locator("#score-heatmap .js-plotly-plot").wait_for(timeout=30_000)
    status = page.locator("#judgement-status").inner_text()
    judgement_id = re.search(r"#(\d+)", status).group(1)
    cards.first.locator("summary").click()
    assert page.evaluate("window.pwned") is None  # untrusted text stays inert
    page.screenshot(path=str(screenshots / "judge.png"), full_page=True)

    page.goto(f"{studio_url}?judgement={judgement_id}")
    page.locator("#sample-cards details").first.wait_for(timeout=30_000)
    assert page.locator("#sample-cards details").count() == 2
    assert f"#{judgement_id}" in page.locator("#judgement-status").inner_text()

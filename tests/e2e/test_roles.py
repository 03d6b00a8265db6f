"""Sign-in and roles in the served studio: a viewer is refused every write, in
the page and through a direct API call; nobody signed in gets nothing."""

import json
import urllib.error
import urllib.request

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from core.store.schema import Annotation, Annotator
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def _labels_by(database_url: str, name: str) -> int:
    engine = create_engine(database_url)
    with Session(engine) as session:
        return session.scalar(
            select(func.count()).select_from(Annotation).join(Annotator)
            .where(Annotator.name == name)
        )


def test_signed_out_visitors_get_the_login_page_and_no_api(page, studio_url):
    page.goto(f"{studio_url}?judgement=1")
    assert "/login" in page.url
    page.locator("#login-name").fill("vic")
    page.locator("#login-password").fill("not the password")
    page.locator("#login-submit").click()
    assert "wrong name or password" in page.locator("#login-error").inner_text()
    request = urllib.request.Request(
        f"{studio_url}gradio_api/call/on_save", data=b'{"data": []}',
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_a_viewer_is_refused_a_label_in_the_page(page, studio_url, database_url, screenshots):
    sign_in(page, studio_url, "vic")
    assert "Signed in as vic (viewer)" in page.locator("#account-banner").inner_text()
    page.get_by_role("tab", name="Annotate").click()
    page.locator("#annotate-start").click()
    page.locator("#annotate-item [id^=annotate-item-]").wait_for(timeout=30_000)
    page.locator("#annotate-progress").click()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    error = page.get_by_text("signed in as viewer and may not label items").first
    error.wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "viewer-refused.png"), full_page=True)
    assert _labels_by(database_url, "vic") == 0


def test_a_viewer_is_refused_a_write_through_the_api(page, studio_url, database_url):
    """The page is not the guard: the server refuses the viewer's direct call."""
    sign_in(page, studio_url, "vic")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())

    def call(api_name: str, data: list) -> str:
        start = urllib.request.Request(
            f"{studio_url}gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
            headers={"Content-Type": "application/json", "Cookie": cookie}, method="POST",
        )
        event_id = json.load(urllib.request.urlopen(start, timeout=10))["event_id"]
        result = urllib.request.Request(
            f"{studio_url}gradio_api/call/{api_name}/{event_id}", headers={"Cookie": cookie}
        )
        return urllib.request.urlopen(result, timeout=60).read().decode()

    # a forged walk state is ignored: states live on the server, the name comes from the session
    saved = call("on_save", [{"annotator": "kim", "item_id": 1}, None, "", "", "", "", None])
    assert "event: error" in saved and "may not label items" in saved
    imported = call("on_import", [None, "sneaky", ""])
    assert "may not import datasets" in imported
    assert _labels_by(database_url, "vic") == 0


def test_sign_out_ends_the_session(page, studio_url):
    sign_in(page, studio_url, "kim")
    page.locator("#sign-out").click()
    page.locator("#login-name").wait_for(timeout=30_000)
    page.goto(studio_url)  # the old cookie no longer signs in
    assert "/login" in page.url

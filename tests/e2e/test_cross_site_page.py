"""The same-site attack of issue 16 (finding 2), in Chromium: kim is signed in
to the studio; a page served from another port of 127.0.0.1 (same site, so the
browser sends kim's cookie) tries to label through the JSON API and the Gradio
queue, to read the studio's API description, and to sign kim out with a form.
None of it takes effect; the studio's own page still works."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from core.store.schema import Annotation
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

ATTACK_PAGE = """<!doctype html><html><body><h1>Free prizes</h1>
<iframe name="sink"></iframe>
<form id="logout" method="post" action="STUDIO/logout" target="sink"></form>
<script>
const S = "STUDIO/", json = {"Content-Type": "application/json"};
window.results = {};
async function attempt(name, url, init) {
  try {
    const answer = await fetch(url, {credentials: "include", ...init});
    window.results[name] = "read " + answer.status + " " + (await answer.text()).slice(0, 100);
  } catch (e) { window.results[name] = "blocked"; }
}
async function attack(fnCount) {
  const label = JSON.stringify({item_id: 1, best: 0, note: "written by another site"});
  await attempt("label", S + "api/v1/labels", {method: "POST", headers: json, body: label});
  await attempt("label, simple", S + "api/v1/labels",
                {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: label});
  await attempt("info", S + "gradio_api/info", {});
  await attempt("config", S + "config", {});
  for (let i = 0; i < fnCount; i++) {
    const join = JSON.stringify({data: [], fn_index: i, session_hash: "attack" + i, trigger_id: null});
    await attempt("join " + i, S + "gradio_api/queue/join", {method: "POST", headers: json, body: join});
  }
  await new Promise(done => {
    document.querySelector("iframe").onload = done;
    document.getElementById("logout").submit();
  });
  return window.results;
}
</script></body></html>"""


def _label_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Annotation)) or 0
    engine.dispose()
    return count


@pytest.fixture
def attack_site(tmp_path: Path, studio_url: str) -> Iterator[str]:
    """The attack page, served by http.server on another port of 127.0.0.1."""
    (tmp_path / "attack.html").write_text(ATTACK_PAGE.replace("STUDIO/", studio_url)
                                          .replace("STUDIO", studio_url.rstrip("/")))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/attack.html"
    server.shutdown()
    server.server_close()


def test_a_page_on_another_port_cannot_act_for_the_signed_in_user(
        page, studio_url, database_url, attack_site):
    sign_in(page, studio_url, "kim")
    config = page.request.get(f"{studio_url}config").json()  # the studio's own request: fine
    fn_count = len(config["dependencies"])
    labels = _label_rows(database_url)
    answered: list[tuple[str, str, int]] = []
    page.on("response", lambda r: answered.append((r.request.method, r.url, r.status))
            if r.url.startswith(studio_url) else None)

    page.goto(attack_site)
    results = page.evaluate("fnCount => attack(fnCount)", fn_count)

    assert results["label"] == "blocked" and results["info"] == "blocked", results
    assert results["config"] == "blocked", results
    assert all(results[f"join {i}"] == "blocked" for i in range(fn_count)), results
    # what reached the studio from that page was refused, whatever the page could see
    reached = [(method, url, status) for method, url, status in answered if method == "POST"]
    assert reached and all(status == 403 for _, _, status in reached), reached
    assert _label_rows(database_url) == labels
    me = page.request.get(f"{studio_url}api/v1/me")
    assert me.status == 200 and me.json()["name"] == "kim"  # still signed in

    # the control: the studio's own page makes the same kind of request, and is heard
    page.goto(studio_url)
    page.locator("#account-banner").wait_for(timeout=60_000)
    assert "kim" in page.locator("#account-banner").inner_text()  # the queue answers it
    own = page.evaluate("""async () => {
        const answer = await fetch("api/v1/labels", {method: "POST",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({item_id: 0})});
        return [answer.status, await answer.text()];
    }""")
    assert own[0] == 422 and "item_id" in own[1]  # past the origin check, to validation
    assert _label_rows(database_url) == labels

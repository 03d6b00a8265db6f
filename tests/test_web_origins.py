"""Cross-site requests (issue 16, finding 2): a page on another port of the
same host, with the victim signed in, must not write through the JSON API or
the Gradio queue, sign the victim in or out, or read any answer; the studio's
own pages and the origins the operator lists still can. Also: the read-only
demo has no sign-in, and Gradio's own GET /logout neither signs out nor
leaves the user thinking so."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.served_studio import label_count, session_count, studio_app
from webapp.studio import SESSION_COOKIE

OWN = "http://127.0.0.1:7860"  # where the studio is served in these tests
ATTACKER = "http://127.0.0.1:8000"  # another port of the same host: same-site
LISTED = "https://tools.example.org"
JOIN = {"data": [], "fn_index": 0, "session_hash": "s3ss10n", "trigger_id": None}


def signed_in(app, name="kim") -> TestClient:
    client = TestClient(app, base_url=OWN, follow_redirects=False)
    assert client.post("/login", data={"name": name, "password": f"{name}-password"},
                       headers={"Origin": OWN}).status_code == 303
    return client


def cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@pytest.fixture
def served(tmp_path):
    return studio_app(tmp_path, allowed_origins=LISTED)


@pytest.mark.parametrize("headers", [
    {"Origin": ATTACKER},
    {"Origin": "null"},  # a sandboxed frame or a file: page
    {"Referer": f"{ATTACKER}/attack.html"},  # no Origin: the Referer's origin counts
    {"Origin": "https://127.0.0.1:7860"},  # another scheme is another origin
    {"Origin": "not a url"},
])
def test_a_foreign_page_cannot_write_sign_in_or_sign_out(served, headers):
    app, studio = served
    kim = signed_in(app)
    label = kim.post("/api/v1/labels", json={"item_id": 1, "best": 0}, headers=headers)
    assert label.status_code == 403 and "refused" in label.json()["error"]
    assert kim.post("/gradio_api/queue/join", json=JOIN, headers=headers).status_code == 403
    assert kim.post("/gradio_api/run/label_first", json={"data": []},
                    headers=headers).status_code == 403
    assert kim.post("/gradio_api/upload", files={"files": ("a.txt", b"x")},
                    headers=headers).status_code == 403
    assert kim.post("/logout", headers=headers).status_code == 403
    assert kim.get("/api/v1/me").json()["name"] == "kim"  # still signed in
    sessions = session_count(studio)
    stranger = TestClient(app, base_url=OWN, follow_redirects=False)
    login = stranger.post("/login", data={"name": "lee", "password": "lee-password"},
                          headers=headers)
    assert login.status_code == 403 and SESSION_COOKIE not in login.cookies
    assert session_count(studio) == sessions and label_count(studio) == 0


@pytest.mark.parametrize("headers", [
    {"Origin": OWN}, {"Referer": f"{OWN}/?judgement=3"}, {"Origin": LISTED},
    {},  # no Origin and no Referer: not a browser page (a script with its cookie)
])
def test_the_studios_own_pages_listed_origins_and_scripts_may_write(served, headers):
    app, studio = served
    kim = signed_in(app)
    made = kim.post("/api/v1/labels", json={"item_id": 2, "best": 1}, headers=headers)
    assert made.status_code == 201
    assert kim.post("/logout", headers=headers).status_code == 303
    assert kim.get("/api/v1/me").status_code == 401
    assert label_count(studio) == 1


def test_the_gradio_queue_still_works_from_the_studios_own_page(served):
    app, studio = served
    with TestClient(app, base_url=OWN) as kim:  # runs the lifespan: the queue is live
        kim.post("/login", data={"name": "kim", "password": "kim-password"},
                 headers={"Origin": OWN})
        assert kim.post("/gradio_api/queue/join", json=JOIN,
                        headers={"Origin": ATTACKER}).status_code == 403
        joined = kim.post("/gradio_api/queue/join", json=JOIN, headers={"Origin": OWN})
        assert joined.status_code == 200, joined.text
        deadline = time.monotonic() + 20
        while label_count(studio) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert label_count(studio) == 1  # the control: the same request from home writes


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "studio.example.org"])
def test_no_credentialed_cors_for_an_origin_nobody_listed(served, host):
    """Gradio reflected any localhost origin (any origin at all on a non-local
    Host) with Allow-Credentials; now no answer carries CORS headers for it."""
    app, _ = served
    kim = signed_in(app)
    for origin in (ATTACKER, "http://localhost:9999", "https://evil.example"):
        for path in ("/gradio_api/info", "/config", "/api/v1/me"):
            answer = kim.get(path, headers={"Origin": origin, "Host": host})
            assert cors_headers(answer) == {}, (path, origin, answer.headers)
        preflight = kim.options("/api/v1/labels", headers={
            "Origin": origin, "Host": host, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 403 and cors_headers(preflight) == {}


def test_a_listed_origin_gets_credentialed_cors(served):
    app, _ = served
    kim = signed_in(app)
    answer = kim.get("/api/v1/me", headers={"Origin": LISTED})
    assert answer.headers["access-control-allow-origin"] == LISTED
    assert answer.headers["access-control-allow-credentials"] == "true"
    preflight = kim.options("/api/v1/labels", headers={
        "Origin": LISTED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == LISTED
    assert preflight.headers["access-control-allow-credentials"] == "true"


def test_a_websocket_from_a_foreign_page_is_refused():
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from webapp.security import OriginPolicy

    async def echo(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hello")
        await socket.close()

    app = OriginPolicy(Starlette(routes=[WebSocketRoute("/ws", echo)]))
    client = TestClient(app)  # its WebSockets go to ws://testserver
    with client.websocket_connect("/ws", headers={"Origin": "http://testserver"}) as socket:
        assert socket.receive_text() == "hello"
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/ws", headers={"Origin": ATTACKER}):
        pass
    assert refused.value.code == 1008  # closed before the handshake: HTTP 403


def test_get_logout_neither_signs_out_nor_pretends_to(served):
    """Gradio's own GET /logout cleared only Gradio's cookies and left the session
    valid. A GET must not sign out (an <img> on any page could); it answers a
    page whose button POSTs /logout, which does."""
    app, _ = served
    kim = signed_in(app)
    page = kim.get("/logout")
    assert page.status_code == 200 and 'id="logout-confirm"' in page.text
    assert 'method="post" action="/logout"' in page.text
    assert kim.get("/api/v1/me").json()["name"] == "kim"
    assert kim.post("/logout", headers={"Origin": OWN}).status_code == 303
    assert kim.get("/api/v1/me").status_code == 401
    assert kim.get("/config").status_code == 401


def test_the_read_only_demo_has_no_sign_in(tmp_path):
    """Anonymous visitors signed in to real accounts through /login in the demo
    (a session row was written, and passwords could be guessed there)."""
    app, studio = studio_app(tmp_path, read_only=True)
    visitor = TestClient(app, base_url=OWN, follow_redirects=False)
    assert visitor.get("/login").status_code == 303
    for password in ("kim-password", "wrong"):
        answer = visitor.post("/login", data={"name": "kim", "password": password},
                              headers={"Origin": OWN})
        assert answer.status_code == 403 and "read-only demo" in answer.text
        assert SESSION_COOKIE not in answer.cookies and "set-cookie" not in answer.headers
    assert session_count(studio) == 0
    assert visitor.post("/api/v1/labels", json={"item_id": 1, "best": 0},
                        headers={"Origin": OWN}).status_code == 403
    assert label_count(studio) == 0


def test_the_operator_lists_origins_and_proxies_comma_separated(monkeypatch):
    from core import Settings

    monkeypatch.setenv("GRM_STUDIO_ALLOWED_ORIGINS", " HTTPS://Tools.Example.org:443/, http://[::1]:8080")
    monkeypatch.setenv("GRM_STUDIO_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    settings = Settings()
    assert settings.allowed_origins == ("https://tools.example.org", "http://[::1]:8080")
    assert settings.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert Settings(allowed_origins="").allowed_origins == ()
    for bad, says in [("tools.example.org", "not an origin"), ("ftp://x.org", "not an origin"),
                      ("https://x.org/app", "drop what follows https://x.org"),
                      ("https://user:pw@x.org", "not an origin")]:
        with pytest.raises(ValueError, match=says):
            Settings(allowed_origins=bad)

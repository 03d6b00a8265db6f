"""Sign-in routes of the served app (FastAPI's TestClient, a real store):
login, the session cookie, sign-out, expiry, the redirect, read-only mode."""

from datetime import UTC, datetime, timedelta

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from core import ScriptedBackend, Settings
from core.store.accounts import set_account
from core.store.db import make_engine, upgrade
from core.store.schema import WebSession
from webapp.auth import SignInThrottle, safe_next, server_app
from webapp.studio import SESSION_COOKIE, Studio


def client_for(tmp_path, throttle=None, **settings) -> tuple[TestClient, Studio]:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    upgrade(engine)
    set_account(engine, "kim", "annotator", "kim-password")
    studio = Studio(Settings(**settings), engine, backend=ScriptedBackend([]))
    with gr.Blocks() as blocks:
        gr.Markdown("hello")
    app = server_app(studio, blocks.queue(), throttle=throttle)
    return TestClient(app, follow_redirects=False), studio


def test_pages_and_api_need_a_session_that_sign_in_gives(tmp_path):
    client, _ = client_for(tmp_path)
    page = client.get("/?judgement=7")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F%3Fjudgement%3D7"
    assert client.get("/config").status_code == 401
    wrong = client.post("/login", data={"name": "kim", "password": "nope"})
    assert wrong.status_code == 401 and "wrong name or password" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    signed = client.post(
        "/login", data={"name": "kim", "password": "kim-password", "next": "/?judgement=7"}
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/?judgement=7"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert client.get("/").status_code == 200
    assert client.get("/config").status_code == 200
    client.post("/logout")
    assert client.get("/config").status_code == 401


def test_an_expired_session_is_refused(tmp_path):
    client, studio = client_for(tmp_path, session_hours=1)
    client.post("/login", data={"name": "kim", "password": "kim-password"})
    assert client.get("/config").status_code == 200
    with studio.engine.begin() as connection:
        connection.execute(update(WebSession).values(expires_at=datetime.now(UTC) - timedelta(1)))
    assert client.get("/config").status_code == 401
    assert client.get("/").status_code == 303


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("/?judgement=3", "/?judgement=3"), ("https://evil.example/", "/"), ("//evil.example", "/"),
     ("/\\evil.example", "/"), ("", "/"), (None, "/"), ("javascript:alert(1)", "/")],
)
def test_after_sign_in_only_this_site_is_a_destination(raw, safe):
    assert safe_next(raw) == safe


def test_the_login_page_escapes_what_it_echoes(tmp_path):
    client, _ = client_for(tmp_path)
    page = client.get("/login", params={"next": '/"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text


def test_the_login_page_says_where_the_first_admin_password_is(tmp_path):
    client, studio = client_for(tmp_path)
    page = client.get("/login").text
    assert "first-admin-password.txt" in page and "<code>admin</code>" in page
    assert str(studio.settings.data_dir) not in page  # no server path


def test_read_only_mode_needs_no_sign_in(tmp_path):
    client, studio = client_for(tmp_path, read_only=True)
    assert client.get("/").status_code == 200
    assert client.get("/config").status_code == 200
    assert client.get("/login").headers["location"] == "/"
    assert studio.account(None).role == "demo" and not studio.account(None).may_write


def test_a_first_start_makes_an_admin_whose_password_only_its_owner_can_read(tmp_path):
    from core.store.accounts import authenticate
    from webapp.app import first_admin

    engine = make_engine(f"sqlite:///{tmp_path / 'first.db'}")
    upgrade(engine)
    studio = Studio(Settings(data_dir=tmp_path), engine)
    secret = first_admin(studio)
    assert secret is not None and secret.stat().st_mode & 0o077 == 0
    password = secret.read_text().strip()
    assert len(password) >= 32 and authenticate(engine, "admin", password).role == "admin"
    assert first_admin(studio) is None  # an account exists: nothing made, nothing written


def test_repeated_wrong_passwords_lock_the_name_out_for_a_while(tmp_path):
    now = [0.0]
    throttle = SignInThrottle(per_name=3, per_address=5, window_s=600, clock=lambda: now[0])
    client, studio = client_for(tmp_path, throttle=throttle)
    set_account(studio.engine, "lee", "annotator", "lee-password")
    for _ in range(3):
        assert client.post("/login", data={"name": "kim", "password": "x"}).status_code == 401
    locked = client.post("/login", data={"name": " KIM", "password": "kim-password"})
    assert locked.status_code == 429 and "try again in 10 min" in locked.text
    assert locked.headers["retry-after"] == "600" and SESSION_COOKIE not in locked.cookies
    # another name from the same address still signs in (its limit is higher)
    lee = client.post("/login", data={"name": "lee", "password": "lee-password"})
    assert lee.status_code == 303
    now[0] = 601.0  # the failures have left the window
    kim = client.post("/login", data={"name": "kim", "password": "kim-password"})
    assert kim.status_code == 303


def test_too_many_failures_from_one_address_lock_every_name_there(tmp_path):
    throttle = SignInThrottle(per_name=10, per_address=2, window_s=60, clock=lambda: 5.0)
    client, _ = client_for(tmp_path, throttle=throttle)
    for name in ("a", "b"):
        assert client.post("/login", data={"name": name, "password": "x"}).status_code == 401
    kim = client.post("/login", data={"name": "kim", "password": "kim-password"})
    assert kim.status_code == 429


def test_behind_a_local_tls_proxy_the_session_cookie_is_secure(tmp_path):
    """Served as `grm-studio serve` serves it (uvicorn with `proxy_options`): a
    proxy that ends TLS says so, and the cookie is Secure, once that proxy's
    address is in GRM_STUDIO_TRUSTED_PROXIES; from anyone else the header is ignored."""
    import httpx

    from tests.served_studio import serving
    from webapp.security import proxy_options

    client, _ = client_for(tmp_path)
    form, https = {"name": "kim", "password": "kim-password"}, {"X-Forwarded-Proto": "https"}
    with serving(client.app, **proxy_options(Settings())) as url:
        assert "Secure" not in httpx.post(f"{url}/login", data=form).headers["set-cookie"]
        ignored = httpx.post(f"{url}/login", data=form, headers=https)
        assert "Secure" not in ignored.headers["set-cookie"]
    with serving(client.app, **proxy_options(Settings(trusted_proxies="127.0.0.1"))) as url:
        proxied = httpx.post(f"{url}/login", data=form, headers=https)
        assert "Secure" in proxied.headers["set-cookie"]

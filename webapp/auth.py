"""Sign-in for the web app: a login page, a session cookie, and who is asking.

Every page and every Gradio API route asks `signed_in_name` first (Gradio's
`auth_dependency`: nobody signed in, no access). Each handler that writes then
asks `Studio.require(request, action)`, which reads the session and the role
afresh from the store, so a direct API call meets the same rules as the page
and an expired or signed-out session stops working at once. In read-only
demo mode nobody signs in and nothing is written. Repeated wrong passwords
for one name, or from one address, are refused for a while (`SignInThrottle`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from html import escape
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.store.accounts import authenticate
from core.store.sessions import end_session, start_session
from webapp.studio import SESSION_COOKIE, Studio

LOGIN_CSS = """
body { font-family: system-ui, sans-serif; background: #f5f7f8; display: flex;
  justify-content: center; padding-top: 12vh; }
form { background: #fff; border: 1px solid #cfd8dc; border-radius: 8px; padding: 24px 28px;
  width: 300px; }
label { display: block; margin: 12px 0 4px; font-weight: 600; }
input { width: 100%; box-sizing: border-box; padding: 6px 8px; font-size: 15px; }
button { margin-top: 18px; width: 100%; padding: 8px; font-size: 15px; font-weight: 600;
  background: #ef6c00; color: #fff; border: 0; border-radius: 6px; cursor: pointer; }
.error { color: #c62828; margin-top: 10px; }
.muted { color: #607d8b; font-size: 13px; }
"""


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def login_page(next_url: str = "/", error: str = "") -> str:
    message = f'<p class="error" id="login-error">{escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sign in · GRM Studio</title><style>{LOGIN_CSS}</style></head><body>
<form method="post" action="/login">
<h2>GRM Studio</h2><p class="muted">Sign in with the account an admin made for you
(<code>grm-studio account NAME --role annotator</code>).</p>
<label for="login-name">Name</label>
<input id="login-name" name="name" autocomplete="username" required autofocus>
<label for="login-password">Password</label>
<input id="login-password" name="password" type="password" autocomplete="current-password"
  required>
<input type="hidden" name="next" value="{escape(safe_next(next_url))}">
<button id="login-submit" type="submit">Sign in</button>{message}
</form></body></html>"""


def signed_in_name(studio: Studio) -> Callable[[Request], str | None]:
    """Gradio's `auth_dependency`: the signed-in name, or None (no access)."""

    def name(request: Request) -> str | None:
        account = studio.account(request)
        return account.name if account else None

    return name


class SignInThrottle:
    """Failed sign-ins counted per account name and per client address over a
    sliding window: past the limit, that name (or address) is refused without a
    password check until its oldest failure leaves the window. A right password
    clears the name's count. Kept in memory: a restart forgets it."""

    def __init__(self, *, per_name: int = 5, per_address: int = 20, window_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"name": per_name, "address": per_address}
        self._window, self._clock = window_s, clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(name: str, address: str) -> tuple[tuple[str, str], ...]:
        return ("name", name.strip().casefold()), ("address", address)

    def wait_s(self, keys: tuple[tuple[str, str], ...]) -> float:
        """Seconds before these keys may try again (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [0.0]
            for key in keys:
                failures = self._recent(key, now)
                if len(failures) >= self._limits[key[0]]:
                    waits.append(failures[0] + self._window - now)
            return max(waits)

    def failed(self, keys: tuple[tuple[str, str], ...]) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > 10_000:  # names sprayed at random: drop the expired
                for key in list(self._failures):
                    self._recent(key, now)
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, keys: tuple[tuple[str, str], ...]) -> None:
        with self._lock:
            for key in keys:
                if key[0] == "name":
                    self._failures.pop(key, None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures


def add_sign_in_routes(
    app: FastAPI, studio: Studio, throttle: SignInThrottle | None = None
) -> None:
    """GET/POST /login, POST /logout, and a redirect to /login for signed-out pages."""
    hours = studio.settings.session_hours
    throttle = throttle or SignInThrottle()

    @app.get("/login", response_class=HTMLResponse)
    def login_form(next: str = "/") -> Response:
        if studio.settings.read_only:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(login_page(next))

    @app.post("/login")
    def login(
        request: Request, name: str = Form(""), password: str = Form(""), next: str = Form("/")
    ) -> Response:
        keys = throttle.keys(name, request.client.host if request.client else "")
        if wait := throttle.wait_s(keys):
            minutes = math.ceil(wait / 60)
            return HTMLResponse(
                login_page(next, f"too many failed sign-ins; try again in {minutes} min"),
                status_code=429, headers={"Retry-After": str(math.ceil(wait))})
        account = authenticate(studio.engine, name, password)
        if account is None:
            throttle.failed(keys)
            return HTMLResponse(login_page(next, "wrong name or password"), status_code=401)
        throttle.succeeded(keys)
        token = start_session(studio.engine, account, hours)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=int(hours * 3600), httponly=True, samesite="lax",
            secure=request.url.scheme == "https", path="/",
        )
        return response

    @app.post("/logout")
    def logout(request: Request) -> Response:
        end_session(studio.engine, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.middleware("http")
    async def sign_in_first(request: Request, call_next: Callable) -> Response:
        page = request.method == "GET" and request.url.path in ("", "/")
        if page and await run_in_threadpool(studio.account, request) is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return await call_next(request)


def account_banner(studio: Studio, request: gr.Request) -> str:
    """Who is signed in, with a sign-out button (or the read-only demo notice)."""
    account = studio.account(request)
    if studio.settings.read_only:
        return ('<div id="account-banner" class="grm-muted"><b>Read-only demo</b>: '
                "everything can be seen and judged; nothing is saved.</div>")
    if account is None:
        return '<div id="account-banner"><a href="/login">Sign in</a></div>'
    return (
        f'<div id="account-banner" class="grm-muted">Signed in as <b>{escape(account.name)}</b> '
        f"({escape(account.role)}) "
        '<form method="post" action="/logout" style="display:inline">'
        '<button id="sign-out" type="submit">Sign out</button></form></div>'
    )


def server_app(
    studio: Studio, blocks: gr.Blocks, *, throttle: SignInThrottle | None = None,
    **mount_options: object,
) -> FastAPI:
    """The FastAPI app that serves `blocks` behind sign-in (or read-only, no sign-in)."""
    from webapp.api import add_label_api

    app = FastAPI(title="GRM Studio", docs_url=None, redoc_url=None, openapi_url=None)
    add_sign_in_routes(app, studio, throttle)
    add_label_api(app, studio)
    return gr.mount_gradio_app(
        app, blocks, path="/", auth_dependency=signed_in_name(studio), **mount_options
    )

"""Sign-in for the web app: a login page, a session cookie, and who is asking.

Every page and every Gradio API route asks `signed_in_name` first (Gradio's
`auth_dependency`: nobody signed in, no access). Each handler that writes then
asks `Studio.require(request, action)`, which reads the session and the role
afresh from the store, so a direct API call meets the same rules as the page
and an expired or signed-out session stops working at once. In read-only
demo mode there is no sign-in at all (/login refuses) and nothing is written.
Password checks are counted before they run and capped (`webapp.throttle`);
writes from other sites' pages are refused (`webapp.security`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.errors import InputError
from core.inputs import clean_text
from core.store.accounts import Account, authenticate
from core.store.sessions import end_session, start_session
from webapp.security import install_origin_policy
from webapp.studio import SESSION_COOKIE, Studio
from webapp.throttle import Attempt, Refusal, SignInThrottle

DEVICE_COOKIE = "grm_studio_device"  # a browser that has signed in before (webapp.throttle)
NAME_CHARS, PASSWORD_CHARS = 200, 4096  # a longer name or password is wrong, unchecked

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
<p class="muted" id="login-first-start">First start: sign in as <code>admin</code> with the
password the studio wrote to <code>first-admin-password.txt</code> in its data folder
(<code>data/</code> by default) on the server.</p>
<label for="login-name">Name</label>
<input id="login-name" name="name" autocomplete="username" required autofocus>
<label for="login-password">Password</label>
<input id="login-password" name="password" type="password" autocomplete="current-password"
  required>
<input type="hidden" name="next" value="{escape(safe_next(next_url))}">
<button id="login-submit" type="submit">Sign in</button>{message}
</form></body></html>"""


NO_SIGN_IN_PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>GRM Studio</title><style>{LOGIN_CSS}</style></head><body><form action="/">
<h2>GRM Studio</h2><p id="login-error" class="error">This is the read-only demo: nobody
signs in here.</p><button type="submit">Open the demo</button></form></body></html>"""

LOGOUT_PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sign out · GRM Studio</title><style>{LOGIN_CSS}</style></head><body>
<form method="post" action="/logout"><h2>GRM Studio</h2>
<button id="logout-confirm" type="submit">Sign out</button></form></body></html>"""


def signed_in_name(studio: Studio) -> Callable[[Request], str | None]:
    """Gradio's `auth_dependency`: the signed-in name, or None (no access)."""

    def name(request: Request) -> str | None:
        account = studio.account(request)
        return account.name if account else None

    return name


def add_sign_in_routes(
    app: FastAPI, studio: Studio, throttle: SignInThrottle | None = None
) -> None:
    """GET/POST /login, GET/POST /logout, and a redirect to /login for signed-out
    pages. The read-only demo has no sign-in: /login signs nobody in."""
    hours = studio.settings.session_hours
    throttle = throttle or SignInThrottle()

    @app.get("/login", response_class=HTMLResponse)
    def login_form(next: str = "/") -> Response:
        if studio.settings.read_only:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(login_page(next))

    @app.post("/login")
    async def login(
        request: Request, name: str = Form(""), password: str = Form(""), next: str = Form("/")
    ) -> Response:
        if studio.settings.read_only:
            return HTMLResponse(NO_SIGN_IN_PAGE, status_code=403)
        if not _could_be_an_account(name, password):
            return HTMLResponse(login_page(next, "wrong name or password"), status_code=401)
        device = request.cookies.get(DEVICE_COOKIE)
        attempt = await throttle.enter(name, request.client.host if request.client else "", device)
        if isinstance(attempt, Refusal):
            return _refused(next, attempt)
        account = await _check_password(studio, throttle, attempt, name, password)
        if account is None:
            return HTMLResponse(login_page(next, "wrong name or password"), status_code=401)
        device = throttle.succeeded(attempt, device)
        token = await run_in_threadpool(start_session, studio.engine, account, hours)
        response = RedirectResponse(safe_next(next), status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            SESSION_COOKIE, token, max_age=int(hours * 3600), httponly=True, samesite="lax",
            secure=secure, path="/",
        )
        response.set_cookie(DEVICE_COOKIE, device, max_age=int(throttle.device_s), httponly=True,
                            samesite="strict", secure=secure, path="/login")
        return response

    @app.get("/logout", response_class=HTMLResponse)
    def logout_page() -> Response:
        """Gradio's own GET /logout would clear only Gradio's cookies and leave the
        session valid; signing out changes state, so it takes this page's POST."""
        return HTMLResponse(LOGOUT_PAGE)

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


def _could_be_an_account(name: str, password: str) -> bool:
    """False for what no account has (over-long, NUL, lone surrogates): such a
    sign-in is wrong without a password check."""
    try:
        clean_text(name, "the name")
    except InputError:
        return False
    return len(name) <= NAME_CHARS and len(password) <= PASSWORD_CHARS


async def _check_password(
    studio: Studio, throttle: SignInThrottle, attempt: Attempt, name: str, password: str
) -> Account | None:
    """The account if `password` is right; the throttle hears how it went."""
    try:
        account = await run_in_threadpool(authenticate, studio.engine, name, password)
    except BaseException:
        throttle.abandoned(attempt)
        raise
    if account is None:
        throttle.failed(attempt)
    return account


def _refused(next_url: str, refusal: Refusal) -> Response:
    if refusal.busy:
        message, status = "the server is busy signing others in; try again in a moment", 503
    else:
        minutes = math.ceil(refusal.wait_s / 60)
        message, status = f"too many failed sign-ins; try again in {minutes} min", 429
    return HTMLResponse(login_page(next_url, message), status_code=status,
                        headers={"Retry-After": str(math.ceil(refusal.wait_s))})


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
    from webapp.uploads import UploadsOnly

    app = FastAPI(title="GRM Studio", docs_url=None, redoc_url=None, openapi_url=None)
    add_sign_in_routes(app, studio, throttle)
    add_label_api(app, studio)
    app.add_middleware(UploadsOnly, uploads=not studio.settings.read_only)  # webapp.uploads
    install_origin_policy(app, studio.settings)  # outermost: before anything else runs
    return gr.mount_gradio_app(
        app, blocks, path="/", auth_dependency=signed_in_name(studio),
        max_file_size=studio.settings.upload_max_mb * 1024 * 1024, **mount_options
    )

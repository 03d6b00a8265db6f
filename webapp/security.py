"""Which web pages may use a signed-in browser's session, and which proxies are believed.

A session cookie goes with every request the browser makes to the studio's
host, whichever page makes it: a page on another port of the same host is
"same-site", so SameSite cookies do not stop it. Two rules stop it here:

- **No credentialed CORS for strangers.** Only the origins the operator lists
  (`GRM_STUDIO_ALLOWED_ORIGINS`) get `Access-Control-Allow-*` headers, so no
  other page can read a response. Gradio's own CORS middleware, which reflects
  any localhost origin with credentials, stands aside when the parent app has
  Starlette's `CORSMiddleware` (Gradio's documented switch); `OriginPolicy`
  also strips any `Access-Control-*` header from answers to other origins and
  refuses their preflights, whatever an inner layer does.
- **Writes only from the studio's own pages.** Every request that can change
  something (any method but GET, HEAD and OPTIONS, and every WebSocket) is
  refused with 403 when the browser says it came from elsewhere: its `Origin`
  (else the origin of its `Referer`) must be the studio's own origin (the
  scheme, host and port the request was sent to) or a listed one; `Origin:
  null` (sandboxed frames, `file:` pages) is elsewhere. A request with neither
  header is not from a browser page (browsers send `Origin` with every
  cross-origin request and every POST) and is let through: scripts and the
  CLI authenticate with the session cookie they were given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import Settings
from core.origins import web_origin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ELSEWHERE = "elsewhere"  # what a sender is when its Origin/Referer is not an origin at all


def sender_origin(headers: Headers) -> str | None:
    """The origin of the page that sent a request: its `Origin`, else its
    `Referer`'s; ELSEWHERE when that is `null` or unreadable; None when the
    request names no page at all."""
    for header in ("origin", "referer"):
        value = headers.get(header)
        if value is not None:
            try:
                return web_origin(value)
            except ValueError:
                return ELSEWHERE
    return None


def own_origin(scope: Scope) -> str | None:
    """The origin the request was sent to: its scheme (https when a trusted proxy
    said so) and its Host header."""
    host = Headers(scope=scope).get("host")
    if not host:
        return None
    try:
        return web_origin(f"{scope.get('scheme', 'http')}://{host}")
    except ValueError:
        return None


class OriginPolicy:
    """ASGI middleware: refuses writes sent from other sites' pages and keeps CORS
    headers for the listed origins (see the module's docstring)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        writes = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        sender = sender_origin(headers)
        if writes and sender is not None and not self._trusted(sender, scope):
            await self._refuse(scope, receive, send, sender)
            return
        origin = headers.get("origin")
        if scope["type"] == "websocket" or origin is None or self._listed(origin):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await PlainTextResponse(  # a preflight from a stranger: no CORS headers at all
                "cross-origin requests from this origin are not allowed", status_code=403,
                headers={"Vary": "Origin"},
            )(scope, receive, send)
            return
        await self.app(scope, receive, _without_cors_headers(send))

    def _trusted(self, sender: str, scope: Scope) -> bool:
        return sender in self.allowed or sender == own_origin(scope)

    def _listed(self, origin: str) -> bool:
        try:
            return web_origin(origin) in self.allowed
        except ValueError:
            return False

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, sender: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = "a page elsewhere" if sender == ELSEWHERE else f"a page on {sender}"
        message = (f"refused: this request came from {shown}, not from the studio's own pages "
                   "(an operator can allow that origin with GRM_STUDIO_ALLOWED_ORIGINS)")
        response = JSONResponse({"error": message}, status_code=403, headers={"Vary": "Origin"})
        await response(scope, receive, send)


def _without_cors_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name in {k for k in headers if k.startswith("access-control-")}:
                del headers[name]
            headers.add_vary_header("Origin")
        await send(message)

    return sending


def install_origin_policy(app: FastAPI, settings: Settings) -> None:
    """Credentialed CORS for the listed origins only, and `OriginPolicy` around
    everything (call before mounting Gradio on `app`)."""
    app.add_middleware(
        CORSMiddleware, allow_origins=list(settings.allowed_origins), allow_credentials=True,
        allow_methods=["GET", "POST"], allow_headers=["*"],
    )
    app.add_middleware(OriginPolicy, allowed=settings.allowed_origins)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for `settings.trusted_proxies`: forwarded headers are
    believed only from those addresses (none by default, whatever
    FORWARDED_ALLOW_IPS says)."""
    proxies = settings.trusted_proxies
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": "*" if "*" in proxies else list(proxies)}

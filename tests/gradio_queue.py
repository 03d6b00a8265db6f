"""Calling an event of the served studio as its page does: POST
/gradio_api/queue/join, then read the event's messages from
/gradio_api/queue/data (server-sent events) until it completes."""

from __future__ import annotations

import json
import secrets
from typing import Any

import gradio as gr
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

FILE_META = {"_type": "gradio.FileData"}


def file_data(path: str) -> dict[str, Any]:
    """A file component's value naming `path` (what the page sends after an upload)."""
    return {"path": path, "orig_name": path.rsplit("/", 1)[-1], "meta": FILE_META}


def event(blocks: gr.Blocks, handler: str) -> tuple[int, int]:
    """(fn_index, trigger_id) of the event whose handler is named `handler`."""
    for index, fn in enumerate(blocks.fns.values()):
        if fn.name == handler:
            return index, fn.targets[0][0]
    raise LookupError(handler)


def join(client: TestClient, blocks: gr.Blocks, handler: str, data: list[Any],
         session_hash: str | None = None, **headers: str) -> Any:
    """The answer to joining the queue for `handler` with `data`."""
    fn_index, trigger = event(blocks, handler)
    body = {"data": data, "fn_index": fn_index, "trigger_id": trigger, "event_data": None,
            "session_hash": session_hash or secrets.token_hex(6)}
    return client.post("/gradio_api/queue/join", json=body, headers=headers)


def outcome(client: TestClient, session_hash: str, **headers: str) -> dict[str, Any]:
    """The `process_completed` message of the event queued for `session_hash`."""
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session_hash},
                       headers=headers) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") in ("process_completed", "unexpected_error"):
                    return message
    raise AssertionError("the event never completed")


def call(client: TestClient, blocks: gr.Blocks, handler: str, data: list[Any],
         **headers: str) -> tuple[int, dict[str, Any] | None]:
    """(status of the join, the completed event's message or None when refused)."""
    session_hash = secrets.token_hex(6)
    joined = join(client, blocks, handler, data, session_hash, **headers)
    if joined.status_code != 200:
        return joined.status_code, None
    return 200, outcome(client, session_hash, **headers)


def from_address(app: ASGIApp) -> ASGIApp:
    """`app` seeing the client address a test names in an `x-test-client` header
    (TestClient gives every request the same one)."""

    async def shim(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            named = dict(scope["headers"]).get(b"x-test-client")
            if named:
                scope = {**scope, "client": (named.decode(), 50000)}
        await app(scope, receive, send)

    return shim

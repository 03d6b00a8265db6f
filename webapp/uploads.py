"""Files a request may name: the same session's own uploads, and nothing else.

Gradio copies every file a request names into its cache while it prepares a
handler's inputs, before the handler runs. Its own check that such a file was
uploaded (`gradio.processing_utils._check_allowed`) returns at once unless
`Blocks.has_launched`, which `Blocks.launch()` sets and `gr.mount_gradio_app`
(how the studio is served) never does; and no setting turns it on. So a crafted
value, `{"path": "/srv/grm/data/grm-studio.db", "meta": {"_type":
"gradio.FileData"}}` sent to `/gradio_api/queue/join`, had Gradio open and copy
any file the server can read: the SQLite store with its password hashes, or
`/etc/passwd`. Opening the live SQLite file also dropped the server's POSIX
locks on it, so the next `grm-studio stats` deleted its WAL under the running
server and acknowledged labels were lost.

`UploadsOnly`, in front of Gradio on the served app, is the studio's own check:

- it notes the files Gradio's upload route stores, for the session (cookie)
  that uploaded them (`UploadLedger`);
- it refuses with 403, before Gradio reads anything, every other request whose
  JSON body names a file (any object with a string "path") that is not one of
  that session's uploads: a URL, a path outside Gradio's upload folder once
  symlinks are resolved, something that is not a regular file, or another
  session's upload;
- in the read-only demo it refuses uploads altogether.

`uploaded_file` checks a path a handler is about to open in the same way
(inside the upload folder, a regular file, not a symlink): defence in depth.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import InputError
from webapp.studio import SESSION_COOKIE

UPLOAD_ROUTE = "/gradio_api/upload"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_BODY = 64 << 20  # bytes of a request other than an upload (held in memory to be read)
NOT_UPLOADED = ("refused: a request may only name files uploaded from this page in this "
                "session; upload the file again")
NO_UPLOADS = "refused: the read-only demo takes no uploads"


def upload_folder() -> Path:
    """Gradio's upload folder, symlinks resolved: GRADIO_TEMP_DIR, else
    `<tempdir>/gradio` (`gradio.utils.get_upload_folder`, which the upload route
    and the cache both use)."""
    from gradio.utils import get_upload_folder

    return Path(os.path.realpath(get_upload_folder()))


def resolved_upload(path: str, root: Path) -> Path | None:
    """`path` resolved, when it is a regular file inside `root` (itself resolved)
    that is not a symlink; None otherwise (a URL, a relative path, anything else)."""
    if not path or "\0" in path or "://" in path or not Path(path).is_absolute():
        return None
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root) or Path(path).is_symlink() or not real.is_file():
        return None
    return real


def uploaded_file(path: str, root: Path | None = None) -> Path:
    """`path` if it is a regular file (not a symlink) inside Gradio's upload
    folder (or `root`); InputError otherwise. For a handler, before it opens
    an upload."""
    real = resolved_upload(path, upload_folder() if root is None else Path(os.path.realpath(root)))
    if real is None:
        raise InputError("that is not a file uploaded from this page; upload it again")
    return real


def named_files(value: Any) -> list[str]:
    """Every file a JSON value names: the "path" of each object that has a
    string one, at any depth (Gradio's FileData, and its older meta-less form)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("path"), str):
                found.append(item["path"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


class UploadLedger:
    """Which files each session uploaded (in memory: a restart forgets, and the
    file is uploaded again). Bounded: the oldest sessions, and a session's
    oldest uploads, are forgotten first."""

    def __init__(self, *, sessions: int = 10_000, per_session: int = 256) -> None:
        self._files: OrderedDict[str, OrderedDict[Path, None]] = OrderedDict()
        self._sessions, self._per_session = sessions, per_session
        self._lock = threading.Lock()

    def add(self, session: str, files: list[Path]) -> None:
        with self._lock:
            owned = self._files.setdefault(session, OrderedDict())
            self._files.move_to_end(session)
            for file in files:
                owned[file] = None
                owned.move_to_end(file)
            while len(owned) > self._per_session:
                owned.popitem(last=False)
            while len(self._files) > self._sessions:
                self._files.popitem(last=False)

    def owns(self, session: str, file: Path) -> bool:
        with self._lock:
            return file in self._files.get(session, ())


class UploadsOnly:
    """ASGI middleware: see the module's docstring. `root`: the upload folder
    (default: Gradio's); `uploads`: False in the read-only demo."""

    def __init__(self, app: ASGIApp, *, uploads: bool = True, root: Path | None = None,
                 ledger: UploadLedger | None = None) -> None:
        self.app = app
        self.uploads = uploads
        self.root = Path(os.path.realpath(root)) if root is not None else upload_folder()
        self.ledger = ledger or UploadLedger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        session = _session_of(headers)
        if _route(scope) == UPLOAD_ROUTE:
            if not self.uploads:
                await _refuse(scope, receive, send, NO_UPLOADS)
                return
            await self.app(scope, receive, self._noting_uploads(session, send))
            return
        body, receive = await _buffered(receive)
        if body is None:  # the client went away
            return
        if len(body) > MAX_BODY:
            await JSONResponse({"error": "refused: the request is too large"},
                               status_code=413)(scope, receive, send)
            return
        if not self._names_only_own_uploads(body, session):
            await _refuse(scope, receive, send, NOT_UPLOADED)
            return
        await self.app(scope, receive, send)

    def _names_only_own_uploads(self, body: bytes, session: str) -> bool:
        try:
            value = json.loads(body)
        except RecursionError:
            return False  # nested past any real request
        except ValueError:  # not JSON whatever its Content-Type says (a sign-in form):
            return True  # nothing Gradio reads a file name from
        for path in named_files(value):
            real = resolved_upload(path, self.root)
            if real is None or not self.ledger.owns(session, real):
                return False
        return True

    def _noting_uploads(self, session: str, send: Send) -> Send:
        """`send`, noting the files of a successful upload's answer for `session`."""
        state: dict[str, Any] = {"status": 0, "body": b""}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and state["status"] == 200:
                state["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    self._note(session, state["body"])
            await send(message)

        return sending

    def _note(self, session: str, answer: bytes) -> None:
        try:
            paths = json.loads(answer)
        except ValueError:
            return
        if isinstance(paths, list):
            files = [Path(os.path.realpath(p)) for p in paths if isinstance(p, str)]
            self.ledger.add(session, [f for f in files if f.is_relative_to(self.root)])


def _route(scope: Scope) -> str:
    """The request's path below the app's root path, without a trailing slash."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.rstrip("/")


def _session_of(headers: Headers) -> str:
    """The session cookie of a request ("" without one: the read-only demo)."""
    return cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE, "")


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None if the client disconnected), and a `receive`
    that gives it again to the app behind."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, receive
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY or not message.get("more_body", False):
            break  # past MAX_BODY: the caller refuses without reading the rest
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    await JSONResponse({"error": message}, status_code=403)(scope, receive, send)

"""The served app as the security tests need it: a real store with accounts and
a small dataset, the FastAPI app `grm-studio serve` builds around a tiny
Blocks, and (for tests that race requests or read forwarded headers) that app
under a real uvicorn server in a thread."""

from __future__ import annotations

import functools
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import ScriptedBackend, Settings
from core.store.accounts import set_account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.schema import Annotation, WebSession
from webapp.auth import server_app
from webapp.studio import Studio
from webapp.throttle import SignInThrottle

ACCOUNTS = {"kim": "annotator", "vic": "viewer", "lee": "annotator"}  # password: NAME-password


def studio_app(
    tmp_path: Path, *, throttle: SignInThrottle | None = None, **settings: Any
) -> tuple[FastAPI, Studio]:
    """The served app on a fresh SQLite store with ACCOUNTS and 3 two-response items;
    the Blocks has one button that labels item 1 (a write through the Gradio queue)."""
    from core.store.labels import add_label

    shutil.copy(_template_store(), tmp_path / "served.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'served.db'}")
    studio = Studio(Settings(**settings), engine, backend=ScriptedBackend([]))
    with gr.Blocks() as blocks:
        done = gr.Textbox()

        def label_first(request: gr.Request) -> str:
            from core.store.accounts import Action

            account = studio.require(request, Action.LABEL)
            return str(add_label(engine, 1, account.name, 0).id)

        gr.Button("label").click(label_first, None, done, api_name="label_first")
    return server_app(studio, blocks.queue(), throttle=throttle), studio


@functools.cache
def _template_store() -> Path:
    """The store every test copies, made once per run (argon2 hashes take a while)."""
    folder = Path(tempfile.mkdtemp(prefix="served-studio-"))
    engine = make_engine(f"sqlite:///{folder / 'template.db'}")
    upgrade(engine)
    path = folder / "pairs.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}", "responses": [f"a{i}", f"b{i}"]}) + "\n" for i in range(3)))
    import_file(engine, path, "toy")
    for name, role in ACCOUNTS.items():
        set_account(engine, name, role, f"{name}-password")
    engine.dispose()
    return folder / "template.db"


def label_count(studio: Studio) -> int:
    with Session(studio.engine) as session:
        return session.scalar(select(func.count()).select_from(Annotation)) or 0


def session_count(studio: Studio) -> int:
    with Session(studio.engine) as session:
        return session.scalar(select(func.count()).select_from(WebSession)) or 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: FastAPI, **uvicorn_options: Any) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port (as `serve` runs it); yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", **uvicorn_options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 30 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

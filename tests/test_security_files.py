"""No server file through a crafted file input (issue 16), and no label lost
while other processes use the live SQLite store.

A file component's value sent to the Gradio queue may name any path; Gradio
copies it into its cache before our handler runs, because its own check is off
for an app mounted with `mount_gradio_app` (see webapp.uploads). These tests
send such values to the real served app, as each role and as an anonymous demo
visitor, and check that the request is refused before Gradio reads the file:
nothing lands in Gradio's cache, nothing is imported, the database is the same
and its SQLite locks still hold (another process opening it leaves the WAL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core import ScriptedBackend, Settings
from core.errors import InputError
from core.store import open_store
from core.store.accounts import Account, set_account
from core.store.browse import dataset_names
from core.store.importing import import_file
from core.store.schema import Annotation, Item, JudgementRow, WebSession
from tests.gradio_queue import call, file_data
from webapp.app import build_app
from webapp.auth import server_app
from webapp.datasets_tab import import_upload
from webapp.studio import Studio

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = {"root": "admin", "kim": "annotator", "vic": "viewer"}
SECRET = {"prompt": "the secret question", "responses": ["a", "b"], "best": 0}


@dataclass
class Served:
    studio: Studio
    blocks: gr.Blocks
    app: FastAPI
    db: Path
    cache: Path  # Gradio's upload folder and cache (GRADIO_TEMP_DIR)


def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, read_only: bool = False,
          upload_max_mb: int = 256) -> Served:
    cache = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))  # read when the app is built
    settings = Settings(data_dir=tmp_path / "data", demo_file=None, read_only=read_only,
                        cache_dir=tmp_path / "models", upload_max_mb=upload_max_mb)
    engine = open_store(settings)
    toy = tmp_path / "toy.jsonl"
    toy.write_text("".join(json.dumps({"prompt": f"q{i}", "responses": ["a", "b"]}) + "\n"
                           for i in range(8)))
    import_file(engine, toy, "toy")
    for name, role in ACCOUNTS.items():
        set_account(engine, name, role, f"{name}-password")
    studio = Studio(settings, engine, backend=ScriptedBackend([]))
    blocks = build_app(studio).queue()
    return Served(studio, blocks, server_app(studio, blocks), tmp_path / "data" / "grm-studio.db",
                  cache)


def sign_in(client: TestClient, name: str | None) -> None:
    if name is not None:
        signed = client.post("/login", data={"name": name, "password": f"{name}-password"},
                             follow_redirects=False)
        assert signed.status_code == 303, signed.text


def snapshot(engine: Engine) -> tuple[Any, ...]:
    """What an import or a write would change (sessions aside: signing in writes one)."""
    with Session(engine) as session:
        counts = tuple(session.scalar(select(func.count()).select_from(table))
                       for table in (Item, Annotation, JudgementRow))
    return tuple(dataset_names(engine)), *counts


def cached_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file() or p.is_symlink())


def wal_survives_another_process(db: Path) -> bool:
    """Another process opens the store, reads and closes it. SQLite deletes the
    WAL on the last connection's close: if the server's locks were dropped (by
    the server itself opening the file outside SQLite), this one thinks it is
    the last, and what the server writes next goes to a deleted WAL."""
    assert db.with_name(db.name + "-wal").exists()  # the server holds the store open
    script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
              "c.execute('select count(*) from item').fetchall(); c.close()")
    subprocess.run([sys.executable, "-c", script, str(db)], check=True, timeout=60)
    return db.with_name(db.name + "-wal").exists()


def crafted_values(served: Served, tmp_path: Path) -> list[Any]:
    """File values naming files never uploaded: the store (and its WAL), a
    system file, a server file in an importable format, a symlink planted in
    Gradio's own upload folder, a relative path, a `..` walk out of the upload
    folder, a URL, the old meta-less form, and one inside a list."""
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps(SECRET) + "\n")
    planted = served.cache / "planted"
    planted.mkdir(parents=True, exist_ok=True)
    link = planted / "store.jsonl"
    link.symlink_to(served.db)
    db = str(served.db)
    return [
        file_data(db), file_data(db + "-wal"), file_data("/etc/passwd"), file_data(str(secret)),
        file_data(str(link)), file_data(os.path.relpath(db)),
        file_data(f"{served.cache}/../data/grm-studio.db"),
        file_data("http://127.0.0.1:9/x.jsonl"), {"path": str(secret)},
        [file_data(str(secret))],
    ]


@pytest.mark.parametrize("name", ["root", "kim", "vic", None], ids=[
    "admin", "annotator", "viewer", "demo-visitor"])
def test_a_crafted_file_value_is_refused_before_gradio_reads_it(tmp_path, monkeypatch, name):
    served = serve(tmp_path, monkeypatch, read_only=name is None)
    values = crafted_values(served, tmp_path)
    planted = cached_files(served.cache)
    with TestClient(served.app) as client:
        sign_in(client, name)
        before = snapshot(served.studio.engine)
        for value in values:
            status, _ = call(client, served.blocks, "on_import", [value, "stolen", ""])
            assert status == 403, value
        # a bare path is no file value: Gradio refuses it itself, and copies nothing
        status, done = call(client, served.blocks, "on_import", [str(served.db), "stolen", ""])
        assert status == 200 and done is not None and done["success"] is False
        # and nothing in the store can be fetched as a file either
        for path in (served.db, tmp_path / "secret.jsonl"):
            assert client.get(f"/gradio_api/file={path}").status_code == 403
        assert snapshot(served.studio.engine) == before
        assert "stolen" not in dataset_names(served.studio.engine)
    assert cached_files(served.cache) == planted  # only the symlink the test planted
    assert wal_survives_another_process(served.db)


def test_every_json_body_is_read_whatever_its_headers_say(tmp_path, monkeypatch):
    """A file named with an escaped key, under a Content-Type that is not JSON, or
    nested past any real request is refused too; ordinary bodies pass."""
    served = serve(tmp_path, monkeypatch)
    plain = '{"data": [{"path": ' + json.dumps(str(served.db)) + '}], "fn_index": 0}'
    escaped = plain.replace('"path"', '"\\u0070ath"')  # the same key, as JSON may spell it
    with TestClient(served.app) as client:
        sign_in(client, "root")
        for body, kind in [
            (escaped, "application/json"),
            (plain, "text/plain"),
            (plain, "multipart/form-data; boundary=x"),
            ("[" * 100_000 + "]" * 100_000, "application/json"),
        ]:
            refused = client.post("/gradio_api/queue/join", content=body,
                                  headers={"content-type": kind})
            assert refused.status_code == 403, body[:60]
        assert client.post("/api/v1/labels", json={"item_id": 1, "best": 0}).status_code == 201
    assert snapshot(served.studio.engine)[0] == ("toy",)


def test_an_upload_imports_for_its_own_session_only(tmp_path, monkeypatch):
    served = serve(tmp_path, monkeypatch)
    set_account(served.studio.engine, "ada", "admin", "ada-password")
    with TestClient(served.app) as root, TestClient(served.app) as ada:
        sign_in(root, "root")
        sign_in(ada, "ada")
        uploaded = root.post("/gradio_api/upload",
                             files={"files": ("pairs.jsonl", json.dumps(SECRET) + "\n")})
        assert uploaded.status_code == 200
        path = uploaded.json()[0]
        assert Path(path).resolve().is_relative_to(served.cache.resolve())
        # another session naming the same upload is refused
        status, _ = call(ada, served.blocks, "on_import", [file_data(path), "theirs", ""])
        assert status == 403
        status, done = call(root, served.blocks, "on_import", [file_data(path), "mine", ""])
        assert status == 200 and done is not None and done["success"], done
        assert "imported 1 item(s) into &#x27;mine&#x27;" in done["output"]["data"][0]
    assert dataset_names(served.studio.engine) == ["mine", "toy"]


def test_an_upload_past_the_configured_size_is_refused(tmp_path, monkeypatch):
    served = serve(tmp_path, monkeypatch, upload_max_mb=1)
    with TestClient(served.app) as root:
        sign_in(root, "root")
        small = root.post("/gradio_api/upload", files={"files": ("s.jsonl", b"x" * 1000)})
        big = root.post("/gradio_api/upload",
                        files={"files": ("b.jsonl", b"x" * (2 * 1024 * 1024))})
    assert small.status_code == 200
    assert big.status_code == 413
    assert not any(p.name == "b.jsonl" for p in cached_files(served.cache))


def test_the_import_handler_opens_only_regular_files_in_the_upload_folder(tmp_path):
    engine = open_store(Settings(data_dir=tmp_path / "data", demo_file=None))
    studio = Studio(Settings(data_dir=tmp_path / "data", demo_file=None), engine,
                    backend=ScriptedBackend([]))
    uploads = tmp_path / "uploads"
    (uploads / "abc").mkdir(parents=True)
    real = uploads / "abc" / "pairs.jsonl"
    real.write_text(json.dumps(SECRET) + "\n")
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(SECRET) + "\n")
    link = uploads / "abc" / "link.jsonl"
    link.symlink_to(outside)
    admin = Account("root", "admin")
    for path in (outside, link, uploads / "abc", uploads / "abc" / ".." / ".." / "outside.jsonl",
                 uploads / "missing.jsonl"):
        with pytest.raises(InputError, match="not a file uploaded from this page"):
            import_upload(studio, admin, str(path), "x", "", upload_root=uploads)
    assert "imported 1 item(s)" in import_upload(studio, admin, str(real), "x", "",
                                                  upload_root=uploads)
    assert dataset_names(engine) == ["x"]


def test_the_demo_takes_no_uploads(tmp_path, monkeypatch):
    served = serve(tmp_path, monkeypatch, read_only=True)
    accordion = next(b for b in served.blocks.blocks.values()
                     if isinstance(b, gr.Accordion) and b.label == "Import a file")
    assert accordion.visible is False
    judging = next(b for b in served.blocks.blocks.values()
                   if getattr(b, "elem_id", None) == "datasets-judge-section")
    assert judging.visible is False  # nor is batch judging offered
    with TestClient(served.app) as client:
        refused = client.post("/gradio_api/upload",
                              files={"files": ("big.jsonl", b"x" * 100_000)})
        assert refused.status_code == 403 and "no uploads" in refused.json()["error"]
        status, done = call(client, served.blocks, "on_import", [None, "x", ""])
        assert status == 200 and done is not None and done["success"] is False
        assert "read-only demo" in done["output"]["error"]
    assert cached_files(served.cache) == []
    assert dataset_names(served.studio.engine) == ["toy"]


def test_no_acknowledged_label_is_lost_while_the_cli_reads_the_live_store(tmp_path, monkeypatch):
    """Labels written through the JSON API while `grm-studio stats` runs twice
    against the same SQLite file (and a crafted request names the file):
    after a restart, every label answered 201 is there."""
    served = serve(tmp_path, monkeypatch)
    acknowledged: list[int] = []
    failures: list[str] = []
    stop = threading.Event()
    env = {**os.environ, "GRM_STUDIO_DATABASE_URL": served.studio.settings.resolved_database_url}
    with TestClient(served.app) as client:
        sign_in(client, "kim")

        def write_labels() -> None:
            n = 0
            while not stop.is_set() or n < 30:
                made = client.post("/api/v1/labels", json={"item_id": n % 8 + 1, "best": n % 2})
                if made.status_code == 201:
                    acknowledged.append(made.json()["id"])
                else:
                    failures.append(f"{made.status_code} {made.text}")
                n += 1

        writer = threading.Thread(target=write_labels)
        writer.start()
        try:
            status, _ = call(client, served.blocks, "on_import",
                             [file_data(str(served.db)), "", ""])
            assert status == 403
            for _ in range(2):
                stats = subprocess.run([sys.executable, "-m", "cli", "stats"], cwd=ROOT, env=env,
                                       capture_output=True, text=True, timeout=120, check=False)
                assert stats.returncode == 0, stats.stderr
                assert "toy" in stats.stdout
                assert served.db.with_name("grm-studio.db-wal").exists()  # still the server's
        finally:
            stop.set()
            writer.join(timeout=60)
    assert failures == []
    assert len(acknowledged) >= 30
    served.studio.engine.dispose()  # the restart: a new engine on the same file
    again = open_store(served.studio.settings)
    with Session(again) as session:
        stored = set(session.scalars(select(Annotation.id)))
        assert session.scalar(select(func.count()).select_from(WebSession)) >= 1
    assert set(acknowledged) <= stored and len(set(acknowledged)) == len(acknowledged)
    again.dispose()

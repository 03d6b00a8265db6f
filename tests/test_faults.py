"""Faults: the database goes away in the middle of a session and comes back."""

import json

import pytest
from sqlalchemy.orm import Session

from core.errors import StoreUnavailableError
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.labels import add_label, current_labels


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own, free to be stopped and restarted."""
    from tests.postgres import start_postgres

    server = start_postgres()
    if isinstance(server, str):
        pytest.skip(f"PostgreSQL unavailable: {server}")
    yield server
    server.stop()


def test_the_database_going_away_gives_a_clear_error_and_loses_nothing(own_postgres, tmp_path):
    engine = make_engine(own_postgres.url)
    upgrade(engine)
    path = tmp_path / "p.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}", "responses": ["a", "b"], "best": 0}) + "\n" for i in range(2)
    ))
    import_file(engine, path, "toy")
    first = add_label(engine, 1, "kim", 0, note="before")
    own_postgres.go_away()
    with pytest.raises(StoreUnavailableError, match=r"cannot be reached.*nothing already saved is lost"):
        add_label(engine, 2, "kim", 1)
    own_postgres.come_back()
    second = add_label(engine, 2, "kim", 1, note="after")  # the same engine reconnects
    with Session(engine) as session:
        assert [(lab.id, lab.note) for lab in current_labels(session, 1)] == [(first.id, "before")]
        assert [(lab.id, lab.note) for lab in current_labels(session, 2)] == [(second.id, "after")]
    engine.dispose()


def test_a_store_that_cannot_be_opened_says_so():
    engine = make_engine("postgresql+psycopg://grm@127.0.0.1:1/none")  # nothing listens on 1
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        upgrade(engine)


CHILD_EXPORT = """
import sys, time
from pathlib import Path
from sqlalchemy import select
from sqlalchemy.orm import Session
from core.store.db import make_engine
from core.store.schema import Item
from core.service import export_rft
from core.training import RFTConfig
from tests.scripted_rft import PARAMS, scripted_run

engine = make_engine(sys.argv[1])
with Session(engine) as session:
    items = list(session.scalars(select(Item).order_by(Item.id)))
config = RFTConfig(validation_fraction=0.0, drop_too_easy=False)
_, judge = scripted_run(items, config, {i: [(9, 1)] * 3 for i in range(len(items))})

def slow(done, total, build):
    print(f"item {done}", flush=True)
    time.sleep(1.0)

info = export_rft(engine, judge, "toy", name="toy-rft", root=Path(sys.argv[2]), config=config,
                  params=PARAMS, on_item=slow if sys.argv[3] == "slow" else None)
print("done", info.ref, info.content_sha256, flush=True)
"""


def test_kill_9_during_an_rft_export_then_rerun(tmp_path):
    """A killed export leaves no version, card or record; the rerun writes v1 whole."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from sqlalchemy import func, select

    from core.store.schema import RFTExport
    from core.training import read_export
    from tests.scripted_rft import import_pairs

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    import_pairs(engine, tmp_path, 4)
    root = tmp_path / "exports"
    script = tmp_path / "child.py"
    script.write_text(CHILD_EXPORT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, str(script), url, str(root), "slow"],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().startswith("item 1")  # in the middle of sampling
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert not list(root.rglob("card.json")) and not list(root.glob("*/v*"))
    with Session(engine) as session:
        assert session.scalar(select(func.count(RFTExport.id))) == 0
    rerun = subprocess.run([sys.executable, str(script), url, str(root), "fast"],
                           capture_output=True, text=True, env=env, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    ref, digest = rerun.stdout.split()[-2:]
    assert ref == "toy-rft:v1"  # the killed run took no version number
    export = read_export(root / "toy-rft" / "v1")  # checks every file against the card
    assert export.content_sha256 == digest
    with Session(engine) as session:
        assert session.scalar(select(func.count(RFTExport.id))) == 1
    engine.dispose()

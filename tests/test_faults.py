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
    with pytest.raises(StoreUnavailableError, match="cannot be reached.*nothing already saved is lost"):
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

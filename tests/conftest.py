"""Shared fixtures. The embedded base model is loaded once per test session."""

from __future__ import annotations

import pytest

from core.config import Settings


@pytest.fixture(scope="session")
def embedded_backend():
    """The real embedded SmolLM2 base model (transformers, CPU), untrained: the tests
    that use it pin its known behaviour (score rescue, shared-prefix sampling)."""
    from core.backends import load_backend

    return load_backend(Settings(model="embedded"))


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session; skipped (with the reason) if it can't start."""
    from tests.postgres import start_postgres

    server = start_postgres()
    if isinstance(server, str):
        print(f"\nPostgreSQL tests skipped: {server}")
        pytest.skip(f"PostgreSQL unavailable: {server}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty database URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server = request.getfixturevalue("postgres_server")
    import sqlalchemy as sa

    name = f"t_{abs(hash(request.node.nodeid)) % 10**12}"
    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server.database_url(name)


@pytest.fixture
def store(store_url):
    """An engine on a fresh database migrated to the latest schema."""
    from core.store.db import make_engine, upgrade

    engine = make_engine(store_url)
    upgrade(engine)
    yield engine
    engine.dispose()


SCREENSHOTS_KEY = pytest.StashKey()


def pytest_terminal_summary(terminalreporter):
    """Say where the browser tests of this run left their screenshots."""
    folder = terminalreporter.config.stash.get(SCREENSHOTS_KEY, None)
    if folder is not None:
        shots = ", ".join(sorted(p.name for p in folder.glob("*.png")))
        terminalreporter.write_line(f"screenshots of the studio's tabs: {folder} ({shots})")

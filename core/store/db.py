"""Connecting to the database and bringing its schema up to date.

SQLite (the default, a file under `data/`) runs in WAL mode with foreign
keys on and a busy timeout, so that several threads can write labels at
once; any other SQLAlchemy URL (PostgreSQL: `postgresql+psycopg://...`) works
the same. The schema is always created and upgraded by Alembic, never by
`create_all`, so a database's revision is always known.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import StoreUnavailableError

MIGRATIONS = Path(__file__).with_name("migrations")


def _unreachable(context: ExceptionContext) -> None:
    """A lost or refused connection becomes one clear StoreUnavailableError (a failed
    pre-ping is left alone: SQLAlchemy reconnects after it)."""
    if context.is_pre_ping or not (context.is_disconnect or context.connection is None):
        return
    reason = str(context.original_exception).strip().splitlines()[0]
    raise StoreUnavailableError(
        f"the database cannot be reached ({reason}); nothing already saved is lost: "
        "try again once it is back"
    ) from context.original_exception


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout.
    A database that goes away raises StoreUnavailableError; the next use after it
    is back reconnects (pre-ping)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "handle_error", _unreachable)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "handle_error", _unreachable)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 0x67726D5F6D6967  # PostgreSQL advisory lock key: "grm_mig"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of `engine`'s database to `revision` (default: latest). On
    PostgreSQL one process at a time (an advisory lock): processes started together
    on one store, such as reward-server replicas, would otherwise race to create the
    same tables, and all but one fail; after the lock, the others find it done."""
    with _migration_lock(engine):
        command.upgrade(alembic_config(engine), revision)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        try:
            yield
        finally:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def head_revision() -> str:
    """The newest revision the migrations know."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


T = TypeVar("T")
CHAIN_RETRIES = 20  # concurrent writers on one chain each lose at most a few races


def chain_head(session: Session, model: Any, item_id: int) -> int | None:
    """The newest row of an item's append-only chain in `model`'s table (labels,
    adjudications, reference edits: each row `supersedes_id` the one before), if any."""
    from sqlalchemy import exists, select
    from sqlalchemy.orm import aliased

    newer = aliased(model)
    return session.scalar(select(model.id).where(
        model.item_id == item_id, ~exists().where(newer.supersedes_id == model.id)))


def append_to_chain(engine: Engine, write: Callable[[Session], T]) -> T:
    """`write(session)` in a transaction of its own, for a row that supersedes the head
    of an append-only chain (a label, an adjudication): when another writer's row took
    the head first (the unique constraint), the write is retried on the new head."""
    for attempt in range(CHAIN_RETRIES):
        try:
            with Session(engine) as session, session.begin():
                return write(session)
        except IntegrityError:
            if attempt == CHAIN_RETRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # let the winner commit
    raise AssertionError("unreachable")

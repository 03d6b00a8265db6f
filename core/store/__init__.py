"""The SQL store: items, judgements, samples and human labels.

    engine = open_store(settings)          # connect and migrate to the latest schema
    import_file(engine, path, "llmbar")    # streamed, one transaction, idempotent
    add_label(engine, item_id, "alice", best=1)
"""

from __future__ import annotations

from sqlalchemy import Engine

from core.config import Settings
from core.store.db import make_engine, upgrade


def open_store(settings: Settings) -> Engine:
    """An engine on the configured database, its schema migrated to the latest revision."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return engine

"""Web sign-in sessions: a random token per signed-in browser, with an expiry.

The browser holds the token; the store keeps only its SHA-256, the account
and when it expires, so sessions survive restarts, work across several
server processes, and end on time. The account's role is read afresh on
every lookup: a role changed by an admin applies at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.store.accounts import Account
from core.store.schema import Annotator, WebSession

TOKEN_BYTES = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    engine: Engine, account: Account, hours: float, *, now: datetime | None = None
) -> str:
    """A new session token for `account`, valid for `hours`."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with Session(engine) as session, session.begin():
        annotator = session.scalar(select(Annotator.id).where(Annotator.name == account.name))
        if annotator is None:
            raise ValueError(f"no account '{account.name}'")
        session.add(
            WebSession(
                token_sha256=_digest(token),
                annotator_id=annotator,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
    return token


def session_account(engine: Engine, token: str | None, *, now: datetime | None = None) -> Account | None:
    """The account signed in with `token`, or None if it is unknown, expired or ended."""
    if not token or len(token) > 200:
        return None
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        row = session.execute(
            select(Annotator.name, Annotator.role, Annotator.password_hash, WebSession.expires_at)
            .join(WebSession, WebSession.annotator_id == Annotator.id)
            .where(WebSession.token_sha256 == _digest(token), WebSession.ended_at.is_(None))
        ).one_or_none()
    if row is None or row.password_hash is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    return Account(row.name, row.role) if now < expires else None


def end_session(engine: Engine, token: str | None) -> None:
    """Sign out: the token stops working (unknown tokens are ignored)."""
    if not token:
        return
    with Session(engine) as session, session.begin():
        session.execute(
            update(WebSession)
            .where(WebSession.token_sha256 == _digest(token), WebSession.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC))
        )

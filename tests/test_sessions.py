"""Web sign-in sessions and role checks, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotAllowedError
from core.store.accounts import Account, Action, require, set_account
from core.store.schema import WebSession
from core.store.sessions import end_session, session_account, start_session


def test_a_session_signs_in_until_it_expires_or_ends(store):
    ada = set_account(store, "ada", "annotator", "correct horse")
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    token = start_session(store, ada, hours=2, now=start)
    assert session_account(store, token, now=start + timedelta(hours=1)) == ada
    assert session_account(store, token, now=start + timedelta(hours=2, seconds=1)) is None
    with Session(store) as session:
        stored = session.scalars(select(WebSession.token_sha256)).all()
    assert stored and token not in stored  # only the hash is kept
    live = start_session(store, ada, hours=2)
    assert session_account(store, live) == ada
    end_session(store, live)
    assert session_account(store, live) is None


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 10_000, "' OR 1=1 --"])
def test_unknown_tokens_sign_nobody_in(store, token):
    set_account(store, "ada", "annotator", "correct horse")
    assert session_account(store, token) is None
    end_session(store, token)  # harmless


def test_a_role_change_applies_at_once_and_a_new_password_signs_out(store):
    ada = set_account(store, "ada", "annotator", "correct horse")
    token = start_session(store, ada, hours=1)
    # role changes apply to the live session; a password change ends it
    with Session(store) as session, session.begin():
        from core.store.schema import Annotator

        session.scalar(select(Annotator).where(Annotator.name == "ada")).role = "viewer"
    assert session_account(store, token) == Account("ada", "viewer")
    set_account(store, "ada", "viewer", "a new password")
    assert session_account(store, token) is None


def test_roles_allow_what_they_should():
    admin, annotator, viewer = (Account("a", r) for r in ("admin", "annotator", "viewer"))
    assert all(admin.may(action) for action in Action)
    assert annotator.may(Action.LABEL) and annotator.may(Action.JUDGE)
    assert not annotator.may(Action.IMPORT) and not annotator.may(Action.TRAIN)
    assert not any(viewer.may(action) for action in Action)
    with pytest.raises(NotAllowedError, match="'v' is signed in as viewer and may not label"):
        require(Account("v", "viewer"), Action.LABEL)
    with pytest.raises(NotAllowedError, match="sign in to import datasets"):
        require(None, Action.IMPORT)
    assert require(annotator, Action.LABEL) is annotator

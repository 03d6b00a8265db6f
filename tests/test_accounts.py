"""Accounts: argon2-hashed passwords and roles, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.store.accounts import authenticate, set_account
from core.store.schema import Annotator


def test_accounts_sign_in_with_hashed_passwords_and_roles(store):
    set_account(store, "ada", "annotator", "correct horse")
    set_account(store, "vic", "viewer", "battery staple")
    with Session(store) as session:
        stored = session.scalar(select(Annotator.password_hash).where(Annotator.name == "ada"))
    assert stored.startswith("$argon2") and "correct horse" not in stored
    ada = authenticate(store, "ada", "correct horse")
    assert ada is not None and ada.role == "annotator" and ada.may_write
    vic = authenticate(store, "vic", "battery staple")
    assert vic is not None and not vic.may_write
    assert authenticate(store, "ada", "wrong password") is None
    assert authenticate(store, "nobody", "correct horse") is None
    set_account(store, "ada", "admin", "a new password")  # role and password change
    assert authenticate(store, "ada", "correct horse") is None
    assert authenticate(store, "ada", "a new password").role == "admin"


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("  ", "annotator", "long enough", "needs a name"),
        ("ada", "owner", "long enough", "unknown role"),
        ("ada", "viewer", "short", "at least 8"),
        ("a" * 201, "viewer", "long enough", "at most 200 characters"),
    ],
)
def test_bad_accounts_are_refused(store, name, role, password, message):
    with pytest.raises(InputError, match=message):
        set_account(store, name, role, password)


def test_an_imported_labeller_cannot_be_turned_into_an_account(store):
    from core.store.labels import annotator_id

    with Session(store) as session, session.begin():
        annotator_id(session, "pandalm:annotator1", role="imported")
    with pytest.raises(InputError, match="imported from a dataset"):
        set_account(store, "pandalm:annotator1", "admin", "long enough")
    assert authenticate(store, "pandalm:annotator1", "long enough") is None

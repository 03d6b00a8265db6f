"""Annotator accounts: roles and argon2-hashed passwords (argon2-cffi).

Passwords are never stored or logged in clear; a wrong name and a wrong
password give the same answer. What each role may do is decided here, so
that every front asks the same question (`may_write`) on the server side.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.errors import InputError
from core.store.schema import Annotator

SIGN_IN_ROLES = ("admin", "annotator", "viewer")
WRITE_ROLES = frozenset({"admin", "annotator"})
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Account:
    name: str
    role: str

    @property
    def may_write(self) -> bool:
        """Whether this account may add labels, import or judge into the store."""
        return self.role in WRITE_ROLES


def set_account(engine: Engine, name: str, role: str, password: str) -> Account:
    """Create the account `name`, or change its role and password."""
    name = name.strip()
    if not name:
        raise InputError("an account needs a name")
    if role not in SIGN_IN_ROLES:
        raise InputError(f"unknown role '{role}'; one of {', '.join(SIGN_IN_ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    digest = PasswordHasher().hash(password)
    with Session(engine) as session, session.begin():
        row = session.scalar(select(Annotator).where(Annotator.name == name))
        if row is None:
            session.add(Annotator(name=name, role=role, password_hash=digest))
        elif row.role == "imported":
            raise InputError(f"'{name}' is a labeller imported from a dataset, not an account")
        else:
            row.role, row.password_hash = role, digest
    return Account(name, role)


def authenticate(engine: Engine, name: str, password: str) -> Account | None:
    """The account when `password` is right for `name`; None otherwise (either way)."""
    with Session(engine) as session:
        row = session.scalar(select(Annotator).where(Annotator.name == name.strip()))
    hasher = PasswordHasher()
    if row is None or row.password_hash is None:
        hasher.hash(password)  # same work as a real check: no timing hint that the name is unknown
        return None
    try:
        hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return Account(row.name, row.role)

"""Annotator accounts: roles and argon2-hashed passwords (argon2-cffi).

Passwords are never stored or logged in clear; a wrong name and a wrong
password give the same answer. What each role may do is decided here
(`ALLOWED`), so that every front asks the same question on the server side:
`account.require(Action.LABEL)` before it writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from core.errors import InputError, NotAllowedError
from core.store.schema import Annotator, WebSession

SIGN_IN_ROLES = ("admin", "reviewer", "annotator", "viewer")
MIN_PASSWORD = 8


class Action(StrEnum):
    """Everything a front can do that writes to the store."""

    JUDGE = "save judgements"
    LABEL = "label items"
    IMPORT = "import datasets"
    BATCH = "judge whole datasets"
    TRAIN = "build training data and train models"
    ADJUDICATE = "settle items where annotators disagree (adjudicate)"
    EDIT_REFERENCE = "add, edit or remove items' reference answers"


ALLOWED: Mapping[str, frozenset[Action]] = MappingProxyType({
    "admin": frozenset(Action),
    # an annotator who also settles disagreements: an adjudicated label decides the item
    "reviewer": frozenset({Action.JUDGE, Action.LABEL, Action.ADJUDICATE,
                           Action.EDIT_REFERENCE}),
    "annotator": frozenset({Action.JUDGE, Action.LABEL, Action.EDIT_REFERENCE}),
    "viewer": frozenset(),  # sees everything, writes nothing
})


@dataclass(frozen=True)
class Account:
    name: str
    role: str

    def may(self, action: Action) -> bool:
        return action in ALLOWED.get(self.role, frozenset())

    @property
    def may_write(self) -> bool:
        """Whether this account may write anything at all to the store."""
        return bool(ALLOWED.get(self.role))

    def require(self, action: Action) -> Account:
        """This account, or NotAllowedError naming what its role lacks."""
        if self.may(action):
            return self
        if self.role == "demo":
            raise NotAllowedError(f"this studio is a read-only demo: it does not {action.value}")
        raise NotAllowedError(
            f"'{self.name}' is signed in as {self.role} and may not {action.value}; "
            "ask an admin for another role"
        )


def require(account: Account | None, action: Action) -> Account:
    """`account.require(action)`, or NotAllowedError when nobody is signed in."""
    if account is None:
        raise NotAllowedError(f"sign in to {action.value}")
    return account.require(action)


def permitted_account_id(session: Session, name: str, action: Action, *, purpose: str,
                         who_may: str) -> int:
    """The id of account `name` for a store write; NotAllowedError when there is none
    ("there is no account named 'x' to {purpose}") or its role may not do `action`
    ("... an {who_may} may")."""
    found = select(Annotator.id, Annotator.role).where(Annotator.name == name)
    row = session.execute(found).first()
    if row is None:
        raise NotAllowedError(f"there is no account named '{name}' to {purpose}")
    if action not in ALLOWED.get(row.role, frozenset()):
        raise NotAllowedError(
            f"'{name}' has the role {row.role} and may not {action.value}; {who_may} may")
    return int(row.id)


def set_account(engine: Engine, name: str, role: str, password: str) -> Account:
    """Create the account `name`, or change its role and password (which ends its
    web sessions)."""
    name = name.strip()
    if not name:
        raise InputError("an account needs a name")
    if len(name) > 200:
        raise InputError("an account's name has at most 200 characters")
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
            # a new password signs every browser out
            session.execute(delete(WebSession).where(WebSession.annotator_id == row.id))
    return Account(name, role)


def has_sign_in_account(engine: Engine) -> bool:
    """Whether anyone can sign in to this store (an account with a password)."""
    with Session(engine) as session:
        found = session.scalar(
            select(Annotator.id).where(Annotator.password_hash.is_not(None)).limit(1)
        )
    return found is not None


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

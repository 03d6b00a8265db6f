"""The Typer app and the one place where errors become exit codes and messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError

from core.config import Settings
from core.errors import GRMStudioError

app = typer.Typer(
    name="grm-studio",
    help="GRM Studio: judge responses with a generative reward model, label, improve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's non-None overrides."""
    return given_model(Settings, "invalid setting", overrides)


M = TypeVar("M", bound=BaseModel)


def given_model(model: type[M], what: str, values: dict[str, Any]) -> M:
    """`model` from the values that were given (not None); a bad value ends the
    command with one line naming the field: "<what>: field: problem"."""
    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise fail(f"{what}: {problems}") from None


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn GRM Studio's own errors (and an unreachable database) into one line."""
    try:
        yield
    except GRMStudioError as err:
        raise fail(str(err)) from None
    except DBAPIError as err:
        raise fail(
            f"database error: {str(err.orig).strip()}; check GRM_STUDIO_DATABASE_URL and the input"
        ) from None

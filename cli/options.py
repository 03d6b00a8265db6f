"""Command-line options derived from a trainer's config, so that each default and
each help text lives once, in the config (a pydantic model, every field described).

    def train(epochs: Annotated[int | None, config_option(MetaTrainConfig, "epochs")] = None):
        config = build_config(MetaTrainConfig, epochs=epochs)

An option defaults to None ("not given"); `build_config` passes only the given
ones, so the config's own default applies to the rest; its help is the
field's description, and the default it shows is the config's.
"""

from __future__ import annotations

from typing import Any, TypeVar

import typer
from pydantic import BaseModel

from cli.app import given_model
from core.training.fields import field_default

C = TypeVar("C", bound=BaseModel)


def shown_default(config: type[BaseModel], field: str) -> str | None:
    """`field`'s default as the help shows it; None where it is None (the field's
    description says what none means)."""
    default = field_default(config, field)
    return None if default is None else repr(default) if isinstance(default, str) else str(default)


def config_option(config: type[BaseModel], field: str, *names: str) -> Any:
    """A typer option for `config`'s `field` (default None: not given), its help
    the field's description, the default it shows the config's; `names` as typer
    takes them ('--lora', '--hinted/--no-hinted')."""
    shown = shown_default(config, field)
    return typer.Option(*names, help=config.model_fields[field].description,
                        show_default=shown if shown is not None else False)


def build_config(config: type[C], **options: Any) -> C:
    """`config` from the options that were given (not None); a bad value ends the
    command with one line naming the field."""
    return given_model(config, "invalid option", options)

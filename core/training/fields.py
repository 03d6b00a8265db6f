"""Reading a trainer config's fields, for the fronts that are derived from it (the
command line's options, the Training tab's inputs): each default and each
description lives once, in the config."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def field_default(config: type[BaseModel], field: str) -> Any:
    """The default of `config`'s `field`; KeyError if there is no such field or it
    has no default."""
    default = config.model_fields[field].get_default(call_default_factory=True)
    if default is PydanticUndefined:
        raise KeyError(f"{config.__name__}.{field} has no default")
    return default

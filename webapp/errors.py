"""How the web app shows an error: the one way, for every handler.

GRM Studio's own errors (`core.errors.GRMStudioError` and its subclasses: bad
input, a role that may not, the store unreachable, ...) say what was wrong and
what to do; they are shown as they are, in Gradio's error pop-up. Anything
else is a bug or an outage: it is logged with its traceback and a reference,
and the page shows a generic message with that reference (never the
exception's text, which may hold paths or SQL).

    @shows_errors
    def on_save(...): ...          # a plain handler or a streaming (generator) one

Handlers raise; they do not return error strings or build error HTML.
Gradio's own checks of an input (a number past its bounds, a choice not
offered) are shown the same way by `StudioBlocks`: in the pop-up, without a
traceback in the server log.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import gradio as gr

from core.errors import GRMStudioError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

UNEXPECTED = ("Something went wrong on the server (reference {reference}); it is in the "
              "studio's log. Try again, or tell the studio's admin the reference.")


def page_error(message: str) -> gr.Error:
    """The pop-up for `message` (plain text: escaped, as the pop-up renders HTML)."""
    text = message.strip() or "Error"
    return gr.Error(html.escape(text[0].upper() + text[1:], quote=False),
                    print_exception=False)


@contextmanager
def shown_errors() -> Iterator[None]:
    """Turn what the block raises into the page's error (see the module's docstring)."""
    try:
        yield
    except gr.Error:
        raise
    except GRMStudioError as err:
        raise page_error(str(err)) from None
    except Exception:
        reference = secrets.token_hex(4)
        log.exception("unexpected error in a web handler (reference %s)", reference)
        raise page_error(UNEXPECTED.format(reference=reference)) from None


def shows_errors(handler: Callable[P, R]) -> Callable[P, R]:
    """`handler` with its errors shown by `shown_errors`; its name, signature (Gradio
    reads gr.Request and gr.Progress from it) and generator-ness are kept."""
    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def stream(*args: P.args, **kwargs: P.kwargs) -> Any:
            with shown_errors():
                return (yield from handler(*args, **kwargs))

        return stream

    @functools.wraps(handler)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        with shown_errors():
            return handler(*args, **kwargs)

    return call


class StudioBlocks(gr.Blocks):
    """gr.Blocks whose inputs' own checks fail like a user's mistake: Gradio raises
    gr.Error from a component's preprocess (e.g. "Value 99 is greater than maximum
    value 16.") with its traceback printed to the server log; here it is the same
    pop-up, as `page_error`, and the log stays quiet."""

    async def preprocess_data(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().preprocess_data(*args, **kwargs)
        except gr.Error as err:
            if not err.print_exception:
                raise
            raise page_error(str(err.message)) from None

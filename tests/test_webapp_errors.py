"""webapp.errors: GRM Studio's own errors reach the page as gr.Error with their
message (as text), anything else as a generic message with a reference that is
in the log; plain and streaming handlers alike, and Gradio still sees what the
handler asks for. Every handler of the tabs goes through it."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterator

import gradio as gr
import pytest

from core import ScriptedBackend, Settings
from core.errors import GRMStudioError, InputError, NotAllowedError, StoreUnavailableError
from core.store.db import make_engine, upgrade
from webapp.errors import shows_errors
from webapp.studio import Studio


def raising(error: BaseException):
    @shows_errors
    def handler(value: str) -> str:
        raise error

    return handler


@pytest.mark.parametrize(("error", "shown"), [
    (InputError("the query is empty"), "The query is empty"),
    (NotAllowedError("'vic' is signed in as viewer and may not label items"),
     "'vic' is signed in as viewer and may not label items"),
    (StoreUnavailableError("the database cannot be reached"), "The database cannot be reached"),
    (GRMStudioError("no dataset '<b>x</b>' & more"),
     "No dataset '&lt;b&gt;x&lt;/b&gt;' &amp; more"),
])
def test_the_studios_own_errors_are_shown_with_their_message_as_text(error, shown, caplog):
    with pytest.raises(gr.Error) as raised:
        raising(error)("x")
    assert raised.value.message == shown and raised.value.print_exception is False
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert not caplog.records  # expected errors are not logged as failures


def test_an_unexpected_error_is_logged_with_a_reference_and_shown_generically(caplog):
    with caplog.at_level(logging.ERROR, logger="webapp.errors"), pytest.raises(gr.Error) as raised:
        raising(KeyError("/srv/secret/path.db"))("x")
    message = raised.value.message
    assert "secret" not in message and message.startswith("Something went wrong on the server")
    reference = re.search(r"reference ([0-9a-f]{8})", message).group(1)
    (record,) = caplog.records
    assert reference in record.getMessage() and record.exc_info[0] is KeyError


def test_a_gr_error_raised_by_the_handler_passes_unchanged():
    original = gr.Error("<i>as the handler wrote it</i>", duration=3)
    with pytest.raises(gr.Error) as raised:
        raising(original)("x")
    assert raised.value is original


def test_a_streaming_handler_shows_what_it_yielded_then_the_error():
    @shows_errors
    def stream(n: int) -> Iterator[str]:
        yield "first"
        yield "second"
        raise InputError(f"item {n} failed")

    assert shows_errors(stream) is not stream
    updates = stream(3)
    assert [next(updates), next(updates)] == ["first", "second"]
    with pytest.raises(gr.Error, match="Item 3 failed"):
        next(updates)


def test_closing_a_streaming_handler_closes_the_handler_and_raises_nothing():
    closed = []

    @shows_errors
    def stream() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    updates = stream()
    assert next(updates) == 1
    updates.close()
    assert closed == [True]


def test_gradio_still_sees_the_handlers_name_request_progress_and_streaming():
    @shows_errors
    def on_thing(text: str, request: gr.Request,
                 progress: gr.Progress = gr.Progress()) -> Iterator[str]:  # noqa: B008
        yield text

    assert on_thing.__name__ == "on_thing"
    assert gr.utils.get_type_hints(on_thing)["request"] is gr.Request
    with gr.Blocks() as app:
        box = gr.Textbox()
        gr.Button().click(on_thing, box, box)
    (fn,) = app.fns.values()
    assert fn.api_name == "on_thing" and fn.tracks_progress
    assert inspect.isgeneratorfunction(on_thing)


TABS = {"webapp.app", "webapp.judge_tab", "webapp.datasets_tab", "webapp.annotate_tab",
        "webapp.training_tab"}


def test_every_handler_of_the_tabs_shows_errors_the_one_way(tmp_path):
    from webapp.app import build_app

    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    studio = Studio(Settings(data_dir=tmp_path / "data"), engine, backend=ScriptedBackend([]))
    app = build_app(studio)
    handlers = [f.fn for f in app.fns.values() if f.fn is not None]
    ours = [fn for fn in handlers if fn.__module__ in TABS]
    assert len(ours) >= 30
    unwrapped = [fn.__qualname__ for fn in ours if not hasattr(fn, "__wrapped__")]
    assert unwrapped == []
    engine.dispose()

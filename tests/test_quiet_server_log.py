"""A user's mistake is one pop-up and no traceback in the server log, whether the
studio's own check refuses it (an empty query) or Gradio's check of an input does
(a k past the slider's end); library deprecation notices are kept out of the log
where the studio serves, and nothing else is."""

from __future__ import annotations

import logging
import warnings

import pytest
from fastapi.testclient import TestClient

from core import ScriptedBackend, Settings
from core.store.db import make_engine, upgrade
from tests.gradio_queue import call
from webapp.app import LIBRARY_NOTICES, build_app, quiet_library_notices
from webapp.auth import server_app
from webapp.studio import Studio

HIDDEN_BOXES = [""] * 7  # responses 3..9


def judge_data(query: str, k: float, k_meta: float = 0) -> list:
    """The Judge button's inputs: query, turns, reference, count, k, temperature, model,
    meta RM, k_meta, then the nine response boxes."""
    return [query, "", "", 2, k, 0.5, None, "", k_meta, "4", "5", *HIDDEN_BOXES]


@pytest.mark.parametrize(("data", "shown"), [
    (judge_data("", 2), "The query is empty"),  # the studio's own check (core.inputs)
    (judge_data("2+2?", 99), "Value 99 is greater than maximum value 4."),  # Gradio's slider
    (judge_data("2+2?", 2, k_meta=-3), "Value -3 is less than minimum value 0."),  # gr.Number
])
def test_a_users_mistake_is_one_message_and_no_traceback(tmp_path, monkeypatch, capfd, caplog,
                                                         data, shown):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    upgrade(engine)
    backend = ScriptedBackend([])
    studio = Studio(Settings(read_only=True, demo_file=None, data_dir=tmp_path / "data"), engine,
                    backend=backend)
    blocks = build_app(studio).queue()
    capfd.readouterr()  # what building printed
    with caplog.at_level(logging.INFO), TestClient(server_app(studio, blocks)) as client:
        status, message = call(client, blocks, "on_judge", data)
    assert status == 200 and message is not None and message["success"] is False
    assert message["output"]["error"] == shown
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err + printed.out
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert backend.prompts == []
    engine.dispose()


def test_library_notices_are_kept_out_and_other_warnings_are_not():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_library_notices()
        warnings.warn("`past_key_values` is deprecated and will be removed in version 5.40.0 "
                      "for `forward`. Use `cache` instead.", FutureWarning, stacklevel=1)
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6. "
                      "Use `is_activation_checkpointing` instead.", FutureWarning, stacklevel=1)
        warnings.warn("`other_thing` is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("`past_key_values` is deprecated", UserWarning, stacklevel=1)
    assert [(w.category, str(w.message)) for w in seen] == [
        (FutureWarning, "`other_thing` is deprecated"),
        (UserWarning, "`past_key_values` is deprecated"),
    ]


def test_serve_quiets_the_notices_before_it_serves(tmp_path, monkeypatch):
    import uvicorn

    from webapp.app import serve

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    settings = Settings(data_dir=tmp_path / "data", demo_file=None,
                        database_url=f"sqlite:///{tmp_path / 'serve.db'}")
    with warnings.catch_warnings():
        serve(settings)
        ignored = {f[1].pattern for f in warnings.filters
                   if f[0] == "ignore" and f[1] is not None and f[2] is FutureWarning}
    assert served and set(LIBRARY_NOTICES) <= ignored

"""The Training tab's handlers with a scripted judge: label preview, building an
export with progress, the download files, the exports and models tables; the
tab builds inside the app."""

from __future__ import annotations

import gradio as gr
import pytest

from core import ScriptedBackend, Settings
from core.store.accounts import Account
from core.store.db import make_engine, upgrade
from core.training import RFTConfig
from tests.test_rft_data import answer, import_pairs, orders
from webapp.studio import Studio
from webapp.training_tab import (
    build_export,
    build_training_tab,
    export_choices,
    exports_table,
    models_table,
    preview_labels,
    start_training,
)

ADMIN = Account("root", "admin")


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    items = import_pairs(engine, tmp_path, 3)
    config = RFTConfig()
    script = [answer((9, 2), o) if n else answer((1, 9), o)
              for item in items for n, o in enumerate(orders(item.content_hash, config, 3))]
    script += [answer((9, 2), o) for item in items for o in orders(item.content_hash, config, 1, 1)]
    settings = Settings(data_dir=tmp_path / "data", model="scripted", rescue=False, prefill=False)
    yield Studio(settings, engine, backend=ScriptedBackend(script))
    engine.dispose()


def test_preview_build_and_list(studio):
    assert preview_labels(studio, "toy", 0).startswith("3 labelled item(s)")
    assert "no dataset 'nope'" in preview_labels(studio, "nope", 0)

    steps = list(build_export(studio, ADMIN, "toy", "", 3, 0, False, True, 64))
    lines = [line for line, _, _ in steps]
    assert any("Sampled 2 of 3" in line for line in lines)
    final_line, counts, files = steps[-1]
    assert "Export toy-rft:v1 written" in final_line
    assert "| accepted |" in counts and "| wrong |" in counts
    assert {f.rsplit("/", 1)[-1] for f in files} >= {"train.jsonl", "card.json"}
    assert export_choices(studio) == ["toy-rft:v1"]
    table = exports_table(studio)
    assert list(table["export"]) == ["toy-rft:v1"]
    assert table["train"][0] + table["validation"][0] + table["hinted"][0] > 0
    models = models_table(studio)  # the export's judge is registered, not trained
    assert list(models["name"]) == ["scripted"] and list(models["trained"]) == [""]


def test_bad_choices_are_messages_not_crashes(studio):
    assert list(build_export(studio, ADMIN, "", "", 3, 0, False, True, 64))[-1][0] == "Choose a dataset."
    assert list(start_training(studio, ADMIN, "", False, 1, -1, None, "")) == ["Choose an export."]
    assert "no RFT export" in list(start_training(studio, ADMIN, "missing", False, 1, -1, None, ""))[-1]


def test_the_tab_builds(studio):
    with gr.Blocks():
        build_training_tab(studio)


def test_only_admins_build_exports_and_train(studio):
    for account in (Account("kim", "annotator"), Account("vic", "viewer"), None):
        ((line, _, files),) = build_export(studio, account, "toy", "", 3, 0, False, True, 64)
        assert line.startswith("Not built:") and files is None
        (refused,) = start_training(studio, account, "toy-rft", False, 1, -1, None, "")
        assert refused.startswith("Not trained:")


def test_meta_rm_training_from_the_tab_needs_an_admin_and_samples(studio):
    from webapp.training_tab import start_meta_training

    for account in (Account("kim", "annotator"), Account("vic", "viewer"), None):
        (refused,) = start_meta_training(studio, account, "toy", "", 0, 0)
        assert refused.startswith("Not trained:")
    # nothing judged yet: the store has no samples to learn from, and says so
    *_, last = start_meta_training(studio, ADMIN, "toy", "m1", 1, 1)
    assert last.splitlines()[-1].startswith("Stopped by an error:")
    assert not (studio.settings.data_dir / "meta-models" / "m1").exists()

"""The Datasets tab's mapping panel (issue 18, the stretch goal): preview an upload,
see the detected format or a suggested mapping, map the fields, import with it.
Handlers are called directly, with no browser."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from core import ScriptedBackend, Settings
from core.datasets import FieldMap, LabelValues, SourceItem
from core.datasets.preview import preview_file
from core.errors import InputError, NotAllowedError
from core.store.accounts import Account
from core.store.db import make_engine, upgrade
from core.store.export import item_records
from webapp.datasets_tab import build_datasets_tab, import_upload
from webapp.import_mapping import (
    ROLES,
    form_mapping,
    form_values,
    panel_mapping,
    preview_html,
    preview_upload,
)
from webapp.studio import Studio

ADMIN = Account("root", "admin")
PRESETS = Path(__file__).parent / "fixtures" / "datasets" / "presets"
UNKNOWN = [
    {"instruction": "Say <b>hi</b>", "response1": "hi", "response2": "hello", "label": 2},
    {"instruction": "Say bye", "response1": "bye", "response2": "ciao", "label": 1},
]


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    yield Studio(Settings(), engine, backend=ScriptedBackend([]))
    engine.dispose()


def unknown_file(tmp_path: Path) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in UNKNOWN), encoding="utf-8")
    return path


def form(**roles) -> list:
    return [roles.get(role, [] if role == "responses" else "") for role in ROLES]


def test_a_detected_preset_previews_its_map_and_items():
    found = preview_file(PRESETS / "chatbot_arena.jsonl")
    assert found.format == "chatbot_arena" and found.problem is None
    assert found.mapping is not None and found.mapping.best == "winner"
    assert [type(i) for i in found.items] == [SourceItem] * 3
    assert "question_id" in found.fields and len(found.records) == 3
    values = form_values(found.mapping)
    assert values["responses"] == ["conversation_a", "conversation_b"] and values["query"] == ""


def test_an_unknown_shape_previews_the_suggested_mapping_s_items(tmp_path):
    found = preview_file(unknown_file(tmp_path))
    assert found.format is None and "--map query=instruction" in (found.problem or "")
    assert found.mapping is not None and found.mapping.query == "instruction"
    assert [i.labels[0].best for i in found.items if isinstance(i, SourceItem)] == [1, 0]
    html = preview_html(found, str(tmp_path / "mine.jsonl"))
    assert "Say &lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi</b>" not in html
    assert str(tmp_path) not in html  # the upload's server path is not shown


def test_the_form_becomes_a_field_map_or_a_clear_refusal():
    assert form_mapping(form(), "") is None
    fmap = form_mapping(form(query="instruction", responses=["response1", "response2"],
                             best="label"), "1=0,2=1")
    assert fmap == FieldMap(query="instruction", responses=("response1", "response2"),
                            best="label", label_values=LabelValues((("1", 0), ("2", 1))))
    assert form_mapping(form(category="kind"), "") == FieldMap(category="kind")  # a change
    with pytest.raises(InputError, match="label value 'x' must be VALUE=INDEX"):
        form_mapping(form(responses=["a", "b"], best="l"), "x")
    assert panel_mapping(None) is None
    assert panel_mapping([*form(query="q", responses=["a", "b"]), ""]) == FieldMap(
        query="q", responses=("a", "b"))


def test_preview_and_import_an_upload_with_the_form_s_mapping(studio, tmp_path):
    path = str(unknown_file(tmp_path))
    fmap = form_mapping(form(query="instruction", responses=["response1", "response2"],
                             best="label"), "1=0,2=1,tie=tie")
    shown = preview_upload(studio, ADMIN, path, "", fmap)
    assert shown is not None and shown.format == "mapping" and shown.problem is None
    with pytest.raises(InputError, match="cannot tell the shape"):
        import_upload(studio, ADMIN, path, "mine", "")
    with pytest.raises(InputError, match="cannot tell the shape"):  # a change of nothing
        import_upload(studio, ADMIN, path, "mine", "", mapping=FieldMap(query="instruction"))
    report = import_upload(studio, ADMIN, path, "mine", "", mapping=fmap)
    assert "imported 2 item(s) into &#x27;mine&#x27;" in report
    assert [r["ground_truth"] for r in item_records(studio.engine, "mine")] == [[1], [0]]


def test_a_preset_chosen_by_name_with_a_role_changed(studio, tmp_path):
    path = str(PRESETS / "chatbot_arena.jsonl")
    shown = preview_upload(studio, ADMIN, path, "chatbot_arena", FieldMap(category="judge"))
    assert shown is not None and shown.format == "chatbot_arena with mapping"
    assert [i.category for i in shown.items if isinstance(i, SourceItem)] == [
        "arena_user_1", "arena_user_2", "arena_user_3"]


def test_only_those_who_may_import_may_preview(studio, tmp_path):
    with pytest.raises(NotAllowedError):
        preview_upload(studio, Account("ann", "annotator"), str(unknown_file(tmp_path)), "", None)
    assert preview_upload(studio, ADMIN, None, "", None) is None


def test_the_tab_builds_with_the_mapping_panel(studio):
    with gr.Blocks() as app:
        build_datasets_tab(studio)
    ids = {getattr(block, "elem_id", None) for block in app.blocks.values()}
    assert {f"datasets-map-{role}" for role in ROLES} <= ids
    assert {"datasets-map-labels", "datasets-map-preview", "datasets-map-import",
            "datasets-map-shown"} <= ids


def test_the_served_page_previews_maps_and_imports_an_upload(tmp_path, monkeypatch):
    """Through the served app's upload route and Gradio queue, as the page does it."""
    import secrets

    from fastapi.testclient import TestClient

    from core.store.browse import dataset_names
    from tests.gradio_queue import file_data, join, outcome
    from tests.test_security_files import serve, sign_in

    served = serve(tmp_path, monkeypatch)
    session = secrets.token_hex(6)

    def run(client: TestClient, handler: str, data: list) -> list:
        assert join(client, served.blocks, handler, data, session).status_code == 200
        done = outcome(client, session)
        assert done["success"], done
        return done["output"]["data"]

    with TestClient(served.app) as client:
        sign_in(client, "root")
        text = "".join(json.dumps(r) + "\n" for r in UNKNOWN)
        path = client.post("/gradio_api/upload", files={"files": ("mine.jsonl", text)}).json()[0]
        filled = run(client, "on_upload", [file_data(path), ""])
        values = [update["value"] for update in filled[: len(ROLES)]]
        assert values == ["instruction", "", ["response1", "response2"], "", "", "label", "",
                          ""]
        assert filled[len(ROLES)] == "1=0,2=1,tie=tie"
        assert "--map query=instruction" in filled[-1] and "Say &lt;b&gt;hi" in filled[-1]
        run(client, "on_form", [*values, "1=0,2=1,tie=tie"])  # what each change sends
        shown = run(client, "on_preview", [file_data(path), "", None])
        assert "Read as: mapping" in shown[0]
        report = run(client, "on_import_mapped", [file_data(path), "mine", "", None])
        assert "imported 2 item(s) into &#x27;mine&#x27;" in report[0]
    assert "mine" in dataset_names(served.studio.engine)
    assert [r["ground_truth"] for r in item_records(served.studio.engine, "mine")] == [[1], [0]]

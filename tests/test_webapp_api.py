"""The JSON labelling API: same sessions and role checks as the pages."""

import json

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core import ScriptedBackend, Settings
from core.store.accounts import set_account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.labels import current_labels
from webapp.auth import server_app
from webapp.studio import Studio


@pytest.fixture
def app(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    upgrade(engine)
    path = tmp_path / "p.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}", "responses": [f"a{i}", f"b{i}"], "best": 0}) + "\n"
        for i in range(3)
    ))
    import_file(engine, path, "toy")
    for name, role in [("kim", "annotator"), ("vic", "viewer"), ("lee", "annotator")]:
        set_account(engine, name, role, f"{name}-password")
    studio = Studio(Settings(), engine, backend=ScriptedBackend([]))
    with gr.Blocks() as blocks:
        gr.Markdown("hello")
    return server_app(studio, blocks.queue()), studio


def signed_in(app, name):
    client = TestClient(app[0])
    client.post("/login", data={"name": name, "password": f"{name}-password"})
    return client


def test_an_annotator_walks_a_queue_and_labels_through_the_api(app):
    kim = signed_in(app, "kim")
    assert kim.get("/api/v1/me").json() == {"name": "kim", "role": "annotator"}
    first = kim.get("/api/v1/queues/unlabelled/next").json()
    assert first["pending"] == 3 and first["responses"] == ["a0", "b0"]
    made = kim.post("/api/v1/labels", json={"item_id": first["item_id"], "best": 1, "note": "b"})
    assert made.status_code == 201 and made.json()["annotator"] == "kim"
    assert kim.get("/api/v1/queues/unlabelled/next").json()["pending"] == 2
    with Session(app[1].engine) as session:
        assert [(lab.annotator, lab.best) for lab in current_labels(session, first["item_id"])] == [
            ("kim", 1)]
    assert kim.post(f"/api/v1/labels/{made.json()['id']}/undo").json() == {"restored": None}
    assert kim.get("/api/v1/queues/unlabelled/next").json()["pending"] == 3


def test_the_api_refuses_viewers_strangers_and_bad_input(app):
    vic, stranger, kim, lee = (signed_in(app, n) for n in ("vic", "nobody", "kim", "lee"))
    item = kim.get("/api/v1/queues/unlabelled/next").json()["item_id"]
    refused = vic.post("/api/v1/labels", json={"item_id": item, "best": 0})
    assert refused.status_code == 403 and "may not label items" in refused.json()["error"]
    assert stranger.post("/api/v1/labels", json={"item_id": item, "best": 0}).status_code == 401
    assert stranger.get("/api/v1/me").status_code == 401
    cases = [
        ({"item_id": item, "best": 5}, 400, "best must name one of the 2 responses"),
        ({"item_id": 99999, "best": 0}, 400, "no item with id 99999"),
        ({"item_id": item, "best": 0, "corrected_scores": [1]}, 400, "one integer per response"),
        ({"item_id": item, "best": 0, "annotator": "vic"}, 422, "Extra inputs"),
        ({"item_id": "1; DROP TABLE item", "best": 0}, 422, "integer"),
        ({"item_id": item, "best": 0, "note": "x" * 20_001}, 422, "at most 20000"),
    ]
    for body, status, message in cases:
        answer = kim.post("/api/v1/labels", json=body)
        assert answer.status_code == status and message in answer.text, (body, answer.text)
    assert kim.get("/api/v1/queues/no-such-queue/next").status_code == 400
    mine = kim.post("/api/v1/labels", json={"item_id": item, "best": 0}).json()
    not_lees = lee.post(f"/api/v1/labels/{mine['id']}/undo")
    assert not_lees.status_code == 400 and "not lee's to undo" in not_lees.json()["error"]
    with Session(app[1].engine) as session:  # only kim's one label, nothing lost
        assert [(lab.annotator, lab.best) for lab in current_labels(session, item)] == [("kim", 0)]

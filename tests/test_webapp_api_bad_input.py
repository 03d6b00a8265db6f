"""Every bad input to the JSON API is a 4xx with a message (issue 16, finding
5: an unknown judgement_id or a lone surrogate in `note` answered 500), and no
answer carries SQL, a stack or the input back; nothing is stored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.store.judgements import store_judgement
from tests.scripted_backends import scores_text
from tests.served_studio import label_count, studio_app

LEAKS = ("Traceback", "SELECT", "INSERT", "sqlalchemy", "sqlite3", "psycopg", 'File "')


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """kim's client, and a judgement of item 2 (for a label of item 1 to cite)."""
    app, studio = studio_app(tmp_path_factory.mktemp("api"))
    judge = Judge(ScriptedBackend([scores_text(9, 2)]), rescue=False)
    judged = judge.judge(JudgeInput(query="q1", responses=("a1", "b1")), SamplingParams(k=1))
    other = store_judgement(studio.engine, judged, item_id=2)
    kim = TestClient(app, raise_server_exceptions=False)
    kim.post("/login", data={"name": "kim", "password": "kim-password"})
    return kim, studio, other


def check(answer, status: int | None, message: str) -> None:
    """`answer` has `status` (None: some 4xx) and says `message`, and nothing else."""
    text = answer.content.decode("utf-8")  # always valid UTF-8, whatever came in
    code = answer.status_code
    assert (code == status if status else 400 <= code < 500), (code, text[:300])
    assert message in text and answer.json()["error"], text[:300]
    assert not any(leak in text for leak in LEAKS), text[:300]
    assert len(text) < 2_000  # no echo of a huge input


LABEL = {"item_id": 1, "best": 0}
JSON_BODIES = [  # (body, status, what the message says)
    ({**LABEL, "judgement_id": 99999}, 400, "no judgement with id 99999"),
    ({**LABEL, "note": "\ud800"}, 422, "note contains a lone UTF-16 surrogate"),
    ({**LABEL, "note": "a\udfffb"}, 422, "note contains a lone UTF-16 surrogate"),
    ({**LABEL, "note": "nul\x00"}, 400, "NUL character"),
    ({**LABEL, "corrected_principles": "\x00"}, 400, "the corrected principles contains a NUL"),
    ({**LABEL, "corrected_critique": "\ud83d"}, 422, "corrected_critique contains a lone"),
    ({**LABEL, "note": "x" * 20_001}, 422, "note: String should have at most 20000"),
    ({"best": 0}, 422, "item_id: Field required"),
    ({"item_id": 1}, 422, "best: Field required"),
    ({}, 422, "Field required"),
    ({"item_id": "1", "best": 0}, 422, "item_id: Input should be a valid integer"),
    ({"item_id": 1.5, "best": 0}, 422, "item_id: Input should be a valid integer"),
    ({"item_id": True, "best": 0}, 422, "item_id: Input should be a valid integer"),
    ({"item_id": None, "best": 0}, 422, "item_id"),
    ({"item_id": [1], "best": 0}, 422, "item_id"),
    ({"item_id": 0, "best": 0}, 422, "greater than or equal to 1"),
    ({"item_id": -1, "best": 0}, 422, "greater than or equal to 1"),
    ({"item_id": 2**63, "best": 0}, 422, "less than 9223372036854775808"),
    ({"item_id": 10**40, "best": 0}, 422, "item_id"),
    ({"item_id": 99999, "best": 0}, 400, "no item with id 99999"),
    ({**LABEL, "best": "0"}, 422, "best: Input should be a valid integer"),
    ({**LABEL, "best": 2}, 400, "best must name one of the 2 responses"),
    ({**LABEL, "best": -1}, 400, "best must name one of the 2 responses"),
    ({**LABEL, "best": 10**30}, 400, "best must name one of the 2 responses"),
    ({**LABEL, "corrected_scores": "7,5"}, 422, "corrected_scores"),
    ({**LABEL, "corrected_scores": [7.5, 5]}, 422, "corrected_scores.0"),
    ({**LABEL, "corrected_scores": [1] * 65}, 422, "at most 64"),
    ({**LABEL, "corrected_scores": [7]}, 400, "one integer per response"),
    ({**LABEL, "note": 5}, 422, "note: Input should be a valid string"),
    ({**LABEL, "judgement_id": "x"}, 422, "judgement_id"),
    ({**LABEL, "judgement_id": 0}, 422, "judgement_id"),
    ({**LABEL, "annotator": "vic"}, 422, "annotator: Extra inputs are not permitted"),
    ({**LABEL, "\ud800": 1}, 422, "the body contains a lone UTF-16 surrogate"),
    ({**LABEL, "k" * 5000: 1}, 422, "Extra inputs are not permitted"),
    ([LABEL], 422, "body"),
    (None, 422, "body"),
    ("label", 422, "body"),
]


@pytest.mark.parametrize(("body", "status", "message"), JSON_BODIES)
def test_a_bad_label_is_refused_with_a_message(api, body, status, message):
    kim, studio, _ = api
    raw = json.dumps(body)  # keeps a lone surrogate as its \\ud800 escape, as a script sends it
    answer = kim.post("/api/v1/labels", content=raw, headers={"Content-Type": "application/json"})
    check(answer, status, message)
    assert label_count(studio) == 0


def test_a_label_may_cite_only_its_own_items_judgement(api):
    kim, studio, other = api
    cited = kim.post("/api/v1/labels", json={**LABEL, "judgement_id": other})
    check(cited, 400, f"judgement {other} is of item 2, not 1")
    assert label_count(studio) == 0


@pytest.mark.parametrize(("content", "content_type", "status", "message"), [
    (b"{", "application/json", 422, "JSON decode error"),
    (b"", "application/json", 422, "Field required"),
    (b'{"item_id": 1, "best": 0, "note": "\xff\xfe"}', "application/json", 400,
     "error parsing the body"),
    (b"item_id=1&best=0", "application/x-www-form-urlencoded", 422, "valid dictionary"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", None, "error"),  # any layer's 4xx
    (b'{"item_id": 1, "best": 0, "note": "' + b"x" * 1_000_001 + b'"}', "application/json",
     413, "at most 1,000,000 bytes"),
])
def test_a_body_that_is_not_a_label_is_refused(api, content, content_type, status, message):
    kim, studio, _ = api
    check(kim.post("/api/v1/labels", content=content, headers={"Content-Type": content_type}),
          status, message)
    assert label_count(studio) == 0


def test_a_chunked_body_without_a_length_is_refused(api):
    kim, _, _ = api
    chunks = iter([json.dumps(LABEL).encode()])
    check(kim.post("/api/v1/labels", content=chunks,
                   headers={"Content-Type": "application/json"}), 413, "says its length")


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/v1/labels/0/undo", 422, "label_id: Input should be greater than or equal to 1"),
    ("/api/v1/labels/99999999999999999999/undo", 422, "label_id"),
    ("/api/v1/labels/abc/undo", 422, "label_id: Input should be a valid integer"),
    ("/api/v1/labels/99999/undo", 400, "no label with id 99999"),
])
def test_undo_of_a_bad_label_id_is_refused(api, path, status, message):
    check(api[0].post(path), status, message)


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/v1/queues/no-such-queue/next", 400, "no-such-queue"),
    ("/api/v1/queues/un%00labelled/next", 400, "the queue contains a NUL"),
    ("/api/v1/queues/" + "q" * 201 + "/next", 422, "queue: String should have at most 200"),
    ("/api/v1/queues/unlabelled/next?dataset=to%00y", 400, "the dataset contains a NUL"),
    ("/api/v1/queues/unlabelled/next?exclude=abc", 422, "exclude.0: Input should be a valid"),
    ("/api/v1/queues/unlabelled/next?exclude=9223372036854775808", 422, "exclude.0"),
    ("/api/v1/queues/unlabelled/next?" + "&".join(["exclude=1"] * 1001), 422, "exclude"),
])
def test_a_bad_queue_request_is_refused(api, path, status, message):
    check(api[0].get(path), status, message)


def test_an_unexpected_store_error_shows_no_sql_or_stack(api, monkeypatch):
    """A bug's answer is one sentence; the statement and the stack stay in the log."""
    from sqlalchemy.exc import IntegrityError

    import webapp.api

    def broken(*args, **kwargs):
        raise IntegrityError("INSERT INTO annotation (item_id) VALUES (?)", (1,),
                             Exception("FOREIGN KEY constraint failed"))

    monkeypatch.setattr(webapp.api, "add_label", broken)
    answer = api[0].post("/api/v1/labels", json=LABEL)
    assert answer.status_code == 500 and "its log has the details" in answer.json()["error"]
    assert not any(leak in answer.text for leak in (*LEAKS, "FOREIGN KEY", "annotation"))


@pytest.mark.parametrize("field", ["note", "corrected_principles", "corrected_critique"])
@pytest.mark.parametrize("text", ["\x00", "a\ud800"])
def test_the_store_holds_every_label_text_to_the_same_rule(api, field, text):
    """The Annotate tab saves through the same `add_label`: NUL bytes in a note
    were stored from there; now every front gets the importer's refusal."""
    from core.errors import InputError
    from core.store.labels import add_label

    _, studio, _ = api
    with pytest.raises(InputError, match=r"contains a (NUL|lone UTF-16 surrogate)"):
        add_label(studio.engine, 1, "kim", 0, **{field: text})
    assert label_count(studio) == 0

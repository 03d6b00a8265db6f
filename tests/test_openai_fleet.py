"""A fleet of OpenAI-compatible servers behind one judge (`core.backends.openai_fleet`):
requests alternate, a server that fails (connection refused, 5xx) is out of
rotation and its traffic goes to the others, it comes back after the cool-down
once its health check passes, and with every server down the caller gets a
clear error (the reward server a 503): never a reward. Real HTTP servers on
127.0.0.1 (`tests.fake_openai`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import judge
from core.backends import load_backend
from core.backends.openai_compat import OpenAICompatBackend
from core.config import Settings
from core.engine import Judge
from core.errors import ConfigError, ServersDownError
from core.store.db import make_engine, upgrade
from core.types import SamplingParams
from tests.fake_openai import FakeServer, Reply, fake_server
from webapp.reward_server import reward_app

PARAMS = SamplingParams(k=1, max_new_tokens=16, seed=3)
COOLDOWN_S = 1.0  # long enough that a busy CPU's loop of requests fits within it
GOOD = "Specific Criteria: correct.\nAnalysis: fine.\nScores: \\boxed{{{scores}}}"


@pytest.fixture
def pair() -> Iterator[tuple[FakeServer, FakeServer]]:
    with fake_server() as a, fake_server() as b:
        yield a, b


def fleet(*servers: FakeServer, **kw: Any) -> OpenAICompatBackend:
    kw = {"retries": 2, "backoff_s": 0.01, "timeout_s": 5.0, "cooldown_s": COOLDOWN_S} | kw
    return OpenAICompatBackend([s.url for s in servers], **kw)


def chats(*servers: FakeServer) -> list[int]:
    return [len(s.chat_bodies()) for s in servers]


def scoring(body: dict[str, Any]) -> Reply:
    return Reply(body={"choices": [{"index": i, "message": {"content": GOOD.format(scores="8, 3")},
                                    "finish_reason": "stop"} for i in range(body["n"])]})


def test_requests_alternate_between_the_servers(pair):
    a, b = pair
    backend = fleet(a, b)
    order = []
    for i in range(6):
        before = chats(a, b)
        backend.generate([f"prompt {i}"], PARAMS)
        grew = [now - then for now, then in zip(chats(a, b), before, strict=True)]
        order.append("ab"[grew.index(1)] if sorted(grew) == [0, 1] else f"? {grew}")
    # the start-up's GET /models went to a: the requests then alternate from b
    assert order == ["b", "a", "b", "a", "b", "a"]


def test_the_judgement_names_the_fleet_whichever_server_answered(pair):
    a, b = pair
    a.default = b.default = scoring
    backend = load_backend(Settings(model=f"{b.url},{a.url}", api_cooldown_s=COOLDOWN_S,
                                    api_concurrency=2))
    settings = Settings(model=b.url)
    first = judge("2+2?", ["4", "5"], k=1, backend=backend, settings=settings)
    second = judge("2+2?", ["4", "5"], k=1, backend=backend, settings=settings)
    assert chats(a, b) == [1, 1]  # each judgement answered by another server
    assert first.model == second.model
    assert first.model.source == ",".join(sorted([a.url, b.url]))
    assert first.model.name == "fake-grm" and first.model.backend == "openai"
    assert backend.concurrency == 4  # per server
    shown = Settings(model=f"{b.url}, {a.url}").model_shown
    assert shown == f"{b.url},{a.url}"


@pytest.mark.parametrize("how", ["refused", "503"])
def test_with_one_server_down_all_traffic_goes_to_the_other(pair, how):
    a, b = pair
    backend = fleet(a, b, backoff_s=5.0)  # a retry with backoff would take seconds
    if how == "refused":
        b.stop()
    else:
        b.down = True
    started = time.perf_counter()
    out = [backend.generate([f"prompt {i}"], PARAMS) for i in range(6)]
    assert all(len(o) == 1 for o in out)  # no request failed
    assert chats(a) == [6]
    if how == "503":
        assert len(b.chat_bodies()) == 1  # tried once, then out of rotation
    assert time.perf_counter() - started < 4.0  # no backoff: failed over at once


def test_a_server_comes_back_after_the_cool_down_once_its_health_check_passes(pair):
    a, b = pair
    backend = fleet(a, b)
    b.down = True
    for i in range(4):
        backend.generate([f"before {i}"], PARAMS)
    assert chats(a, b) == [4, 1]
    time.sleep(COOLDOWN_S + 0.1)
    checks = b.health_checks()
    for i in range(4):  # still down: checked once, out for another cool-down
        backend.generate([f"still down {i}"], PARAMS)
    assert b.health_checks() == checks + 1 and chats(a, b) == [8, 1]
    b.down = False
    time.sleep(COOLDOWN_S + 0.1)
    for i in range(4):
        backend.generate([f"after {i}"], PARAMS)
    assert b.health_checks() == checks + 2
    assert chats(a, b) == [10, 3]  # back in rotation: alternating again


def test_a_server_refusing_connections_comes_back_once_it_listens_again(pair):
    a, b = pair
    backend = fleet(a, b)
    port = b.port
    b.stop()
    for i in range(3):
        backend.generate([f"before {i}"], PARAMS)
    assert chats(a) == [3]
    b.start(port)
    time.sleep(COOLDOWN_S + 0.1)
    for i in range(4):
        backend.generate([f"after {i}"], PARAMS)
    assert chats(a, b) == [5, 2]


def test_with_every_server_down_the_error_names_each(pair):
    a, b = pair
    backend = fleet(a, b)
    a.stop()
    b.down = True
    with pytest.raises(ServersDownError) as err:
        backend.generate(["A"], PARAMS)
    message = str(err.value)
    assert message.startswith("all 2 judge servers are out of rotation: ")
    assert f"{a.url} (connection refused; checked again in" in message
    assert f"{b.url} (HTTP 503; checked again in" in message
    assert "GRM_STUDIO_API_COOLDOWN_S" in message
    # a later request fails at once, without sending anything, until a cool-down ends
    sent = len(b.requests)
    with pytest.raises(ServersDownError):
        backend.generate(["B"], PARAMS)
    assert len(b.requests) == sent


def test_with_every_server_down_the_reward_server_answers_503_never_a_reward(pair, tmp_path):
    a, b = pair
    a.default = b.default = scoring
    backend = fleet(a, b)
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    app = reward_app(Settings(data_dir=tmp_path, k=2), engine,
                     judge=Judge(backend, rescue=False))
    with TestClient(app) as client:
        body = {"query": "2+2?", "responses": ["4", "5"], "run": "fleet"}
        # k = 2: each response shown first once, so scored 8 once and 3 once
        assert client.post("/v1/reward", json=body).json()["rewards"] == [5.5, 5.5]
        a.stop()
        b.stop()
        answer = client.post("/v1/reward", json=body)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json()["error"].startswith("all 2 judge servers are out of rotation")
    assert "rewards" not in answer.json()
    engine.dispose()


def test_a_fleet_starts_with_a_server_down_and_fails_to_start_with_all_down(pair):
    a, b = pair
    b.stop()
    assert fleet(a, b).info.name == "fake-grm"
    a.stop()
    with pytest.raises(ServersDownError, match="all 2 judge servers are out of rotation"):
        fleet(a, b)


def test_a_single_server_is_never_taken_out_of_rotation(pair):
    a, _ = pair
    a.chat_replies = [Reply(500, "boom"), Reply(502, "boom")]
    backend = fleet(a)
    assert len(backend.generate(["A"], PARAMS)) == 1 and chats(a) == [3]
    assert len(backend.generate(["B"], PARAMS)) == 1  # still in rotation


@pytest.mark.parametrize(("model", "says"), [
    ("http://127.0.0.1:1/v1,http://127.0.0.1:1/v1", "listed twice"),
    ("http://127.0.0.1:1/v1,/models/grm", r"'/models/grm' is not an http\(s\) URL"),
])
def test_a_bad_fleet_setting_is_refused(model, says):
    with pytest.raises(ConfigError, match=says):
        load_backend(Settings(model=model))

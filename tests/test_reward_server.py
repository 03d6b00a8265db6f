"""The reward server's HTTP protocol (webapp.reward_server) with the rule judge:
/v1/reward, OpenRLHF's /get_reward, health and readiness, bad input answered
4xx without hurting the server, judge failures as clear 5xx, batching, the
concurrency limit and the timeout."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.rule_judge import FAIL, GARBLE, RuleJudgeBackend
from core.config import Settings
from core.engine import Judge
from core.reward_batcher import RewardServerConfig
from core.store.db import make_engine, upgrade
from core.store.schema import ServedReward
from webapp.reward_server import reward_app


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def settings(tmp_path, **values) -> Settings:
    return Settings(data_dir=tmp_path, k=2, **values)


def client_for(tmp_path, engine, backend=None, **config) -> TestClient:
    judge = Judge(backend or RuleJudgeBackend(), rescue=True)
    app = reward_app(settings(tmp_path), engine, RewardServerConfig(**config), judge=judge)
    return TestClient(app)


def rows(engine) -> list[ServedReward]:
    with Session(engine) as session:
        return list(session.scalars(select(ServedReward).order_by(ServedReward.id)))


def test_v1_reward_answers_scores_the_vote_and_the_judgement(tmp_path, engine):
    with client_for(tmp_path, engine) as client:
        answer = client.post("/v1/reward", json={
            "query": "Say something.", "responses": ["one two", "one two three four five"],
            "k": 3, "run": "grpo-1", "step": 7})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rewards"] == [2.0, 5.0]
    assert body["unit_rewards"] == pytest.approx([1 / 9, 4 / 9])
    assert body["scale"] == [1, 10] and body["stored"] is True
    (vote,) = body["judgements"]
    assert vote["winner"] == 1 and vote["valid_samples"] == 3 and vote["totals"] == [6, 15]
    assert [r["status"] for r in body["responses"]] == ["scored", "scored"]
    (row,) = rows(engine)
    assert (row.judgement_id, row.run, row.step, row.request_id) == (
        vote["judgement_id"], "grpo-1", 7, body["request_id"])


def test_openrlhf_get_reward_groups_by_prompt_and_answers_rewards_scores_and_logs(
        tmp_path, engine):
    def chat(q: str) -> str:
        return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"

    prompts = [chat("Name a colour."), chat("Name a colour."), chat("Count."), chat("Count.")]
    responses = ["red", "red green blue", "one two three four", "one<|im_end|>"]
    body = {"query": [p + r for p, r in zip(prompts, responses, strict=True)],
            "prompts": prompts, "labels": ["", "", "one two", "one two"]}
    with client_for(tmp_path, engine) as client:
        answer = client.post("/get_reward?run=ppo-a&step=2", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["rewards"] == [1.0, 3.0, 4.0, 1.0]
    assert data["scores"] == pytest.approx([0.0, 2 / 9, 3 / 9, 0.0])
    assert data["extra_logs"]["grm_unscored"] == [0.0] * 4
    assert data["extra_logs"]["grm_valid_samples"] == [2.0] * 4
    stored = rows(engine)
    assert [(r.run, r.step, r.endpoint, r.responses) for r in stored] == [
        ("ppo-a", 2, "openrlhf", [0, 1]), ("ppo-a", 2, "openrlhf", [0, 1])]
    from core.store.judgements import fetch_judgement

    first, second = (fetch_judgement(engine, r.judgement_id) for r in stored)
    assert first.input.query == "Name a colour." and first.input.context == ()
    assert second.input.responses == ("one two three four", "one")  # end token gone
    assert second.input.reference == "one two"  # the label as the reference


def test_openrlhf_refuses_unscored_responses_unless_a_failure_reward_is_set(tmp_path, engine):
    body = {"query": ["p" + GARBLE, "p" + "fine answer"], "prompts": ["p", "p"]}
    with client_for(tmp_path, engine) as client:
        refused = client.post("/get_reward?mode=single", json=body)
    assert refused.status_code == 502
    assert "got no reward" in refused.json()["error"] and "--failure-reward" in refused.json()["error"]
    with client_for(tmp_path, engine, failure_reward=-1.0) as client:
        given = client.post("/get_reward?mode=single", json=body)
    assert given.status_code == 200
    assert given.json()["rewards"] == [-1.0, 2.0]
    assert given.json()["extra_logs"]["grm_unscored"] == [1.0, 0.0]


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"responses": ["a"]}, 422, "query: Field required"),
    ({"query": "q"}, 422, "responses: Field required"),
    ({"query": "q", "responses": "a"}, 422, "responses: Input should be a valid list"),
    ({"query": "q", "responses": [1, 2]}, 422, "responses.0: Input should be a valid string"),
    ({"query": "q", "responses": []}, 422, "at least 1 item"),
    ({"query": "q", "responses": ["a"], "k": "4"}, 422, "k: Input should be a valid integer"),
    ({"query": "q", "responses": ["a"], "k": 0}, 422, "k: Input should be greater than"),
    ({"query": "q", "responses": ["a"], "mode": "pairs"}, 422, "mode: Input should be"),
    ({"query": "q", "responses": ["a"], "extra": 1}, 422, "extra: Extra inputs"),
    ({"query": "q", "responses": ["a", " "]}, 400, "response 2 is empty"),
    ({"query": " ", "responses": ["a"]}, 400, "the query is empty"),
    ({"query": "q", "responses": ["a\x00b"]}, 400, "responses[0] contains"),
    ({"query": "q", "responses": ["a"], "voting": "meta"}, 400, "meta reward model"),
    ({"query": "q", "responses": ["a"] * 40}, 400, "at most 32"),
])
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(tmp_path, engine, body, status, says):
    with client_for(tmp_path, engine, max_responses=32) as client:
        answer = client.post("/v1/reward", json=body)
        assert answer.status_code == status, answer.text
        assert says in answer.json()["error"]
        assert client.post("/v1/reward", json={"query": "q", "responses": ["a"]}).status_code == 200


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"prompts": ["p"]}, 422, "query: Field required"),
    ({"query": "p a"}, 422, "query: Input should be a valid list"),
    ({"query": ["p a"]}, 400, "'prompts' is missing"),
    ({"query": ["p a", "p b"], "prompts": ["p"]}, 400, "'query' has 2 entries, 'prompts' 1"),
    ({"query": ["x a"], "prompts": ["p"]}, 400, "sample 0: the query does not start with its prompt"),
    ({"query": ["p"], "prompts": ["p"]}, 400, "response 1 is empty"),
])
def test_openrlhf_bad_input_gets_a_4xx(tmp_path, engine, body, status, says):
    with client_for(tmp_path, engine) as client:
        answer = client.post("/get_reward", json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]


def test_a_huge_or_broken_body_is_refused_before_judging(tmp_path, engine):
    with client_for(tmp_path, engine, max_body_mb=0.01) as client:
        huge = client.post("/v1/reward", json={"query": "q", "responses": ["x" * 20_000]})
        assert huge.status_code == 413 and "at most 10,485" in huge.json()["error"]
        broken = client.post("/v1/reward", content=b"{not json",
                             headers={"content-type": "application/json"})
        assert broken.status_code == 422
        unlisted = client.post("/v1/reward", content=iter([b"{}"]))  # chunked: no length
        assert unlisted.status_code == 411
        assert client.get("/health").status_code == 200


def test_a_failing_judge_is_a_clear_500_never_a_reward(tmp_path, engine):
    with client_for(tmp_path, engine) as client:
        answer = client.post("/v1/reward", json={"query": "q", "responses": [FAIL]})
        assert answer.status_code == 500
        assert answer.json()["error"].startswith("the judge failed: the rule judge was told")
        assert client.post("/v1/reward", json={"query": "q", "responses": ["a"]}).status_code == 200
    assert len(rows(engine)) == 1


def test_health_and_readiness(tmp_path, engine):
    with client_for(tmp_path, engine) as client:
        assert client.get("/health").json()["status"] == "ok"
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
    missing = settings(tmp_path, model=str(tmp_path / "no-such-model"))
    with TestClient(reward_app(missing, engine)) as client:
        for _ in range(100):
            answer = client.get("/ready")
            if "failed to load" in answer.json().get("error", ""):
                break
            threading.Event().wait(0.05)
        assert answer.status_code == 503 and "not found" in answer.json()["error"]
        refused = client.post("/v1/reward", json={"query": "q", "responses": ["a"]})
        assert refused.status_code == 503 and "failed to load" in refused.json()["error"]


def test_concurrent_requests_are_judged_in_one_batch(tmp_path, engine):
    backend = RuleJudgeBackend()
    with client_for(tmp_path, engine, backend, batch_window_ms=300, batch_size=64) as client:
        def send(i: int) -> int:
            body = {"query": f"q{i}", "responses": ["a b", "c"], "run": "batch"}
            return client.post("/v1/reward", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(send, range(8))) == [200] * 8
        stats = client.get("/health").json()["batcher"]
    assert stats["requests"] == 8 and stats["batches"] < 8
    assert max(backend.batches) > 2  # more than one request's k = 2 prompts in a generate call
    assert len({r.request_id for r in rows(engine)}) == 8


def test_past_the_pending_limit_a_request_is_told_to_retry(tmp_path, engine):
    backend = RuleJudgeBackend(call_s=0.6)
    with client_for(tmp_path, engine, backend, max_pending=1, batch_window_ms=0) as client:
        def send(i: int):
            return client.post("/v1/reward", json={"query": f"q{i}", "responses": ["a"]})

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(send, range(3)))
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and 503 in codes
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "try again" in busy.json()["error"]


def test_a_request_past_its_timeout_is_a_504(tmp_path, engine):
    backend = RuleJudgeBackend(call_s=1.0)
    with client_for(tmp_path, engine, backend, timeout_s=0.2) as client:
        answer = client.post("/v1/reward", json={"query": "q", "responses": ["a"]})
    assert answer.status_code == 504 and "no rewards after 0.2 s" in answer.json()["error"]


def test_the_response_is_plain_json(tmp_path, engine):
    with client_for(tmp_path, engine) as client:
        answer = client.post("/v1/reward", json={"query": "q", "responses": ["a"], "mode": "single"})
    json.dumps(answer.json())  # no NaN, no custom types
    assert answer.json()["mode"] == "single"

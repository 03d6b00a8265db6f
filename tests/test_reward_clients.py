"""The clients of the reward server against a real one on 127.0.0.1 (uvicorn,
rule judge): TRL's reward function, verl's custom reward functions (loaded from
the file path, as verl loads them), OpenRLHF's own request, and the errors."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.reward_load import served
from bench.rule_judge import GARBLE, RuleJudgeBackend
from core import reward_clients
from core.config import Settings
from core.engine import Judge
from core.reward_batcher import RewardServerConfig
from core.reward_clients import (
    GRMReward,
    RewardClient,
    RewardServerError,
    prompt_groups,
    run_blocking,
)
from core.store.db import make_engine, upgrade
from core.store.schema import ServedReward
from webapp.reward_server import reward_app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reward-server")
    engine = make_engine(f"sqlite:///{folder / 'r.db'}")
    upgrade(engine)
    app = reward_app(Settings(data_dir=folder, k=2), engine, RewardServerConfig(),
                     judge=Judge(RuleJudgeBackend(), rescue=True))
    with served(app) as url:
        yield SimpleNamespace(url=url, engine=engine)
    engine.dispose()


def rows(engine, run: str) -> list[ServedReward]:
    with Session(engine) as session:
        return list(session.scalars(
            select(ServedReward).where(ServedReward.run == run).order_by(ServedReward.id)))


def test_prompt_groups_are_runs_of_equal_prompts():
    assert prompt_groups(["a", "a", "b", "b", "a"]) == [range(2), range(2, 4), range(4, 5)]
    assert prompt_groups([]) == []


def test_the_trl_reward_function_sends_each_group_and_tags_the_step(server):
    reward = GRMReward(server.url, run="trl-a")
    rewards = reward(prompts=["P1", "P1", "P2", "P2"],
                     completions=["one", "one two three", "a b", GARBLE],
                     trainer_state=SimpleNamespace(global_step=5), completion_ids=[[1]] * 4)
    # The second group's judgement could not be read: TRL leaves both out, never 0.
    assert rewards == [1.0, 3.0, None, None]
    stored = rows(server.engine, "trl-a")
    assert sorted(r.responses for r in stored) == [[0, 1], [0, 1]]
    assert {r.step for r in stored} == {5}


def test_the_trl_reward_function_takes_conversations_and_single_mode(server):
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    reward = GRMReward(server.url, run="trl-b", mode="single", unit=True)
    rewards = reward(prompts=[prompt, prompt],
                     completions=[[{"role": "assistant", "content": "hello there"}],
                                  [{"role": "assistant", "content": "hello"}]])
    assert rewards == pytest.approx([1 / 9, 0.0])
    from core.store.judgements import fetch_judgement

    judgement = fetch_judgement(server.engine, rows(server.engine, "trl-b")[0].judgement_id)
    assert judgement.input.query == "Hi?" and judgement.input.context[0].content == "Be brief."


def test_verl_functions_load_from_the_file_path_and_score(server):
    spec = importlib.util.spec_from_file_location("custom_module", reward_clients.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # as verl loads custom_reward_function.path
    kwargs = {"server_url": server.url, "run": "verl-a"}
    one = run_blocking(module.compute_score("gsm8k", "a b c d", "4",
                                           {"question": "2+2?", "global_step": 3}, **kwargs))
    assert one["score"] == 4.0 and one["grm_unscored"] is False
    batch = module.compute_score_batch(
        ["gsm8k"] * 3, ["x", "x y", "z z z"], ["1", "1", "2"],
        [{"question": "q1"}, {"question": "q1"}, {"question": "q2"}], **kwargs)
    assert [b["score"] for b in batch] == [1.0, 2.0, 3.0]
    stored = rows(server.engine, "verl-a")
    # the batch's two groups are sent at once: their rows land in either order
    assert sorted((r.mode, r.step or -1, r.responses) for r in stored) == [
        ("group", -1, [0]), ("group", -1, [0, 1]), ("single", 3, [0])]
    with pytest.raises(module.RewardServerError, match="failure_score"):
        run_blocking(module.compute_score("d", GARBLE, None, {"question": "q"}, **kwargs))
    failed = run_blocking(module.compute_score("d", GARBLE, None, {"question": "q"},
                                              failure_score=-1.0, **kwargs))
    assert failed == {"score": -1.0, "grm_unscored": True, "grm_request_id": failed["grm_request_id"]}
    with pytest.raises(ValueError, match="extra_info"):
        run_blocking(module.compute_score("d", "x", None, {}, **kwargs))


def test_openrlhf_posts_as_it_does_and_gets_rewards(server):
    # OpenRLHF's remote_rm_fn: requests.post(url, json={"query", "prompts", "labels"}), reads "rewards".
    data = {"query": ["Q: hi A: hello you", "Q: hi A: yo"], "prompts": ["Q: hi A:", "Q: hi A:"],
            "labels": [None, None]}
    answer = httpx.post(server.url + "/get_reward?run=ppo", json=data, timeout=60).json()
    assert answer["rewards"] == [2.0, 1.0] and len(answer["scores"]) == 2
    assert set(answer["extra_logs"]) == {"grm_unscored", "grm_valid_samples", "grm_split_vote"}
    assert [r.endpoint for r in rows(server.engine, "ppo")] == ["openrlhf"]


def test_a_refusal_raises_with_the_servers_message(server):
    client = RewardClient(server.url)
    with pytest.raises(RewardServerError, match="400: response 1 is empty") as caught:
        client.reward("q", [" "])
    assert caught.value.status == 400
    unreachable = RewardClient("http://127.0.0.1:9", retries=1, backoff_s=0.01)
    with pytest.raises(RewardServerError, match="cannot be reached"):
        unreachable.reward("q", ["a"])


def test_the_sync_clients_run_inside_a_thread_whose_event_loop_is_running():
    """verl's batch function and the load bench are called from code that may already
    run an event loop (an async trainer, Playwright in the test session)."""

    async def answer() -> int:
        return 7

    async def caller() -> int:
        return run_blocking(answer())

    assert run_blocking(answer()) == 7
    # caller runs in an event loop of its own (in a fresh thread: the test session may
    # already run one in this thread), and calls run_blocking from inside it
    with ThreadPoolExecutor(max_workers=1) as fresh:
        assert fresh.submit(asyncio.run, caller()).result() == 7


@pytest.fixture
def scripted_server():
    """A server answering POST /v1/reward with the statuses in `statuses`, in order
    (200: a reward), and counting the requests."""
    state = SimpleNamespace(statuses=[], requests=0)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests += 1
            status = state.statuses.pop(0)
            data = json.dumps({"rewards": [1.0]} if status == 200 else {"error": "busy"}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def waits_here(waits: list[float]):
    """An `asyncio.sleep` that records, without waiting, the delays asked for in this
    thread or in threads started from now on (`run_blocking` runs the coroutine in a
    worker thread where this thread's event loop is already running, as after the
    browser tests); threads already running (the module's uvicorn server) sleep as
    before."""
    here, sleep = threading.get_ident(), asyncio.sleep
    running = {t.ident for t in threading.enumerate()} - {here}

    async def wait(delay: float, *args):
        if threading.get_ident() in running:
            return await sleep(delay, *args)
        waits.append(delay)
        return None

    return wait


@pytest.mark.parametrize(("statuses", "ends_with"), [
    ([503, 503, 200], "answer"),   # 503 is retried, then the answer
    ([503, 503, 503], 503),        # retries used up: the last refusal is raised
    ([500], 500),                  # any other refusal ends at once
])
def test_the_sync_and_async_loops_follow_one_retry_policy(scripted_server, monkeypatch,
                                                          statuses, ends_with):
    waits: dict[str, list[float]] = {"sync": [], "async": []}
    monkeypatch.setattr(reward_clients.time, "sleep", waits["sync"].append)
    monkeypatch.setattr(reward_clients.asyncio, "sleep", waits_here(waits["async"]))
    client = RewardClient(scripted_server.url, retries=2, backoff_s=0.25)
    outcomes, requests = [], []
    for call in (lambda: client.reward("q", ["a"]),
                 lambda: run_blocking(client.areward("q", ["a"]))):
        scripted_server.statuses, scripted_server.requests = list(statuses), 0
        try:
            outcomes.append("answer" if call()["rewards"] == [1.0] else "other")
        except RewardServerError as err:
            outcomes.append(err.status)
        requests.append(scripted_server.requests)
    assert outcomes == [ends_with, ends_with]
    assert requests == [len(statuses)] * 2
    assert waits["sync"] == waits["async"] == [0.25, 0.5][: len(statuses) - 1]


def test_a_lost_connection_is_retried_alike_by_both_loops(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(reward_clients.time, "sleep", waits.append)
    monkeypatch.setattr(reward_clients.asyncio, "sleep", waits_here(waits))
    client = RewardClient("http://127.0.0.1:9", retries=2, backoff_s=0.1)
    with pytest.raises(RewardServerError, match="cannot be reached") as sync_error:
        client.reward("q", ["a"])
    with pytest.raises(RewardServerError, match="cannot be reached") as async_error:
        run_blocking(client.areward("q", ["a"]))
    assert waits == [0.1, 0.2, 0.1, 0.2]
    assert sync_error.value.status is None and async_error.value.status is None
    assert isinstance(sync_error.value.__cause__, httpx.TransportError)
    assert isinstance(async_error.value.__cause__, httpx.TransportError)

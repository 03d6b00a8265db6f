"""The OpenAI-compatible backend: our retry, fallback, concurrency and error
handling against a tiny local HTTP server that answers what each test
scripts (`tests.fake_openai`), and a real judgement through
llama-cpp-python's server running the embedded GGUF on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core import judge
from core.backends import load_backend
from core.backends.openai_compat import OpenAICompatBackend, public_url
from core.config import Settings
from core.errors import BackendError, ConfigError
from core.types import SamplingParams
from tests.fake_openai import FakeServer, Reply, fake_server
from tests.fake_openai import choices as _choices

KEY = "sk-grm-SECRET-7f3a9c2e51d04b8e"
GOOD = "Specific Criteria: correct.\nAnalysis: fine.\nScores: \\boxed{{{scores}}}"


# -- a scripted OpenAI-style server (tests.fake_openai) --------------------------


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with fake_server() as server:
        yield server


def _backend(fake: FakeServer, **kw: Any) -> OpenAICompatBackend:
    kw = {"retries": 3, "backoff_s": 0.01, "timeout_s": 5.0} | kw
    return OpenAICompatBackend(fake.url, **kw)


PARAMS = SamplingParams(k=1, max_new_tokens=16, seed=3)


# -- requests and their mapping back -------------------------------------------


def test_identical_prompts_go_as_one_request_with_n_and_come_back_in_place(fake):
    backend = _backend(fake)
    prompts = ["A", "B", "A", "B", "A"]
    out = backend.generate(prompts, PARAMS)
    bodies = fake.chat_bodies()
    assert sorted(b["n"] for b in bodies) == [2, 3]
    tags = {p: hashlib.sha256(p.encode()).hexdigest()[:8] for p in "AB"}
    assert [c.text.split()[0] for c in out] == [tags[p] for p in prompts]
    assert len({c.text for c in out}) == 5  # every slot got its own choice
    assert all(c.prompt_tokens == 11 and c.finish_reason == "stop" for c in out)
    assert {b["seed"] for b in bodies} == {3, 4}
    assert bodies[0]["model"] == "fake-grm" and bodies[0]["max_tokens"] == 16


def test_a_server_that_ignores_n_gets_one_request_per_missing_choice(fake):
    fake.default = lambda body: _choices(body, n=1)  # llama.cpp-style: always one choice
    backend = _backend(fake)
    out = backend.generate(["A", "A", "A"], PARAMS)
    assert [b["n"] for b in fake.chat_bodies()] == [3, 1, 1]
    seeds = [c.text.split()[1] for c in out]
    assert len(set(seeds)) == 3, "each extra choice needs its own seed"
    # Once known, later calls plan single requests from the start.
    fake.requests.clear()
    again = backend.generate(["A", "A", "A"], PARAMS)
    assert [b["n"] for b in fake.chat_bodies()] == [1, 1, 1]
    assert [c.text for c in again] == [c.text for c in out]


def test_a_server_that_refuses_n_gets_single_requests(fake):
    fake.chat_replies = [Reply(400, {"error": {"message": "n > 1 is not supported"}})]
    out = _backend(fake).generate(["A", "A"], PARAMS)
    assert [b["n"] for b in fake.chat_bodies()] == [2, 1, 1]
    assert len({c.text for c in out}) == 2


def test_requests_in_flight_never_exceed_the_concurrency_limit(fake):
    fake.default = _slow
    backend = _backend(fake, concurrency=2)
    out = backend.generate([f"prompt {i}" for i in range(6)], PARAMS)
    assert len(out) == 6
    assert fake.max_in_flight == 2


def _slow(body: dict[str, Any]) -> Reply:
    reply = _choices(body)
    reply.delay_s = 0.4
    return reply


def test_a_judgement_through_the_server_votes_over_parsed_samples(fake):
    fake.default = lambda body: Reply(
        body={"choices": [{"index": i, "message": {"content": GOOD.format(scores="9, 2")},
                           "finish_reason": "stop"} for i in range(body["n"])]}
    )
    backend = _backend(fake)
    result = judge("2+2?", ["4", "5"], k=4, backend=backend, settings=Settings(model=fake.url))
    assert len(result.samples) == 4 and result.failed_samples == 0
    assert result.model.backend == "openai" and result.model.name == "fake-grm"
    assert result.model.source == fake.url
    # The shown order decides which response got the 9.
    for sample in result.samples:
        first_shown = sample.shown_order[0]
        assert sample.scores[first_shown] == 9


# -- retries and errors --------------------------------------------------------


def test_429_then_200_is_retried_after_backoff(fake, caplog):
    fake.chat_replies = [Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})]
    with caplog.at_level(logging.WARNING, logger="core.backends.openai_compat"):
        out = _backend(fake).generate(["A"], PARAMS)
    assert len(out) == 1 and len(fake.chat_bodies()) == 2
    assert "HTTP 429; retry 1 of 3" in caplog.text


def test_5xx_are_retried_then_reported_with_the_servers_message(fake):
    fake.chat_replies = [Reply(500, {"error": {"message": "CUDA out of memory"}})] * 3 + [
        Reply(503, {"detail": "still loading"})
    ]
    with pytest.raises(BackendError) as err:
        _backend(fake, retries=3).generate(["A"], PARAMS)
    message = str(err.value)
    assert f"{fake.url}/chat/completions" in message
    assert "HTTP 503 after 4 attempts: still loading" in message
    assert len(fake.chat_bodies()) == 4


def test_a_500_then_success_recovers(fake):
    fake.chat_replies = [Reply(502, "<html>Bad Gateway</html>"), Reply(500, "")]
    assert len(_backend(fake).generate(["A"], PARAMS)) == 1
    assert len(fake.chat_bodies()) == 3


def test_a_client_error_is_not_retried_and_names_the_reason(fake):
    fake.chat_replies = [Reply(400, {"error": {"message": "maximum context length is 2048"}})]
    with pytest.raises(BackendError, match="answered HTTP 400: maximum context length is 2048"):
        _backend(fake).generate(["A"], PARAMS)
    assert len(fake.chat_bodies()) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("this is not json", "sent a reply that is not JSON: 'this is not json'"),
        ({"object": "list"}, "sent a reply without choices"),
        ({"choices": [{"index": 0, "message": {"content": None}}]}, "choice without text"),
    ],
)
def test_a_malformed_reply_is_a_clear_error(fake, body, expected):
    fake.chat_replies = [Reply(200, body)]
    with pytest.raises(BackendError, match=expected):
        _backend(fake).generate(["A"], PARAMS)


def test_an_unreachable_server_is_a_clear_error_naming_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    url = f"http://127.0.0.1:{port}/v1"
    started = time.perf_counter()
    with pytest.raises(BackendError) as err:
        OpenAICompatBackend(url, retries=2, backoff_s=0.01)
    assert str(err.value) == (
        f"cannot reach the judge server at {url}/models (connection refused) after 3 "
        "attempt(s); is it running? Check GRM_STUDIO_MODEL"
    )
    assert time.perf_counter() - started < 5


def test_a_slow_server_times_out_with_a_clear_error(fake):
    fake.chat_replies = [Reply(delay_s=1.5)]
    with pytest.raises(BackendError, match=r"did not answer within 0\.3 s"):
        _backend(fake, timeout_s=0.3).generate(["A"], PARAMS)


def test_prefill_needs_a_server_that_continues_the_assistant_message(fake):
    with pytest.raises(BackendError, match="GRM_STUDIO_PREFILL=false"):
        _backend(fake).generate(["A"], PARAMS, assistant_prefix="Specific Criteria:")
    assert fake.chat_bodies() == []
    _backend(fake, prefill=True).generate(["A"], PARAMS, assistant_prefix="Specific Criteria:")
    body = fake.chat_bodies()[0]
    assert body["messages"][-1] == {"role": "assistant", "content": "Specific Criteria:"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_a_vllm_style_server_gives_context_and_token_counts_for_the_length_check(fake):
    from core.errors import PromptTooLongError

    fake.models = [{"id": "grm-27b", "max_model_len": 100}]
    fake.tokenize = lambda body: Reply(body={"count": len(body["messages"][0]["content"]) // 4})
    backend = _backend(fake)
    assert backend.info.context_length == 100 and backend.info.name == "grm-27b"
    assert backend.count_prompt_tokens("x" * 40) == 10
    with pytest.raises(PromptTooLongError, match="the model's context is 100 tokens"):
        judge("q?", ["a", "b"], k=2, max_new_tokens=16, backend=backend,
              settings=Settings(model=fake.url))
    assert fake.chat_bodies() == []  # refused before any generation


def test_a_base_url_without_v1_gets_a_hint(fake):
    with pytest.raises(BackendError, match=r"answered HTTP 404: Not Found; OpenAI-compatible "
                       r"servers answer under /v1: try http://127\.0\.0\.1:\d+/v1"):
        OpenAICompatBackend(fake.url.removesuffix("/v1"), retries=0)


def test_a_prompt_error_with_n_does_not_switch_to_single_requests(fake):
    too_long = Reply(400, {"error": {"message": "prompt is too long"}})
    fake.chat_replies = [too_long, too_long]
    backend = _backend(fake)
    with pytest.raises(BackendError, match="prompt is too long"):
        backend.generate(["A", "A"], PARAMS)
    backend.generate(["A", "A"], PARAMS)
    assert [b["n"] for b in fake.chat_bodies()] == [2, 1, 2]


def test_no_rescue_and_no_token_count_without_a_tokenizer_endpoint(fake):
    backend = _backend(fake)
    assert backend.supports_score_rescue is False
    assert backend.count_prompt_tokens("hello") is None
    assert backend.rescue_scores([]) == []


# -- settings, selection and the key -------------------------------------------


def test_a_url_model_setting_loads_the_server_backend(fake):
    backend = load_backend(Settings(model=fake.url, api_model="named-grm", api_concurrency=3))
    assert isinstance(backend, OpenAICompatBackend)
    assert backend.info.name == "named-grm" and backend.concurrency == 3


@pytest.mark.parametrize(
    "url",
    ["http://user:pw@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1?api_key=abc", "ftp://host/v1"],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(url):
    with pytest.raises(ConfigError) as err:
        OpenAICompatBackend(url)
    assert "pw" not in str(err.value) and "abc" not in str(err.value)


def test_public_url_drops_credentials_and_query():
    assert public_url("https://u:p@example.org:8443/v1/?key=1") == "https://example.org:8443/v1"


def test_the_key_is_sent_but_never_logged_shown_or_stored(fake, caplog, tmp_path, monkeypatch):
    from core.store import open_store
    from core.store.judgements import store_judgement

    monkeypatch.setenv("GRM_STUDIO_API_KEY", KEY)
    settings = Settings(model=fake.url, data_dir=tmp_path, demo_file=None, api_retries=1,
                        api_backoff_s=0.0)
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):  # httpx, httpcore and ours
        backend = load_backend(settings)
        fake.chat_replies = [Reply(500, {"error": {"message": "boom"}})] * 2
        with pytest.raises(BackendError) as err:
            backend.generate(["A"], PARAMS)
        seen += [str(err.value), repr(err.value), "".join(traceback.format_exception(err.value))]
        fake.default = lambda body: Reply(
            body={"choices": [{"index": i, "message": {"content": GOOD.format(scores="7, 3")},
                               "finish_reason": "stop"} for i in range(body["n"])]}
        )
        result = judge("q?", ["a", "b"], k=2, backend=backend, settings=settings)
        judgement_id = store_judgement(open_store(settings), result)
    assert all(h.get("Authorization") == f"Bearer {KEY}" for _, _, h in fake.requests)
    seen += [caplog.text, repr(settings), str(settings), settings.model_dump_json(),
             repr(backend), result.model_dump_json(), str(vars(backend))]
    with open_store(settings).connect() as connection:
        for table in ("judge_model", "judgement", "sample"):
            seen.append(repr(connection.exec_driver_sql(f"SELECT * FROM {table}").fetchall()))
    assert judgement_id and len(seen) > 10
    for text in seen:
        assert KEY not in text
    assert "sk-grm" not in caplog.text


# -- a real server: llama-cpp-python serving the embedded GGUF ----------------

LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    if not LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed (scripts/setup.sh test installs it)")
    from core.backends.embedded import embedded_gguf_path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        # One thread: on a shared, busy CPU llama.cpp's threads wait on each other.
        "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ | {"NO_COLOR": "1"}
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    try:
        while True:
            if process.poll() is not None:
                pytest.skip(f"llama_cpp.server exited: {process.stderr.read().decode()[-500:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer within 90 s")
            time.sleep(0.3)
        _skip_if_chat_crashes(process, url)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _skip_if_chat_crashes(process: subprocess.Popen[bytes], url: str) -> None:
    """Skip, with the reason, where the llama.cpp build itself cannot serve a chat
    completion: llama-cpp-python 0.3.36 built on one Xeon with AVX-512 (bf16, VNNI)
    died with SIGSEGV on its first chat request (its plain completions worked), the
    same in-process with `Llama.create_chat_completion`; not the studio's code."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{url}/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    time.sleep(0.5)
    if process.poll() is not None:
        pytest.skip(f"llama_cpp.server crashed on a chat completion (exit {process.returncode}): "
                    "the llama-cpp-python build does not work on this CPU")


@pytest.mark.model
def test_a_pair_is_judged_end_to_end_by_a_real_llama_cpp_server(llama_server):
    settings = Settings(model=llama_server, max_new_tokens=16, temperature=0.5, api_concurrency=2)
    backend = load_backend(settings)
    assert backend.info.backend == "openai" and backend.info.source == llama_server
    result = judge(
        "What is the capital of France?",
        ["The capital of France is Paris.", "The capital of France is Berlin."],
        k=4, backend=backend, settings=settings,
    )
    assert len(result.samples) == 4
    assert all(s.raw_text.strip() for s in result.samples)
    assert all(s.finish_reason in ("stop", "length") for s in result.samples)
    assert {s.shown_order for s in result.samples} == {(0, 1), (1, 0)}
    # Two distinct prompts; each pair of samples of one prompt differs (own seeds).
    by_order: dict[tuple[int, ...], set[str]] = {}
    for s in result.samples:
        by_order.setdefault(s.shown_order, set()).add(s.raw_text)
    assert all(len(texts) == 2 for texts in by_order.values())
    assert result.vote.valid_samples + result.vote.invalid_samples == 4
    count = backend.count_prompt_tokens("What is the capital of France?")
    assert count is None or 3 <= count <= 40


@pytest.mark.model
def test_a_real_server_error_is_reported_with_its_message(llama_server):
    backend = OpenAICompatBackend(llama_server, retries=0)
    too_long = "word " * 3000  # beyond the server's 2048-token context
    with pytest.raises(BackendError) as err:
        backend.generate([too_long], SamplingParams(max_new_tokens=8))
    assert f"the judge server at {llama_server}/chat/completions answered HTTP" in str(err.value)
    assert "context" in str(err.value).lower() or "token" in str(err.value).lower()


@pytest.mark.parametrize(
    "env",
    [
        {"GRM_STUDIO_DATABASE_URL": f"postgresql+psycopg://grm:{KEY}@127.0.0.1:1/none"},
        {"GRM_STUDIO_MODEL": "http://127.0.0.1:1/v1", "GRM_STUDIO_API_KEY": KEY,
         "GRM_STUDIO_API_RETRIES": "0"},
    ],
)
def test_the_cli_never_prints_a_secret_when_the_database_or_the_judge_fails(monkeypatch, env):
    from typer.testing import CliRunner

    from cli import app

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    command = ["stats"] if "GRM_STUDIO_DATABASE_URL" in env else ["judge", "-q", "q", "-r", "a"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert "error:" in result.output and KEY not in result.output

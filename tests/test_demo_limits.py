"""The read-only demo's bounded compute (issue 16): k and tokens capped, and a
per-visitor and a global limit on judgements running at once, past which a
visitor is told "busy, try again in a moment" at once instead of queueing."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from core import Settings
from core.errors import BusyError, InputError
from core.limits import JudgingSlots, judging_sampling, judging_slots
from core.store.db import make_engine, upgrade
from tests.gradio_queue import event, from_address, join, outcome
from tests.scripted_backends import GOOD, GatedBackend
from webapp.app import build_app
from webapp.auth import server_app
from webapp.judge_tab import JudgeRequest, run_judgement
from webapp.studio import Studio


def hold_until(slots: JudgingSlots, visitor: str, release: threading.Event,
               held: threading.Barrier | None = None) -> str:
    """Take a slot for `visitor` and keep it until `release`; "ran" or "busy"."""
    try:
        with slots.hold(visitor):
            if held is not None:
                held.wait(timeout=10)
            release.wait(timeout=10)
            return "ran"
    except BusyError:
        if held is not None:
            held.wait(timeout=10)
        return "busy"


def test_slots_refuse_a_visitor_past_their_limit_and_everyone_past_the_total():
    slots = JudgingSlots(per_visitor=1, total=2)
    release = threading.Event()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(hold_until, slots, "10.0.0.1", release)
        while slots.running() < 1:
            time.sleep(0.01)
        with (pytest.raises(BusyError, match="your previous judgement is still running"),
              slots.hold("10.0.0.1")):
            pass
        second = pool.submit(hold_until, slots, "10.0.0.2", release)
        while slots.running() < 2:
            time.sleep(0.01)
        with (pytest.raises(BusyError, match="busy: the demo is judging for other visitors"),
              slots.hold("10.0.0.3")):
            pass
        release.set()
        assert first.result() == second.result() == "ran"
    assert slots.running() == 0
    with slots.hold("10.0.0.3"):  # free again once they finished
        assert slots.running() == 1


def test_racing_visitors_get_exactly_the_total():
    slots = JudgingSlots(per_visitor=1, total=3)
    release = threading.Event()
    visitors = [f"10.0.0.{i % 12}" for i in range(40)]  # 12 visitors, some asking 3-4 times
    held = threading.Barrier(len(visitors) + 1)
    with ThreadPoolExecutor(len(visitors)) as pool:
        results = [pool.submit(hold_until, slots, v, release, held) for v in visitors]
        held.wait(timeout=10)  # every thread has either a slot or its refusal
        assert slots.running() == 3
        release.set()
        outcomes = [r.result() for r in results]
    assert outcomes.count("ran") == 3 and outcomes.count("busy") == 37
    assert slots.running() == 0


def test_a_failed_judgement_gives_its_slot_back():
    slots = JudgingSlots(per_visitor=1, total=1)
    with pytest.raises(ValueError, match="the model failed"), slots.hold("a"):
        raise ValueError("the model failed")
    with slots.hold("a"):
        assert slots.running() == 1


def test_limits_apply_in_the_demo_only():
    assert judging_slots(Settings()).total is None
    demo = judging_slots(Settings(read_only=True, demo_judgements_per_visitor=2,
                                  demo_judgements_at_once=5))
    assert (demo.per_visitor, demo.total) == (2, 5)


def test_the_demo_caps_k_and_tokens():
    demo = Settings(read_only=True, max_new_tokens=2048)
    with pytest.raises(InputError, match="at most k = 4"):
        judging_sampling(demo, k=16, temperature=0.5)
    params = judging_sampling(demo, k=4, temperature=0.7)
    assert (params.k, params.temperature, params.max_new_tokens) == (4, 0.7, 384)
    assert judging_sampling(Settings(read_only=True, max_new_tokens=64), k=2,
                            temperature=0.5).max_new_tokens == 64
    signed_in = judging_sampling(Settings(max_new_tokens=2048), k=16, temperature=0.5)
    assert (signed_in.k, signed_in.max_new_tokens) == (16, 2048)


def test_the_judge_tab_refuses_a_large_k_in_the_demo(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    upgrade(engine)
    backend = GatedBackend([GOOD] * 4)
    studio = Studio(Settings(read_only=True, demo_file=None), engine, backend=backend)
    request = JudgeRequest(query="2+2?", turns="", responses=("4", "5"), k=16, temperature=0.5)
    with pytest.raises(InputError, match="at most k = 4"):
        run_judgement(studio, request, None)
    assert backend.prompts == []  # refused before the model ran


def test_demo_visitors_past_the_limits_are_told_busy_at_once(tmp_path, monkeypatch):
    """Through the served demo and Gradio's queue: visitor A's judgement is running
    (the scripted model waits for the test); A's second one and visitor C's are
    refused as busy at once, B's runs (two at once in all); once they finish, C's runs."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    upgrade(engine)
    backend = GatedBackend([GOOD] * 12)
    settings = Settings(read_only=True, demo_file=None, demo_judgements_per_visitor=1,
                        demo_judgements_at_once=2)
    studio = Studio(settings, engine, backend=backend)
    blocks = build_app(studio).queue()
    slider = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "k")
    assert slider.maximum == 4
    fn_index, _ = event(blocks, "on_judge")
    assert list(blocks.fns.values())[fn_index].concurrency_limit is None
    app = from_address(server_app(studio, blocks))
    data = ["2+2?", "", "", 2, 2, 0.5, None, "", 0, "4", "5", *[""] * 7]

    def judge(client: TestClient, address: str, session: str) -> dict:
        assert join(client, blocks, "on_judge", data, session,
                    **{"x-test-client": address}).status_code == 200
        return outcome(client, session)

    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        first = pool.submit(judge, client, "10.0.0.1", "a-first")
        while studio.judging.running() < 1:
            time.sleep(0.01)
        started = time.monotonic()
        again = judge(client, "10.0.0.1", "a-again")
        assert again["success"] is False and "still running" in again["output"]["error"]
        second = pool.submit(judge, client, "10.0.0.2", "b")
        while studio.judging.running() < 2:
            time.sleep(0.01)
        third = judge(client, "10.0.0.3", "c")
        assert third["success"] is False and "try again in a moment" in third["output"]["error"]
        assert time.monotonic() - started < 5  # refused at once, not queued
        backend.permits.release(12)  # the model may answer now
        assert first.result()["success"] and second.result()["success"]
        later = judge(client, "10.0.0.3", "c-later")
        assert later["success"], json.dumps(later)
    assert studio.judging.running() == 0

"""Progress and stop through the one hook (core.progress.Watch): from the decode
loops (tiny random models, no weights to load) and the scripted backend, up
through the judge engine and a dataset run (issue 17, items 5 and 6)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.errors import JudgingStopped
from core.progress import BatchProgress, BatchTracker, GenerationProgress, Watch
from core.service import judge_and_save, judge_dataset
from core.store.accounts import Account
from core.store.importing import import_file
from core.store.schema import JudgementRow
from tests.scripted_backends import scores_text

ADMIN = Account("root", "admin")
PAIR = JudgeInput(query="q?", responses=("a", "b"))
# replies of different lengths: the samples finish at different steps
LONGER = "Specific Criteria: c\nAnalysis: a longer analysis of both\nScores: \\boxed{8, 3}"
REPLIES = [scores_text(9, 2), LONGER, scores_text(7, 2) + " and more words here", scores_text(9, 1)]


def stop_after(events: int) -> tuple[list, Watch]:
    """A watch that records events and asks to stop once it has seen `events`."""
    seen: list = []
    return seen, Watch(seen.append, lambda: len(seen) >= events)


def assert_monotonic_to_the_end(events: list[GenerationProgress]) -> None:
    """Per stage, in order: done never falls, and the last event is complete."""
    stages = [e.stage for e in events]
    assert stages == sorted(stages, key=["prefill", "decode"].index)  # prefill, then decode
    for stage in ("prefill", "decode"):
        done = [e.done for e in events if e.stage == stage]
        assert done == sorted(done) and done[-1] == events[stages.index(stage)].total
    last = events[-1]
    assert last.finished == last.samples and last.fraction == 1.0


def count_judgements(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(JudgementRow)) or 0


# --- the engine and the scripted backend -------------------------------------------


def test_a_judgement_reports_the_prefill_then_the_samples_monotonically_to_the_total():
    events: list[GenerationProgress] = []
    judgement = Judge(ScriptedBackend(REPLIES), rescue=False).judge(
        PAIR, SamplingParams(k=4, max_new_tokens=64), watch=Watch(events.append))
    assert len(judgement.samples) == 4
    assert_monotonic_to_the_end(events)
    decode = [e for e in events if e.stage == "decode"]
    assert decode[-1].total == 4 * 64 and decode[-1].samples == 4
    assert [e.finished for e in decode] == sorted(e.finished for e in decode)
    assert any(0 < e.finished < 4 for e in decode)  # short replies end first, others go on
    assert decode[-1].describe().startswith("writing 4 samples: ")
    assert events[0].describe() == f"reading the prompts (0 of {events[0].total} tokens)"


def test_the_score_rescue_is_reported_after_the_samples_and_says_so():
    events: list[GenerationProgress] = []
    backend = ScriptedBackend(["no scores here", scores_text(9, 2)], rescues=["8, 3}"])
    Judge(backend).judge(PAIR, SamplingParams(k=2), watch=Watch(events.append))
    rescue = [e for e in events if e.rescue]
    assert rescue and events[: len(events) - len(rescue)] == [e for e in events if not e.rescue]
    assert rescue[-1].samples == 1 and rescue[-1].describe().startswith(
        "rescuing the scores of 1 sample")


def test_a_stop_ends_a_judge_call_between_two_steps_and_nothing_is_saved(store):
    backend = ScriptedBackend(REPLIES, step_s=0.05)
    seen, watch = stop_after(4)  # the prefill and two decode steps
    started = time.monotonic()
    with pytest.raises(JudgingStopped):
        judge_and_save(store, Judge(backend), PAIR, SamplingParams(k=4), ADMIN, watch=watch)
    assert time.monotonic() - started < 2 and len(seen) == 4
    assert count_judgements(store) == 0
    assert backend.prompts == []  # the stopped call used up nothing: it can run again
    judge_and_save(store, Judge(backend), PAIR, SamplingParams(k=4), ADMIN)
    assert count_judgements(store) == 1


def test_a_stop_asked_for_before_the_call_generates_nothing():
    backend = ScriptedBackend(REPLIES)
    with pytest.raises(JudgingStopped):
        Judge(backend).judge(PAIR, SamplingParams(k=4), watch=Watch(should_stop=lambda: True))
    assert backend.prompts == []


# --- the decode loops ----------------------------------------------------------------

TINY = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256}
ROWS = [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 7, 8], [1, 2, 3, 4, 5, 6]]


def tiny_model(kind: str):
    """A random two-layer model of each decode path: Llama (tree decode), Mistral
    (one static cache), Gemma 2 (sliding window: padded `model.generate`)."""
    import torch
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
    )

    torch.manual_seed(0)
    if kind == "tree":
        return LlamaForCausalLM(LlamaConfig(**TINY)).eval()
    if kind == "static":
        return MistralForCausalLM(MistralConfig(sliding_window=None, **TINY)).eval()
    return Gemma2ForCausalLM(Gemma2Config(head_dim=8, sliding_window=4, **TINY)).eval()


@pytest.mark.parametrize("kind", ["tree", "static", "padded"])
def test_every_decode_loop_reports_monotonic_progress_and_stops_between_steps(kind):
    from core.backends.shared_prefix import Sampling, sample_shared
    from core.backends.tree_decode import supports_tree_decode

    model = tiny_model(kind)
    assert supports_tree_decode(model) is (kind == "tree")
    sampling = Sampling(greedy=False, seed=1)
    events: list[GenerationProgress] = []
    out = sample_shared(model, ROWS, max_new_tokens=10, stop_ids=[0], sampling=sampling,
                        watch=Watch(events.append))
    assert_monotonic_to_the_end(events)
    assert events[-1].total == 3 * 10 and events[-1].generated == sum(map(len, out))
    if kind != "padded":  # a shared prefix is read once: 4 shared + 2 + 2 tokens
        assert next(e.total for e in events if e.stage == "prefill") == 8
    unwatched = sample_shared(model, ROWS, max_new_tokens=10, stop_ids=[0], sampling=sampling)
    assert unwatched == out  # watching changes nothing

    decode_steps = 0

    def stop_at_third_step() -> bool:
        return decode_steps >= 3

    def count(event: GenerationProgress) -> None:
        nonlocal decode_steps
        decode_steps += event.stage == "decode"

    with pytest.raises(JudgingStopped):
        sample_shared(model, ROWS, max_new_tokens=200, stop_ids=[], sampling=sampling,
                      watch=Watch(count, stop_at_third_step))
    assert decode_steps == 3  # stopped at the next step, not after 200


# --- a dataset run -------------------------------------------------------------------


def import_pairs(engine, tmp_path: Path, n: int, name: str = "toy") -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}?", "responses": [f"a{i}", f"b{i}"]}) + "\n"
        for i in range(n)))
    import_file(engine, path, name)


def test_a_dataset_run_reports_items_done_of_the_total_with_pace_and_time_left(store, tmp_path):
    import_pairs(store, tmp_path, 5)
    seen: list[BatchProgress] = []
    judge = Judge(ScriptedBackend(REPLIES * 10, step_s=0.01), rescue=False)
    report = judge_dataset(store, judge, "toy", SamplingParams(k=2), batch_items=2,
                           watch=Watch(seen.append))
    assert report.judged == 5
    assert all(p.total == 5 for p in seen)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] == 0.0
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done == 5
    assert {p.in_flight for p in seen if p.generation is not None} == {2, 1}  # 2 + 2 + 1 items
    middle = next(p for p in seen if 0 < p.done < 5)
    assert middle.items_per_minute and middle.seconds_left is not None
    assert " items/min · about " in middle.describe()
    assert seen[-1].describe() == "5 of 5 items"


def test_a_stopped_dataset_run_keeps_what_it_saved_and_saves_nothing_after(store, tmp_path):
    import_pairs(store, tmp_path, 6)
    stop = threading.Event()
    judge = Judge(ScriptedBackend(REPLIES * 10, step_s=0.02), rescue=False)

    def on_progress(progress: BatchProgress) -> None:
        if progress.done == 2 and progress.in_flight:  # the second chunk is decoding
            stop.set()

    with pytest.raises(JudgingStopped):
        judge_dataset(store, judge, "toy", SamplingParams(k=2), batch_items=2,
                      watch=Watch(on_progress, stop.is_set))
    assert count_judgements(store) == 2  # the first chunk; the one in flight is dropped
    rest = judge_dataset(store, judge, "toy", SamplingParams(k=2), batch_items=2)
    assert (rest.already_done, rest.judged) == (2, 4) and count_judgements(store) == 6


def test_the_share_in_flight_is_estimated_from_the_typical_sample_length_seen_so_far():
    now = [0.0]
    tracker = BatchTracker(4, clock=lambda: now[0])

    def decode(generated: int, finished: int) -> GenerationProgress:
        done = finished * 100 + (generated - finished * 20)  # finished ones wrote 20 each
        return GenerationProgress("decode", done, 200, samples=2, finished=finished,
                                  generated=generated)

    first = [tracker.progress(0, 2, decode(g, f)) for g, f in [(10, 0), (20, 0), (40, 2)]]
    assert [p.in_flight_fraction for p in first] == [0.05, 0.1, 1.0]  # the budget: 100 each
    now[0] = 60.0
    second = [tracker.progress(2, 2, decode(g, f)) for g, f in [(10, 0), (30, 1), (38, 1)]]
    # now against 20 tokens a sample: 10 of 40, 30 of 40, then at most 95% until it ends
    assert [p.in_flight_fraction for p in second] == [0.25, 0.75, 0.95]
    assert second[0].progressed == 2.5 and second[0].fraction == 2.5 / 4
    assert second[0].items_per_minute == 2.5 and second[0].seconds_left == 36.0
    assert second[0].describe() == "2 of 4 items · 2.5 items/min · about 36 s left"
    prefill = GenerationProgress("prefill", 5, 10, samples=2)
    rescue = GenerationProgress("decode", 1, 10, samples=1, rescue=True)
    assert tracker.progress(2, 2, prefill).in_flight_fraction == 0.0
    assert tracker.progress(2, 2, rescue).in_flight_fraction == 1.0


@pytest.mark.model
def test_stop_ends_the_embedded_models_generation_soon_after_its_first_tokens(embedded_backend):
    item = JudgeInput(query="Which planet is closest to the Sun?",
                      responses=("Mercury.", "Venus, the brightest planet in the sky."))
    events: list[GenerationProgress] = []
    asked: list[float] = []

    def after_eight_tokens() -> bool:
        if not asked and any(e.stage == "decode" and e.generated >= 8 for e in events):
            asked.append(time.monotonic())
        return bool(asked)

    judge = Judge(embedded_backend)
    with pytest.raises(JudgingStopped):
        judge.judge(item, SamplingParams(k=4, max_new_tokens=512),
                    watch=Watch(events.append, after_eight_tokens))
    assert time.monotonic() - asked[0] < 3  # stopped at the next step, not 500 tokens later
    assert events[-1].stage == "decode" and events[-1].generated < 16
    prefill = [e for e in events if e.stage == "prefill"]
    assert [e.done for e in prefill] == sorted(e.done for e in prefill)
    assert prefill[-1].done == prefill[-1].total
    # the model is free again, and a whole judgement reports its progress to the end
    events.clear()
    judgement = judge.judge(item, SamplingParams(k=2, max_new_tokens=16),
                            watch=Watch(events.append))
    assert_monotonic_to_the_end([e for e in events if not e.rescue])
    assert len(judgement.samples) == 2

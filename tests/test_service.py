"""The application layer (`core.service`) and the store functions the fronts call
instead of opening sessions themselves, with a replaying backend."""

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.errors import InputError
from core.service import build_judge, judge_and_save, meta_vote
from core.store.accounts import Account, has_sign_in_account, set_account
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.judgements import fetch_judgement, judge_model_sources, store_judgement
from core.store.labels import add_label, response_count
from core.store.meta_scores import load_meta_scores, register_meta_model
from core.store.queues import NextItem, next_in_queue
from core.store.schema import JudgeModel
from core.templates import PRINCIPLES_PREFIX
from core.training.meta_vote import meta_guided
from core.types import Turn

GOOD = "Specific Criteria: facts\nAnalysis: first is right\nScores: \\boxed{9, 2}"
PAIR = JudgeInput(query="2+2?", responses=("4", "5"))
ADA = Account("ada", "annotator")


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def toy(engine, tmp_path):
    """Three two-response items in dataset 'toy'; their ids."""
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"q{i}?", "responses": [f"a{i}", f"b{i}"], "best": 0}) + "\n"
        for i in range(3)
    ))
    import_file(engine, path, "toy")
    head = next_in_queue(engine, "unlabelled", annotator=None)
    assert head.view is not None
    return list(range(head.view.item_id, head.view.item_id + 3))


# --- build_judge ---------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "template", "rescue", "prefix"), [
    (Settings(model="embedded"), None, True, PRINCIPLES_PREFIX),  # built in: both on
    (Settings(model="/some/dir"), None, False, ""),  # another model: both off
    (Settings(model="embedded", template="grm-single", rescue=False, prefill=False),
     "grm-single", False, ""),
    (Settings(model="/some/dir", rescue=True, prefill=True), None, True, PRINCIPLES_PREFIX),
])
def test_build_judge_takes_template_rescue_and_prefill_from_the_settings(
    settings, template, rescue, prefix
):
    judge = build_judge(settings, ScriptedBackend([]))
    assert (judge.template.name if judge.template else None) == template
    assert (judge.rescue, judge.prefill) == (rescue, prefix)


def test_build_judge_loads_the_configured_model_only_when_given_no_backend(monkeypatch):
    loaded: list[str] = []

    def load(settings):
        loaded.append(settings.model)
        return ScriptedBackend([GOOD])

    monkeypatch.setattr("core.backends.load_backend", load)
    build_judge(Settings(model="embedded"), ScriptedBackend([]))
    assert loaded == []
    judge = build_judge(Settings(model="embedded"))
    assert loaded == ["embedded"]
    assert judge.judge(PAIR, SamplingParams(k=1)).vote.valid_samples == 1  # the loaded one


def test_every_front_gets_the_same_judge_from_the_same_settings(engine, monkeypatch):
    """core.judge(), the web app's Studio.judge() and build_judge (the CLI's) agree."""
    from core import judge as judge_once
    from webapp.studio import Studio

    settings = Settings(model="embedded", template="grm-pointwise", rescue=False)
    built: list[tuple[object, bool, str]] = []
    original = Judge.__init__

    def spy(self, backend, **options):
        original(self, backend, **options)
        built.append((self.template.name if self.template else None, self.rescue, self.prefill))

    monkeypatch.setattr(Judge, "__init__", spy)
    build_judge(settings, ScriptedBackend([]))
    Studio(settings, engine, backend=ScriptedBackend([])).judge()
    judge_once("2+2?", ["4", "5"], k=1, settings=settings, backend=ScriptedBackend([GOOD]))
    assert len(built) == 3 and len(set(built)) == 1
    assert built[0] == ("grm-pointwise", False, PRINCIPLES_PREFIX)


# --- judge_and_save ------------------------------------------------------------------


@pytest.mark.parametrize(("account", "saved"), [
    (ADA, True), (Account("root", "admin"), True), (Account("val", "viewer"), False),
    (Account("demo", "demo"), False), (None, False),
])
def test_judge_and_save_saves_only_for_an_account_that_may_judge(engine, account, saved):
    judge = build_judge(Settings(model="embedded"), ScriptedBackend([GOOD] * 2))
    judgement_id, judgement = judge_and_save(engine, judge, PAIR, SamplingParams(k=2), account)
    assert judgement.vote.valid_samples == 2
    assert (judgement_id is not None) == saved
    if saved:
        assert fetch_judgement(engine, judgement_id).vote == judgement.vote


@pytest.mark.parametrize(("item", "named"), [
    (JudgeInput(query="2+2?\x00", responses=("4", "5")), "the query"),
    (JudgeInput(query="2+2?", responses=("4", "5\ud800")), "response 2"),
    (JudgeInput(query="2+2?", responses=("4", "5"),
                context=(Turn(role="user", content="hi\x00"),)), "earlier turn 1"),
    (JudgeInput(query="2+2?", responses=("4", "5"), reference="4\x00"), "the reference answer"),
])
def test_text_no_database_stores_is_refused_before_judging(engine, item, named):
    """The Judge tab stored NUL bytes that the importer refuses: one rule for both."""
    backend = ScriptedBackend([GOOD] * 2)
    with pytest.raises(InputError, match=named):
        judge_and_save(engine, build_judge(Settings(model="embedded"), backend), item,
                       SamplingParams(k=2), ADA)
    assert backend.prompts == []


# --- meta_vote -----------------------------------------------------------------------


class FakeMeta:
    """A meta RM that rates the samples by a fixed list (no model)."""

    def __init__(self, rewards, path=Path("/meta/fake")):
        self.rewards, self.path, self.registered = list(rewards), path, 0

    def score(self, item, samples):
        assert len(samples) == len(self.rewards)
        return list(self.rewards)

    def register(self, engine):
        self.registered += 1
        return register_meta_model(engine, name="fake", source=str(self.path), base_model="b",
                                   content_hash="h", positives=1, negatives=1)


def judged(engine, *, k=2):
    judge = build_judge(Settings(model="embedded"), ScriptedBackend([GOOD] * k))
    return judge_and_save(engine, judge, PAIR, SamplingParams(k=k, seed=1), ADA)


def test_meta_vote_scores_stores_and_votes(engine):
    judgement_id, judgement = judged(engine)
    meta = FakeMeta([0.25, 0.75])
    view = meta_vote(meta, judgement, k_meta=1, engine=engine, judgement_id=judgement_id)
    # what the guided vote is, is meta_guided's rule; here: that it is the one applied
    assert view == meta_guided(judgement, [0.25, 0.75], k_meta=1, meta_model="/meta/fake")
    assert view.chosen == (1,) and view.meta_model == "/meta/fake"
    assert load_meta_scores(engine, judgement_id) == (0.25, 0.75)
    assert meta.registered == 1


def test_meta_vote_without_a_stored_judgement_stores_nothing(engine):
    judgement_id, judgement = judged(engine)
    meta = FakeMeta([0.9, 0.1])
    view = meta_vote(meta, judgement, engine=engine, meta_model="picked")  # no judgement_id
    assert view.k_meta == 1 and view.meta_model == "picked" and view.meta_scores == (0.9, 0.1)
    assert meta_vote(meta, judgement, judgement_id=judgement_id).chosen == (0,)  # no engine
    assert load_meta_scores(engine, judgement_id) == (None, None)
    assert meta.registered == 0


def test_meta_vote_refuses_rewards_that_do_not_fit_the_stored_judgement(engine):
    judgement_id, _ = judged(engine, k=2)
    _, other = judged(engine, k=3)
    with pytest.raises(InputError, match="has 2 samples, got 3 meta scores"):
        meta_vote(FakeMeta([0.1, 0.2, 0.3]), other, engine=engine, judgement_id=judgement_id)


# --- the store functions the fronts call ---------------------------------------------


def test_next_in_queue_walks_an_annotators_queue(engine, toy):
    first, second, third = toy
    head = next_in_queue(engine, "unlabelled", annotator="alice")
    assert head.pending == 3 and head.view.item_id == first and head.view.query == "q0?"
    add_label(engine, first, "alice", 0)
    head = next_in_queue(engine, "unlabelled", annotator="alice", exclude=(second,))
    assert (head.pending, head.view.item_id) == (1, third)
    assert next_in_queue(engine, "unlabelled", annotator="bob").pending == 2  # first is labelled
    assert next_in_queue(engine, "unlabelled", annotator="alice", dataset="nope") == NextItem(None, 0)
    with pytest.raises(InputError, match="unknown queue"):
        next_in_queue(engine, "no-such-queue", annotator="alice")


def test_next_in_queue_blind_hides_the_others_labels_and_the_judge(engine, toy):
    first = toy[0]
    garbled = Judge(ScriptedBackend(["no scores at all"]), rescue=False)
    store_judgement(engine, garbled.judge(PAIR, SamplingParams(k=1)), item_id=first)
    add_label(engine, first, "bob", 1)
    seen = next_in_queue(engine, "parse-failures", annotator="alice")
    assert seen.pending == 1 and seen.view.item_id == first
    assert seen.view.judgement_id is not None and seen.view.judgement is not None
    assert [label.annotator for label in seen.view.labels] == ["bob"]
    blind = next_in_queue(engine, "parse-failures", annotator="alice", blind=True)
    assert blind.pending == 1 and blind.view.item_id == first and blind.view.labels == ()
    assert blind.view.judgement is None and blind.view.dataset_label is None
    assert next_in_queue(engine, "parse-failures", annotator="bob") == NextItem(None, 0)


def test_response_count(engine, toy):
    assert response_count(engine, toy[0]) == 2
    with pytest.raises(InputError, match="no item with id 999"):
        response_count(engine, 999)


def test_has_sign_in_account(engine, toy):
    assert not has_sign_in_account(engine)
    add_label(engine, toy[0], "alice", 0)  # an annotator without a password
    assert not has_sign_in_account(engine)
    set_account(engine, "root", "admin", "a long password")
    assert has_sign_in_account(engine)


def test_judge_model_sources_lists_every_judge_model_newest_first(engine):
    assert judge_model_sources(engine) == []
    judged(engine)
    with Session(engine) as session:
        session.add(JudgeModel(name="tuned", backend="hf", source="/models/tuned"))
        session.commit()
    (newest, first) = judge_model_sources(engine)
    assert newest[1:] == ("tuned", "/models/tuned") and newest[0] > first[0]
    assert first[2] == ScriptedBackend([]).info.source

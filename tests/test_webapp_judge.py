"""The Judge tab over the real engine and store, with a replaying backend."""

import gradio as gr
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.errors import InputError
from core.store.accounts import Account
from core.store.db import make_engine, upgrade
from webapp.app import build_app
from webapp.judge_tab import JudgeRequest, open_judgement, reopen_on_load, run_judgement
from webapp.studio import Studio

ADA = Account("ada", "annotator")
GOOD = "Specific Criteria: facts\nAnalysis: first is right\nScores: \\boxed{9, 2}"


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    return Studio(Settings(model="embedded", cache_dir=tmp_path / "cache"), engine,
                  backend=ScriptedBackend([GOOD] * 8))


def request(**overrides):
    fields = {"query": "2+2?", "turns": "User: hi\nAssistant: hello", "responses": ("4", "5"),
              "k": 2, "temperature": 0.5}
    return JudgeRequest(**{**fields, **overrides})


def test_a_judgement_is_saved_and_reopens_by_id(studio):
    judgement_id, judgement = run_judgement(studio, request(), ADA)
    assert judgement.input.context[1].content == "hello"
    reopened = open_judgement(studio, str(judgement_id))
    assert reopened.samples == judgement.samples and reopened.vote == judgement.vote
    with pytest.raises(InputError, match="not a judgement id"):
        open_judgement(studio, "abc")
    with pytest.raises(InputError, match="no judgement with id 999"):
        open_judgement(studio, "999")


def test_bad_input_raises_before_generating(studio):
    with pytest.raises(InputError, match="the query is empty"):
        run_judgement(studio, request(query="  "), ADA)
    with pytest.raises(InputError, match="line 1: start each turn"):
        run_judgement(studio, request(turns="no role"), ADA)
    assert studio.backend.prompts == []


class FakeRequest:
    """What the load handler reads from gr.Request: the page's query parameters."""

    def __init__(self, params):
        self.query_params = params


def test_page_load_shows_the_judgement_named_in_the_link(studio):
    from webapp.judge_tab import build_judge_tab

    judgement_id, _ = run_judgement(studio, request(), ADA)
    with gr.Blocks():
        outputs = build_judge_tab(studio)
    on_load, components = reopen_on_load(studio, outputs)
    assert components == [*outputs.components, *outputs.inputs.components]
    shown = on_load(FakeRequest({"judgement": str(judgement_id)}))
    assert f"#{judgement_id}" in shown[outputs.status]
    assert "Sample 1/2" in shown[outputs.cards]
    # the input comes back too, ready to judge again (its turns as the box reads them)
    inputs = outputs.inputs
    assert shown[inputs.query] == "2+2?" and shown[inputs.count] == 2
    assert shown[inputs.turns] == "User: hi\nAssistant: hello"
    assert [shown[b]["value"] for b in inputs.boxes[:3]] == ["4", "5", ""]
    assert [shown[b]["visible"] for b in inputs.boxes[:3]] == [True, True, False]
    assert shown[inputs.k] == 2 and shown[inputs.temperature] == 0.5  # its sampling too
    untouched = on_load(FakeRequest({}))
    assert set(untouched) == set(components)
    assert all(value == gr.skip() for value in untouched.values())
    missing = on_load(FakeRequest({"judgement": "4242"}))
    assert "no judgement with id 4242" in missing[outputs.status]


def test_the_read_only_demo_opens_on_a_stored_judgement_of_the_demo(tmp_path):
    from core.store.demo import DEMO_DATASET
    from core.store.importing import import_file
    from core.store.judgements import store_judgement
    from core.store.schema import Item
    from webapp.judge_tab import build_judge_tab

    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    upgrade(engine)
    pairs = tmp_path / "demo.jsonl"
    pairs.write_text('{"prompt": "capital of Australia?", "responses": ["Sydney", "Canberra"],'
                     ' "best": 1}\n')
    import_file(engine, pairs, DEMO_DATASET)
    studio = Studio(Settings(model="embedded", read_only=True), engine,
                    backend=ScriptedBackend([GOOD] * 2))
    with gr.Blocks():
        outputs = build_judge_tab(studio)
    on_load, _ = reopen_on_load(studio, outputs)
    assert all(v == gr.skip() for v in on_load(FakeRequest({})).values())  # nothing stored
    judgement = studio.judge().judge(JudgeInput(query="capital of Australia?",
                                                responses=("Sydney", "Canberra")),
                                     SamplingParams(k=2))
    with Session(engine) as session:
        item_id = session.scalars(select(Item.id)).one()
    judgement_id = store_judgement(engine, judgement, item_id)
    shown = on_load(FakeRequest({}))
    assert shown[outputs.status].startswith("**An example:**")
    assert f"#{judgement_id}" in shown[outputs.status]
    assert shown[outputs.inputs.query] == "capital of Australia?"
    assert "Sample 2/2" in shown[outputs.cards]


def test_app_builds_with_the_judge_tab_components(studio):
    app = build_app(studio)
    ids = {getattr(block, "elem_id", None) for block in app.blocks.values()}
    assert {"query", "turns", "response-1", "response-9", "judge", "vote-panel", "vote-plot",
            "score-heatmap", "sample-cards"} <= ids
    # uploads do not stay in Gradio's cache for ever (issue 16): a day, checked hourly
    from webapp.app import UPLOADS_KEPT

    assert app.delete_cache == UPLOADS_KEPT == (3600, 86400)


def test_a_hostile_judgement_link_is_refused_as_text(studio):
    from webapp.judge_tab import build_judge_tab

    with gr.Blocks():
        outputs = build_judge_tab(studio)
    on_load, _ = reopen_on_load(studio, outputs)
    shown = on_load(FakeRequest({"judgement": "<img src=x onerror=alert(1)>"}))
    assert "&lt;img" in shown[outputs.status] and "<img" not in shown[outputs.status]
    huge = on_load(FakeRequest({"judgement": str(2**70)}))
    assert "is not a judgement id" in huge[outputs.status]


def test_a_viewer_sees_the_judgement_but_nothing_is_saved(studio):
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from core.store.schema import JudgementRow

    for account in (Account("vic", "viewer"), Account("demo", "demo"), None):
        judgement_id, judgement = run_judgement(studio, request(), account)
        assert judgement_id is None and judgement.vote.valid_samples == 2
    with Session(studio.engine) as session:
        assert session.scalar(select(func.count()).select_from(JudgementRow)) == 0


def test_the_model_picker_offers_registered_judges_and_refuses_others(studio, tmp_path):
    from sqlalchemy.orm import Session

    from core.store.schema import JudgeModel

    checkpoint = tmp_path / "rft-1"
    checkpoint.mkdir()
    with Session(studio.engine) as session, session.begin():
        session.add_all([
            JudgeModel(name="rft-1", backend="transformers", source=str(checkpoint)),
            JudgeModel(name="gone", backend="transformers", source=str(tmp_path / "deleted")),
            JudgeModel(name="vllm", backend="openai", source="http://127.0.0.1:8000/v1"),
        ])
        # the built-in judges' materialisations in the cache are offered by name only
        cached = studio.settings.cache_dir / "merged" / "abc" / "grm-studio-judge"
        cached.mkdir(parents=True)
        session.add(JudgeModel(name="grm-studio-judge", backend="transformers",
                               source=str(cached)))
    choices = studio.model_choices()
    labels = [label for label, _ in choices]
    assert labels[2:] == ["vllm", "rft-1"]  # newest first; no server path on the page
    assert not any(str(tmp_path) in label or str(tmp_path) in key for label, key in choices)
    keys = [key for _, key in choices]
    assert keys[:2] == ["embedded", "studio"] and all(k.startswith("judge:") for k in keys[2:])
    # a registered judge's key is resolved on the server to its directory
    assert studio._models()[3][2] == str(checkpoint)
    with pytest.raises(InputError, match="'/etc' is not a registered judge model"):
        run_judgement(studio, request(model="/etc"), ADA)
    # the configured model by name is the shared, already loaded backend
    assert run_judgement(studio, request(model="embedded"), ADA)[0] is not None


def test_the_meta_panel_shows_both_votes_and_the_samples_kept(studio):
    from core.training.meta_vote import meta_guided
    from webapp.cards import meta_panel_html
    from webapp.judge_tab import meta_vote

    _, judgement = run_judgement(studio, request(k=2), ADA)
    shown = meta_panel_html(meta_guided(judgement, [0.2, 0.9], meta_model="<b>m</b>"))
    assert "top 1 of 2 samples" in shown and "Sample 2</td><td>0.900</td><td>✔ voted" in shown
    assert "&lt;b&gt;m&lt;/b&gt;" in shown and "Plain:" in shown and "Meta-guided:" in shown
    assert meta_panel_html(None) == ""
    assert meta_vote(studio, None, judgement, "", 0, ADA) is None
    with pytest.raises(InputError, match="not a registered meta reward model"):
        meta_vote(studio, None, judgement, "/tmp", 0, ADA)

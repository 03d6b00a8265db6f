"""Reference-answer mode: the `-reference` templates show a reference answer, the engine
picks them when the input carries one, and the judgement (stored too) says so."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.errors import InputError
from core.store.accounts import Account
from core.store.db import make_engine, upgrade
from core.store.judgements import fetch_judgement, store_judgement
from core.store.schema import JudgementRow
from core.templates import (
    POINTWISE,
    POINTWISE_HINTED,
    POINTWISE_REFERENCE,
    SINGLE,
    SINGLE_REFERENCE,
    TEMPLATES,
    get_template,
    with_reference,
)
from webapp.judge_tab import JudgeRequest, build_judge_tab, reopen_on_load, run_judgement
from webapp.studio import Studio

REFERENCE = "17 is prime: it has no divisor but 1 and itself. {Not a field}"
ITEM = JudgeInput(query="Is 17 prime?", responses=("Yes.", "No, 17 = 3 x 6."),
                  reference=REFERENCE)
PLAIN = ITEM.model_copy(update={"reference": None})
GOOD = "Specific Criteria: facts\nAnalysis: the first is right\nScores: \\boxed{9, 2}"


def test_the_reference_template_shows_the_reference_with_its_instruction():
    text = POINTWISE_REFERENCE.render(ITEM, (1, 0))
    markers = ["#### Conversation Context ####", "[User Query]\nIs 17 prime?",
               "#### Reference Answer ####",
               f"[The Begin of Reference Answer]\n{REFERENCE}\n[The End of Reference Answer]",
               "#### Responses to be Scored ####",
               "[The Begin of Response 1]\nNo, 17 = 3 x 6.", "#### Output Format Requirements ####"]
    positions = [text.index(m) for m in markers]
    assert positions == sorted(positions)
    assert "Check each response against it" in text and "not one of the responses" in text
    # everything but the reference section is the plain template's prompt
    section = text[text.index("#### Reference Answer ####"):text.index("#### Responses to")]
    assert text.replace(section, "") == POINTWISE.render(PLAIN, (1, 0))
    single = SINGLE_REFERENCE.render(ITEM.model_copy(update={"responses": ("Yes.",)}), (0,))
    assert single.index("#### Reference Answer ####") < single.index("#### Response to be Scored")


def test_reference_templates_are_named_and_hashed_apart():
    assert {"grm-pointwise-reference", "grm-single-reference"} <= set(TEMPLATES)
    assert len({t.sha256 for t in TEMPLATES.values()}) == len(TEMPLATES)
    assert get_template("grm-single-reference") is SINGLE_REFERENCE
    assert (with_reference(POINTWISE), with_reference(SINGLE)) == (POINTWISE_REFERENCE,
                                                                   SINGLE_REFERENCE)
    assert with_reference(POINTWISE_REFERENCE) is POINTWISE_REFERENCE
    with pytest.raises(InputError, match="'grm-pointwise-hinted' has no variant"):
        with_reference(POINTWISE_HINTED)


def test_a_template_shows_a_reference_exactly_when_one_is_given():
    with pytest.raises(InputError, match="'grm-pointwise' shows no reference answer; use "
                                         "'grm-pointwise-reference'"):
        POINTWISE.render(ITEM, (0, 1))  # never dropped without a word
    with pytest.raises(InputError, match="shows a reference answer; give one"):
        POINTWISE_REFERENCE.render(PLAIN, (0, 1))


@pytest.mark.parametrize(("template", "responses", "expected"), [
    (None, ("Yes.", "No."), "grm-pointwise-reference"),
    (None, ("Yes.",), "grm-single-reference"),
    ("grm-pointwise", ("Yes.", "No."), "grm-pointwise-reference"),
    ("grm-pointwise-reference", ("Yes.", "No."), "grm-pointwise-reference"),
])
def test_the_engine_picks_the_reference_variant(template, responses, expected):
    n = len(responses)
    scores = "9, 2" if n == 2 else "9"
    backend = ScriptedBackend([f"Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{scores}}}"] * 2)
    judge = Judge(backend, template=template)
    item = ITEM.model_copy(update={"responses": responses})
    judgement = judge.judge(item, SamplingParams(k=2))
    assert judgement.template == TEMPLATES[expected].ref
    assert all(REFERENCE in prompt for prompt in backend.prompts)
    plain = Judge(ScriptedBackend([GOOD] * 2)).judge(PLAIN, SamplingParams(k=2))
    assert plain.template == POINTWISE.ref and judgement.vote.valid_samples == 2


def test_inputs_the_engine_refuses():
    backend = ScriptedBackend([GOOD] * 4)
    with pytest.raises(InputError, match="the reference answer is empty"):
        Judge(backend).judge(ITEM.model_copy(update={"reference": "  "}), SamplingParams(k=2))
    with pytest.raises(InputError, match="shows a reference answer; give one"):
        Judge(backend, template="grm-pointwise-reference").judge(PLAIN, SamplingParams(k=2))
    with pytest.raises(InputError, match="'grm-pointwise-hinted' has no variant"):
        Judge(backend).judge(ITEM, SamplingParams(k=2), hint_best=0)
    assert backend.prompts == []


def test_the_stored_judgement_says_a_reference_was_shown(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
    upgrade(engine)
    judge = Judge(ScriptedBackend([GOOD] * 4))
    with_ref = store_judgement(engine, judge.judge(ITEM, SamplingParams(k=2)))
    without = store_judgement(engine, judge.judge(PLAIN, SamplingParams(k=2)))
    with Session(engine) as session:
        rows = {r.id: r for r in session.scalars(select(JudgementRow))}
    assert (rows[with_ref].template_name, rows[with_ref].input["reference"]) == (
        "grm-pointwise-reference", REFERENCE)
    assert rows[without].template_name == "grm-pointwise"
    assert "reference" not in rows[without].input  # as stored before references existed
    assert fetch_judgement(engine, with_ref).input.reference == REFERENCE
    assert fetch_judgement(engine, without).input.reference is None
    engine.dispose()


def test_the_judge_tab_sends_the_reference_and_shows_it_back(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    studio = Studio(Settings(model="embedded", cache_dir=tmp_path / "cache"), engine,
                    backend=ScriptedBackend([GOOD] * 4))
    ask = JudgeRequest(query="Is 17 prime?", turns="", responses=("Yes.", "No."), k=2,
                       temperature=0.5, reference=REFERENCE)
    judgement_id, judgement = run_judgement(studio, ask, Account("ada", "annotator"))
    assert judgement.template.name == "grm-pointwise-reference"
    _, blank = run_judgement(studio, JudgeRequest(**{**ask.__dict__, "reference": "  \n"}), None)
    assert blank.template.name == "grm-pointwise" and blank.input.reference is None
    with gr.Blocks():
        outputs = build_judge_tab(studio)
    on_load, _ = reopen_on_load(studio, outputs)
    shown = on_load(SimpleNamespace(query_params={"judgement": str(judgement_id)}))
    assert shown[outputs.inputs.reference] == REFERENCE  # ready to judge again
    assert "checked against a reference answer" in shown[outputs.status]
    engine.dispose()


def test_an_imported_reference_reaches_every_consumer_that_judges_items(tmp_path):
    """An item's reference (imported with it) is judged with the reference template by
    batch judging, which then counts the item as done; RFT's training prompt shows it;
    hinted sampling (a hint and a reference have no template) is skipped, counted."""
    import json

    from core.service import judge_dataset
    from core.store.importing import import_file
    from core.training import RFTConfig, build_rft, labelled_items

    engine = make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
    upgrade(engine)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "2+2?", "responses": ["4", "5"], "best": 0,
                                 "reference": "4"}) + "\n")
    import_file(engine, pairs, "toy")
    wrong = "Specific Criteria: c\nAnalysis: a\nScores: \\boxed{2, 9}"
    judge = Judge(ScriptedBackend([wrong] * 2), rescue=False)
    report = judge_dataset(engine, judge, "toy", SamplingParams(k=2))
    assert report.judged == 1
    with Session(engine) as session:
        (row,) = session.scalars(select(JudgementRow))
        assert row.template_name.endswith("-reference")
    again = judge_dataset(engine, Judge(ScriptedBackend([]), rescue=False), "toy",
                          SamplingParams(k=2))
    assert again.already_done == 1 and again.judged == 0  # found, not judged again
    (item,) = labelled_items(engine, "toy").items
    assert item.input.reference == "4"
    scripted = ScriptedBackend(["Specific Criteria: c\nAnalysis: no scores written"] * 3)
    build = build_rft(Judge(scripted, rescue=False), [item],
                      RFTConfig(validation_fraction=0.0), SamplingParams(k=3))
    assert all("A reference answer" in t.prompt for t in build.trajectories)
    assert build.counts["items_not_hinted_reference"] == 1

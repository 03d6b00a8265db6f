"""Evaluation with items' reference answers shown and hidden, on the same items, and
the paired difference of the two runs (`core.service.evaluate_references`,
`grm-studio eval --reference`), with a scripted judge that is right only where it
sees the reference (or the item is easy), so that every figure is known."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import app
from core import Judge, SamplingParams, ScriptedBackend
from core.errors import InputError
from core.estimates import paired_difference
from core.evaluation import render_markdown
from core.references import NO_REFERENCE
from core.service import compare_judges, evaluate_references, judge_dataset, run_evaluation
from core.store.accounts import set_account
from core.store.reference_edits import remove_reference, set_reference
from core.store.schema import JudgementRow
from core.store.verdicts import side_choices
from tests.scripted_reference import (
    RIGHT_HIDDEN,
    RIGHT_SHOWN,
    WITH_REFERENCE,
    ReadsTheReference,
    import_references,
    references_store,
    right,
)

PARAMS = SamplingParams(k=1, temperature=0.7, max_new_tokens=64)
OPTIONS = {"ks": (1, 2), "votings": ("sum",)}


@pytest.fixture
def refs(tmp_path):
    with references_store(tmp_path) as (engine, ids):
        yield engine, ids


def _judge(backend=None) -> Judge:
    return Judge(backend or ReadsTheReference(), rescue=False)


def _judgements(engine, item_id: int) -> list[tuple[str, int]]:
    with Session(engine) as session:
        return [tuple(r) for r in session.execute(
            select(JudgementRow.template_name, JudgementRow.k)
            .where(JudgementRow.item_id == item_id).order_by(JudgementRow.id))]


def test_shown_against_hidden_gives_the_paired_difference_on_the_items_with_a_reference(
        store, tmp_path):
    engine, ids = store, import_references(store, tmp_path)  # SQLite and PostgreSQL
    backend = ReadsTheReference()
    both = evaluate_references(engine, _judge(backend), "refs", PARAMS, **OPTIONS)
    shown, hidden, c = both.shown, both.hidden, both.comparison
    # each run is recorded with its choice, and how many evaluated items have a reference
    assert (shown.run.references, hidden.run.references) == ("shown", "hidden")
    assert shown.run.params["reference_items"] == hidden.run.params["reference_items"] == 12
    single = {e.run.references: next(r for r in e.overall() if r.method == "single")
              for e in (shown, hidden)}
    # 15 labelled items: the 12 with a reference, then 1 easy and 2 hard without one
    assert (single["shown"].correct, single["hidden"].correct) == (12 + 1, 4 + 1)
    assert single["shown"].accuracy.n == single["hidden"].accuracy.n == 15
    # the comparison: shown (A) against hidden (B), on the items with a reference only
    assert (c.a.id, c.b.id) == (shown.run.id, hidden.run.id)
    assert len(c.items) == WITH_REFERENCE
    assert dict(c.excluded) == {NO_REFERENCE: 3, "unlabelled": 1}
    assert (c.accuracy_a.value, c.accuracy_b.value) == (1.0, RIGHT_HIDDEN / WITH_REFERENCE)
    expected = paired_difference([True] * RIGHT_SHOWN,
                                 [True] * RIGHT_HIDDEN + [False] * (12 - RIGHT_HIDDEN))
    assert c.difference == expected
    assert c.difference.value == pytest.approx(8 / 12)
    assert c.difference.low is not None and 0 < c.difference.low <= 8 / 12 <= c.difference.high
    assert c.confusion.__dict__ == {"both_right": 4, "only_a": 8, "only_b": 0, "both_wrong": 0}
    assert "references shown" in c.a.label and "references hidden" in c.b.label
    assert c.record()["b"]["references"] == "hidden"
    # 16 items x (2 samples + greedy) shown; hidden, only the 13 with a reference again
    assert len(backend.prompts) == 16 * 3 + 13 * 3
    assert sum("Reference Answer" in p for p in backend.prompts) == 13 * 3
    templates = {t for t, _ in _judgements(engine, ids[0])}
    assert templates == {"grm-pointwise", "grm-pointwise-reference"}
    assert _judgements(engine, ids[13]) == [("grm-pointwise", 2), ("grm-pointwise", 1)]


def test_both_runs_resume_and_an_edited_reference_is_judged_again(refs):
    engine, ids = refs
    evaluate_references(engine, _judge(), "refs", PARAMS, **OPTIONS)
    idle = ReadsTheReference()
    again = evaluate_references(engine, _judge(idle), "refs", PARAMS, **OPTIONS)
    assert idle.prompts == [] and len(again.comparison.items) == WITH_REFERENCE
    set_account(engine, "kim", "annotator", "kim-password")
    set_reference(engine, ids[4], "kim", right(4) + " (checked)")  # no longer a response
    remove_reference(engine, ids[5], "kim")
    reader = ReadsTheReference()
    shown = judge_dataset(engine, _judge(reader), "refs", PARAMS.model_copy(update={"k": 2}))
    # item 4 again, with its new answer; item 5 (none now) has its judgement from the
    # run with references hidden, which is how it is judged now
    assert (shown.already_done, shown.judged) == (15, 1)
    assert len(reader.prompts) == 2 and all("(checked)" in p for p in reader.prompts)
    hidden = judge_dataset(engine, _judge(ScriptedBackend([])), "refs",
                           PARAMS.model_copy(update={"k": 2}), references="hidden")
    assert hidden.judged == 0  # hidden, an edit changes nothing


def test_a_run_with_references_hidden_is_labelled_everywhere(refs):
    engine, _ = refs
    evaluation = run_evaluation(engine, _judge(), "refs", PARAMS, references="hidden", **OPTIONS)
    report = render_markdown(evaluation)
    assert "references hidden (12 evaluated items have one)" in report
    labels = [label for label, spec in side_choices(engine) if spec.startswith("run:")]
    assert labels and all("references hidden" in label for label in labels)
    # a judge model's side is as it judged (no reference choice): nothing left out for it
    one = compare_judges(engine, f"run:{evaluation.run.id}", "judge:reads-the-reference")
    assert NO_REFERENCE not in dict(one.excluded) and one.b.references is None


def test_what_is_refused_before_anything_is_judged(refs, tmp_path):
    engine, _ = refs
    from core.store.importing import import_file

    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"prompt": "q", "responses": ["a", "b"], "best": 0}) + "\n")
    import_file(engine, path, "plain")
    backend = ReadsTheReference()
    with pytest.raises(InputError, match="no item of dataset 'plain' has a reference answer"):
        evaluate_references(engine, _judge(backend), "plain", PARAMS, **OPTIONS)
    always = Judge(backend, template="grm-pointwise-reference", rescue=False)
    with pytest.raises(InputError, match="always shows a reference answer"):
        evaluate_references(engine, always, "refs", PARAMS, **OPTIONS)
    with pytest.raises(InputError, match="always shows a reference answer"):
        run_evaluation(engine, always, "refs", PARAMS, references="hidden", **OPTIONS)
    assert backend.prompts == []
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(JudgementRow)) == 0


# --- grm-studio eval --reference -----------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_store(refs, monkeypatch):
    engine, _ = refs
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("GRM_STUDIO_PREFILL", "false")
    monkeypatch.setattr("core.backends.load_backend", lambda settings: ReadsTheReference())
    return engine


def test_eval_reference_both_prints_both_runs_and_their_paired_difference(cli_store, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "--dataset", "refs", "--k", "1,2", "--no-rescue",
                                 "--reference", "both", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "# Evaluation #1: refs" in result.output and "# Evaluation #2: refs" in result.output
    assert "references shown (12 evaluated items have one)" in result.output
    assert "## References shown (run #1) against hidden (run #2)" in result.output
    assert f"left out: {NO_REFERENCE}: 3; unlabelled: 1" in result.output
    assert "A - B (paired)    +66.7%  95% CI [" in result.output
    assert "grm-studio compare --a run:1@1 --b run:2@1" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "references-compared.json", "references-hidden", "references-shown"]
    record = json.loads((out / "references-compared.json").read_text())
    assert record["items"] == 12 and record["difference"]["value"] == pytest.approx(8 / 12)


@pytest.mark.parametrize(("args", "message"), [
    (["--reference", "maybe"], "reference answers are 'shown' or 'hidden'"),
    (["--dataset", "plain", "--reference", "both"],
     "--reference both: no item of 'plain' has a reference answer"),
    (["--reference", "hidden", "--template", "grm-pointwise-reference"],
     "always shows a reference answer"),
])
def test_eval_reference_refusals(cli_store, tmp_path, args, message):
    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"prompt": "q", "responses": ["a", "b"], "best": 0}) + "\n")
    assert runner.invoke(app, ["import", str(path), "--dataset", "plain"]).exit_code == 0
    dataset = [] if "--dataset" in args else ["--dataset", "refs"]
    result = runner.invoke(app, ["eval", *dataset, *args])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())

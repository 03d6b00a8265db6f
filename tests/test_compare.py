"""Judge against judge (`core.compare`, `core.store.verdicts`, `core.service.compare_judges`,
`grm-studio compare`) on constructed stores where every answer is known: two
scripted judges with written-down verdicts, and the toy evaluation's run read two ways."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from cli import app
from core.compare import SideSpec, parse_side
from core.errors import InputError
from core.estimates import MIN_BOOTSTRAP_ITEMS, paired_difference
from core.service import compare_judges
from core.store.importing import import_file
from core.store.verdicts import side_choices
from tests.scripted_compare import DIFFERING, EXPECTED, ITEMS, two_judges_store
from tests.scripted_eval import evaluate, toy_store


@pytest.fixture
def engine(tmp_path):
    with two_judges_store(tmp_path) as engine:
        yield engine


def test_the_confusion_table_the_figures_and_the_differing_items(engine):
    result = compare_judges(engine, "judge:judge-a", "judge:judge-b", "pairs")
    assert result.confusion.__dict__ == EXPECTED
    assert len(result.items) == 12
    assert dict(result.excluded) == {"labelled a tie": 1, "not judged by B": 1,
                                     "unlabelled": 1}
    assert (result.accuracy_a.value, result.accuracy_b.value) == (9 / 12, 7 / 12)
    assert result.accuracy_a.low is not None and result.accuracy_a.low < 0.75
    assert result.difference.value == pytest.approx(2 / 12)
    first = result.items[0].item_id
    assert [p.item_id - first for p in result.differing] == DIFFERING
    outcomes = [p.outcome for p in result.differing]
    assert outcomes == ["only A right", "only A right", "only B right", "both wrong",
                        "only A right"]
    tied = result.differing[-1]
    assert (tied.a.winner, tied.b.winner, tied.best) == (1, None, 1)
    assert result.a.label.startswith("judge judge-a") and result.b.judge == "judge-b"


def test_kappa_is_cohens_kappa_of_the_verdicts_a_tie_a_category_of_its_own(engine):
    result = compare_judges(engine, "judge:judge-a", "judge:judge-b", "pairs")
    # Computed here from the written-down scores, independently of core.agreement.
    def verdict(scores):
        return -1 if scores[0] == scores[1] else int(scores[1] > scores[0])

    a = [verdict(s) for _, s, _ in ITEMS]
    b = [verdict(s) for _, _, s in ITEMS]
    assert result.kappa.value == pytest.approx(cohen_kappa_score(a, b))
    assert result.kappa.n == 12 and result.kappa.low is not None


def test_the_paired_ci_is_a_bootstrap_over_items_that_keeps_the_pairs(engine):
    result = compare_judges(engine, "judge:judge-a", "judge:judge-b", "pairs")
    right_a = np.array([p.correct_a for p in result.items], dtype=float)
    right_b = np.array([p.correct_b for p in result.items], dtype=float)
    # An index bootstrap written out here: resample items, each keeping both verdicts.
    draws = np.random.default_rng(1).integers(0, 12, size=(20000, 12))
    diffs = right_a[draws].mean(axis=1) - right_b[draws].mean(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    diff = result.difference
    assert diff.low == pytest.approx(low, abs=0.05) and diff.high == pytest.approx(high, abs=0.05)
    assert diff.low < 0 < diff.high  # 3 against 1 discordant items: not a clear win


def test_paired_difference_small_and_degenerate_cases():
    few = paired_difference([True, True, False], [False, True, False])
    assert few.value == pytest.approx(1 / 3) and few.low is None
    assert "too few items" in (few.note or "")
    same = paired_difference([True, False] * MIN_BOOTSTRAP_ITEMS, [True, False] * 10)
    assert (same.value, same.low, same.high) == (0.0, None, None)
    assert "no item is counted for one and not the other" in (same.note or "")
    assert paired_difference([], []).note == "no items"
    with pytest.raises(ValueError, match="same items"):
        paired_difference([True], [True, False])
    better = paired_difference([True] * 30, [False] * 5 + [True] * 25)
    assert better.value == pytest.approx(5 / 30) and better.low is not None
    assert 0 < better.low < better.value < better.high  # every resample has A ahead or level


def test_a_run_read_two_ways_agrees_with_the_evaluation(tmp_path):
    with toy_store(tmp_path) as engine:
        evaluation = evaluate(engine)
        run = evaluation.run.id
        result = compare_judges(engine, f"run:{run}", f"run:{run}@1")
        overall = {r.label: r for r in evaluation.overall()}
        assert result.dataset == "toy"
        assert len(result.items) == overall["voting@4"].accuracy.n == 3
        assert sum(p.correct_a for p in result.items) == overall["voting@4"].correct
        assert sum(p.correct_b for p in result.items) == overall["single sample"].correct
        assert dict(result.excluded) == {"unlabelled": 1}
        two = compare_judges(engine, f"#{run}@2", str(run))
        assert sum(p.correct_a for p in two.items) == overall["voting@2"].correct
        specs = [spec for _, spec in side_choices(engine)]
        assert specs[:3] == [f"run:{run}", f"run:{run}@2", f"run:{run}@1"]
        assert specs[3].startswith("judge:")


@pytest.mark.parametrize(("raw", "spec"), [
    ("run:3", SideSpec("run", "3")), ("#3@1", SideSpec("run", "3", 1)),
    ("7", SideSpec("run", "7")), ("judge:base@4", SideSpec("judge", "base", 4)),
    ("studio-judge", SideSpec("judge", "studio-judge")), (" judge:2 ", SideSpec("judge", "2")),
])
def test_sides_are_named_as_the_help_says(raw, spec):
    assert parse_side(raw) == spec


@pytest.mark.parametrize(("raw", "message"), [
    ("", "names no side"), ("run:abc", "named by its id"), ("run:3@0", "K from 1"),
])
def test_a_side_that_names_nothing_says_how_to_name_one(raw, message):
    with pytest.raises(InputError, match=message):
        parse_side(raw)


@pytest.mark.parametrize(("a", "b", "dataset", "message"), [
    ("run:99", "judge:judge-a", "pairs", "no evaluation run #99"),
    ("judge:nobody", "judge:judge-a", "pairs", "there is no judge model 'nobody'.*judge:1"),
    ("judge:judge-a", "judge:judge-b", None, "name the dataset"),
    ("judge:judge-a", "judge:judge-b", "nope", "no dataset 'nope'"),
])
def test_what_is_not_there_is_an_error_that_says_what_to_do(engine, a, b, dataset, message):
    with pytest.raises(InputError, match=message):
        compare_judges(engine, a, b, dataset)


def test_a_run_of_another_dataset_is_refused(tmp_path):
    with toy_store(tmp_path) as engine:
        run = evaluate(engine).run.id
        path = tmp_path / "other.jsonl"
        path.write_text(json.dumps({"prompt": "q", "responses": ["x", "y"], "best": 0}) + "\n")
        import_file(engine, path, "other")
        with pytest.raises(InputError, match="evaluated 'toy', not 'other'"):
            compare_judges(engine, f"run:{run}", "judge:scripted", "other")
        with pytest.raises(InputError, match="@8 needs more"):
            compare_judges(engine, f"run:{run}@8", f"run:{run}")


def test_the_command_prints_the_table_and_json(engine, monkeypatch):
    monkeypatch.setenv("GRM_STUDIO_DATABASE_URL", str(engine.url))
    runner = CliRunner()
    result = runner.invoke(app, ["compare", "--a", "judge:judge-a", "--b", "judge:judge-b",
                                 "--dataset", "pairs"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "12 labelled items judged by both" in out
    assert "accuracy A        75.0%  95% CI" in out and "A - B (paired)    +16.7%" in out
    assert "A right                6         3" in out
    assert "A wrong                1         2" in out
    assert "5 item(s) where the verdicts differ:" in out and "no win" in out
    as_json = runner.invoke(app, ["compare", "--a", "judge:judge-a", "--b", "judge:judge-b",
                                  "--dataset", "pairs", "--json"])
    data = json.loads(as_json.output)
    assert data["confusion"] == EXPECTED and len(data["differing"]) == 5
    assert data["differing"][-1]["winner_b"] is None
    listed = runner.invoke(app, ["compare", "--list"])
    assert "judge:2" in listed.output and "judge judge-a" in listed.output
    missing = runner.invoke(app, ["compare", "--a", "judge:judge-a"])
    assert missing.exit_code == 2 and "name both sides" in missing.output

"""The Insights tab's "Judge against judge" and self-consistency sections: their
handlers over constructed stores (the numbers are known, see tests/scripted_compare.py),
and the tab's build with their events."""

from __future__ import annotations

import gradio as gr
import pytest

from core import Settings
from core.errors import GRMStudioError
from tests.scripted_compare import DIFFERING, two_judges_store
from tests.scripted_eval import evaluate, toy_store
from webapp.compare_view import (
    CONFUSION_COLUMNS,
    DIFFERING_COLUMNS,
    RUNS_DATASET,
    compare_view,
    dataset_choices,
    side_by_side,
    side_choices,
)
from webapp.insights_tab import build_insights_tab, consistency_view
from webapp.studio import Studio


@pytest.fixture
def studio(tmp_path):
    with two_judges_store(tmp_path) as engine:
        yield Studio(Settings(), engine)


def test_the_comparison_shows_the_figures_the_table_and_the_differing_items(studio):
    view = compare_view(studio, "judge:judge-a", "judge:judge-b", "pairs")
    assert "12 labelled items judged by both" in view.message
    assert "5 with different verdicts" in view.message
    assert view.figures["value"].tolist() == ["75.0%", "58.3%", "+16.7%",
                                              view.figures["value"][3]]
    assert list(view.confusion.columns) == CONFUSION_COLUMNS
    assert view.confusion.values.tolist() == [["A right", 6, 3], ["A wrong", 1, 2]]
    assert list(view.differing.columns) == DIFFERING_COLUMNS
    first = int(view.differing["item"][0])
    assert [i - first + DIFFERING[0] for i in view.differing["item"]] == DIFFERING
    assert view.differing["B says"].tolist()[-2:] == ["no winner", "no winner"]
    (a_bar, b_bar) = view.plot.data
    assert (a_bar.y, b_bar.y) == ((0.75,), (pytest.approx(7 / 12),))
    assert "judge judge-a" in a_bar.hovertext[0] and view.plot.layout.height is None
    assert [item for _, item in view.items] == view.differing["item"].tolist()


def test_a_differing_item_opens_both_judgements_side_by_side(studio):
    view = compare_view(studio, "judge:judge-a", "judge:judge-b", "pairs")
    item = view.items[0][1]
    text, a_html, b_html = side_by_side(studio, view.comparison, item)
    assert f'data-item="{item}"' in text and "R1 (label)" in text
    for html, side in [(a_html, "A"), (b_html, "B")]:
        assert f'data-side="{side}"' in html
        assert 'class="grm-vote"' in html and 'data-sample="1"' in html  # vote panel, cards
    assert "Winner: R1" in a_html and "Winner: R2" in b_html  # A right, B wrong on item 6
    assert side_by_side(studio, None, None) == ("", "", "")
    with pytest.raises(GRMStudioError, match="not in this comparison"):
        side_by_side(studio, view.comparison, 10_000)


def test_choices_and_errors(studio):
    sides = {spec for _, spec in side_choices(studio)}
    assert set(sides) == {"judge:1", "judge:1@1", "judge:2", "judge:2@1"}
    assert dataset_choices(studio) == [RUNS_DATASET, "pairs"]
    with pytest.raises(GRMStudioError, match="choose two sides"):
        compare_view(studio, "judge:judge-a", None, "pairs")
    with pytest.raises(GRMStudioError, match="name the dataset"):
        compare_view(studio, "judge:judge-a", "judge:judge-b", RUNS_DATASET)


def test_a_run_against_itself_at_one_sample_uses_the_runs_dataset(tmp_path):
    with toy_store(tmp_path) as engine:
        run = evaluate(engine).run.id
        studio = Studio(Settings(), engine)
        view = compare_view(studio, f"run:{run}", f"run:{run}@1", RUNS_DATASET)
        assert "On `toy`: 3 labelled items" in view.message
        assert any(spec == f"run:{run}@1" for _, spec in side_choices(studio))
        assert len(view.items) == 3  # voting@4 and the first sample differ on each
        _, a_html, b_html = side_by_side(studio, view.comparison, view.items[0][1])
        assert "reads its first" not in a_html and 'data-sample="4"' in a_html  # every sample
        assert "reads its first 1 of 4 samples" in b_html
        assert 'data-sample="1"' in b_html and 'data-sample="2"' not in b_html


def test_the_consistency_section_of_a_dataset(tmp_path):
    with toy_store(tmp_path) as engine:
        evaluate(engine)
        view = consistency_view(Studio(Settings(), engine), "toy")
        assert view.text.startswith("4 judgements of two or more valid samples")
        assert len(view.distribution.data) == 2 and len(view.accuracy.data) == 2
        assert view.distribution.layout.height is None


def test_the_consistency_section_says_what_to_do_without_sampled_judgements(studio):
    view = consistency_view(studio, "pairs")  # judged with k=1 only
    assert "needs judgements of two or more samples" in view.text
    assert view.distribution.data == () and view.accuracy.data == ()


def test_the_tab_builds_both_sections_and_the_compare_events_fill_every_output(studio):
    with gr.Blocks() as demo:
        build_insights_tab(studio)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert {"compare-a", "compare-b", "compare-dataset", "compare-run", "compare-status",
            "compare-plot", "compare-figures", "compare-confusion", "compare-differing",
            "compare-item", "compare-side-a", "compare-side-b", "insights-consistency",
            "insights-consistency-accuracy", "insights-consistency-text"} <= set(by_id)
    status = by_id["compare-status"]
    (compare,) = [f for f in demo.fns.values() if status._id in [o._id for o in f.outputs]]
    shown = compare.fn("judge:judge-a", "judge:judge-b", "pairs")
    assert {getattr(c, "elem_id", None) for c in shown} >= {"compare-status", "compare-item"}
    assert len(shown) == len(compare.outputs)
    text = by_id["insights-consistency-text"]
    consistency = [f for f in demo.fns.values() if text._id in [o._id for o in f.outputs]]
    assert consistency and "needs judgements" in consistency[0].fn("pairs")[0]

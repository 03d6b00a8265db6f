"""The Insights tab: figure builders on constructed results, the handlers over a
small real SQLite store judged with a replaying backend, and the tab's build."""

from __future__ import annotations

import json

import gradio as gr
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend, Settings
from core.agreement import cohen_kappa
from core.errors import InputError
from core.estimates import Estimate, proportion
from core.insights import (
    AgreementMatrix,
    CategoryAccuracy,
    DatasetAccuracy,
    MarginBin,
    PositionBias,
    PrincipleDiversity,
    ScoreDistribution,
    TermSpread,
)
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.judgements import save_judgement, store_judgement
from core.store.labels import add_label
from core.store.schema import Dataset, Item
from webapp import insight_charts as charts
from webapp.insights_tab import (
    ALL,
    EMPTY_STORE,
    build_insights_tab,
    dataset_choices,
    diversity_view,
    insights_view,
)
from webapp.studio import Studio

NONE = Estimate(None, None, None, 0, "no judged items")


def boxed(*scores: int, principles: str = "facts") -> str:
    listed = ", ".join(map(str, scores))
    return f"Specific Criteria: {principles}\nAnalysis: a\nScores: \\boxed{{{listed}}}"


def annotation_texts(figure) -> list[str]:
    return [a.text for a in figure.layout.annotations]


# --- figure builders -------------------------------------------------------------------


def test_accuracy_bars_have_the_estimates_heights_and_ci_error_bars():
    alpha = DatasetAccuracy("<b>alpha</b>", Estimate(0.75, 0.5, 1.0, 4), 5, (
        CategoryAccuracy("math", proportion(2, 2), 2),  # 2 of 2 right: Wilson 34% to 100%
        CategoryAccuracy(None, NONE, 1),
    ))
    beta = DatasetAccuracy("beta", Estimate(0.5, 0.2, 0.8, 10), 10, ())
    figure = charts.accuracy_figure([alpha, beta])
    overall, split = figure.data
    assert overall.x == ("&lt;b&gt;alpha&lt;/b&gt;", "beta")  # names are escaped
    assert overall.y == (0.75, 0.5)
    assert overall.error_y.array == (0.25, pytest.approx(0.3))
    assert overall.error_y.arrayminus == (0.25, pytest.approx(0.3))
    assert split.y == (1.0, None)  # undefined: no bar, not a zero
    assert split.error_y.array == (0.0, None)
    assert figure.layout.xaxis.ticktext[0].endswith("n=4")
    assert "n=0" in figure.layout.xaxis.ticktext[2]
    assert "no judged items" in split.hovertext[1]
    table = charts.accuracy_table([alpha, beta])
    assert list(table.columns) == charts.ACCURACY_COLUMNS
    assert table["n (with a label)"].tolist() == [4, 2, 0, 10]
    assert table["category"].tolist() == ["(all)", "math", charts.NO_CATEGORY, "(all)"]
    assert table.iloc[0][["accuracy", "95% CI"]].tolist() == ["75%", "50% to 100%"]
    assert table.iloc[1][["accuracy", "95% CI", "note"]].tolist() == ["100%", "34% to 100%", ""]
    assert table.iloc[2][["accuracy", "95% CI", "note"]].tolist() == ["", "", "no judged items"]


def test_accuracy_without_any_value_explains_instead_of_drawing():
    for results in ([], [DatasetAccuracy("alpha", NONE, 0, ())]):
        figure = charts.accuracy_figure(results)
        assert figure.data == ()
        assert annotation_texts(figure) == ["No judged item has a label yet."]
    assert charts.accuracy_table([]).empty


def matrix() -> AgreementMatrix:
    k_ab, k_ag = Estimate(0.4, 0.1, 0.7, 8), Estimate(0.9, 0.8, 1.0, 5)
    return AgreementMatrix(
        None, ("alice", "judge", "dataset"),
        ((None, k_ab, k_ag), (k_ab, None, None), (k_ag, None, None)),
        ((8, 8, 5), (8, 9, 1), (5, 1, 6)),
    )


def test_agreement_heatmap_is_symmetric_with_ci_and_n_on_hover():
    figure = charts.agreement_figure(matrix())
    (heatmap,) = figure.data
    z = [list(row) for row in heatmap.z]
    assert z == [[None, 0.4, 0.9], [0.4, None, None], [0.9, None, None]]
    assert all(z[i][j] == z[j][i] for i in range(3) for j in range(3))
    assert (heatmap.zmin, heatmap.zmax) == (-1, 1)
    assert "0.40 (95% CI 0.10 to 0.70, n=8)" in heatmap.hovertext[0][1]
    assert "too few shared items" in heatmap.hovertext[1][2] and "n=1" in heatmap.hovertext[1][2]
    assert heatmap.hovertext[2][2] == "dataset: labels 6 items"
    table = charts.agreement_table(matrix())
    assert table.values.tolist() == [
        ["alice", "judge", "0.40", "0.10 to 0.70", 8, ""],
        ["alice", "dataset", "0.90", "0.80 to 1.00", 5, ""],
        ["judge", "dataset", "", "", 1, "fewer than 2 shared items"]]


def test_kappa_on_too_few_items_shows_its_value_and_says_why_there_is_no_ci():
    few = cohen_kappa([0, 1], [0, 0])  # the walk's n = 2, once shown as 0.00 [0.00, 0.00]
    pair = AgreementMatrix(None, ("alice", "bob"), ((None, few), (few, None)), ((2, 2), (2, 2)))
    (heatmap,) = charts.agreement_figure(pair).data
    assert heatmap.hovertext[0][1].endswith(
        "Cohen's kappa 0.00 (too few items for a 95% CI (n = 2; needs ≥ 10))")
    assert charts.agreement_table(pair).values.tolist() == [
        ["alice", "bob", "0.00", "too few items for a 95% CI (n = 2; needs ≥ 10)", 2, ""]]


def test_agreement_with_fewer_than_two_raters_explains():
    empty = AgreementMatrix(None, (), (), (), "fewer than two raters have labels")
    figure = charts.agreement_figure(empty)
    assert figure.data == () and "fewer than two raters" in annotation_texts(figure)[0]
    assert charts.agreement_table(empty).empty


def test_score_histogram_groups_best_and_other_and_drops_empty_groups():
    dist = ScoreDistribution(None, (1, 5, 9), (0, 1, 2), (3, 1, 0), (0, 0, 0), 4)
    figure = charts.score_figure(dist)
    assert [t.name for t in figure.data] == ["labelled best", "other responses"]
    assert figure.data[0].x == (1, 5, 9) and figure.data[0].y == (0, 1, 2)
    assert figure.layout.barmode == "group"
    empty = charts.score_figure(ScoreDistribution(None, (), (), (), (), 0, "no valid samples"))
    assert empty.data == () and annotation_texts(empty) == ["No scores to show: no valid samples."]


def test_margin_bars_with_error_bars_and_n_labels():
    bins = [MarginBin(0, 1, "tie (0)", Estimate(0.0, 0.0, 0.0, 1)),
            MarginBin(1, 4, "1-3", NONE),
            MarginBin(4, None, "4+", Estimate(0.8, 0.6, 0.9, 10))]
    (bars,) = charts.margin_figure(bins).data
    assert bars.x == ("tie (0)", "1-3", "4+") and bars.y == (0.0, None, 0.8)
    assert bars.error_y.array == (0.0, None, pytest.approx(0.1))
    assert bars.error_y.arrayminus == (0.0, None, pytest.approx(0.2))
    ticks = charts.margin_figure(bins).layout.xaxis.ticktext
    assert ticks == ("tie (0)<br>n=1", "1-3<br>n=0", "4+<br>n=10")
    assert charts.margin_figure([MarginBin(0, 1, "tie (0)", NONE)]).data == ()


def bias(first: int, decisive: int, low: float, high: float) -> PositionBias:
    return PositionBias(None, decisive + 2, decisive, first,
                        Estimate(first / decisive, low, high, decisive), 0.5,
                        (first, decisive - first), Estimate(0.1, 0.0, 0.3, decisive + 2))


def test_position_bias_chart_and_sentence():
    towards = bias(18, 20, 0.7, 0.97)
    observed, expected = charts.position_bias_figure(towards).data
    assert (observed.y, expected.y) == ((0.9,), (0.5,))
    assert observed.error_y.array == (pytest.approx(0.07),)
    assert observed.error_y.arrayminus == (pytest.approx(0.2),)
    assert not expected.error_y.array  # no CI on the expected rate
    sentence = charts.position_bias_sentence(towards)
    assert "won 18 of 20 decisive samples (90%, 95% CI 70% to 97%)" in sentence
    assert "50% expected" in sentence and "towards the first position" in sentence
    assert "position 1: 18, position 2: 2" in sentence and "2 of 22 valid samples had no strict winner" in sentence
    assert "against the first" in charts.position_bias_sentence(bias(2, 20, 0.03, 0.3))
    assert "no clear position bias" in charts.position_bias_sentence(bias(9, 20, 0.3, 0.65))
    nothing = PositionBias(None, 0, 0, 0, Estimate(None, None, None, 0, "no strict winner"),
                           None, (), NONE, "no valid samples")
    assert charts.position_bias_figure(nothing).data == ()
    assert charts.position_bias_sentence(nothing) == (
        "Position bias cannot be measured yet: no strict winner.")


def test_diversity_heatmap_and_term_table():
    diversity = PrincipleDiversity(
        (0, 2), (1,), ((1.0, 0.25), (0.25, 1.0)), 0.25,
        (TermSpread("accuracy", 2),), (TermSpread("style", 1),))
    (heatmap,) = charts.diversity_figure(diversity).data
    assert heatmap.x == ("sample 1", "sample 3") and list(map(list, heatmap.z)) == [[1.0, 0.25], [0.25, 1.0]]
    assert "mean 0.25" in charts.diversity_figure(diversity).layout.title.text
    assert charts.term_table(diversity).values.tolist() == [
        ["shared", "accuracy", 2], ["distinct", "style", 1]]
    none = PrincipleDiversity((), (0, 1), (), None, (), (), "no sample has principles")
    assert charts.diversity_figure(none).data == ()
    assert charts.term_table(none).empty


def test_no_figure_sets_a_fixed_height():
    figures = [charts.accuracy_figure([DatasetAccuracy("a", proportion(2, 2), 2, ())]),
               charts.agreement_figure(matrix()), charts.empty_figure("t", "m"),
               charts.position_bias_figure(bias(18, 20, 0.7, 0.97))]
    assert all(f.layout.height is None for f in figures)


# --- handlers over a real store --------------------------------------------------------


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'insights.db'}")
    upgrade(engine)
    yield Studio(Settings(), engine)
    engine.dispose()


def import_records(studio: Studio, tmp_path, name: str, records: list[dict]) -> list[int]:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    import_file(studio.engine, path, name)
    with Session(studio.engine) as session:
        query = select(Item.id).join(Dataset).where(Dataset.name == name).order_by(Item.id)
        return list(session.scalars(query))


@pytest.fixture
def filled(studio, tmp_path):
    """alpha: 3 math items (best 0) + 1 code (best 1), judged and labelled by alice;
    beta: never judged; plus one playground judgement with 3 samples' principles."""
    records = [{"prompt": f"q{i}?", "responses": [f"a{i}", f"b{i}"], "best": 0,
                "category": "math"} for i in range(3)]
    records.append({"prompt": "q3?", "responses": ["a3", "b3"], "best": 1, "category": "code"})
    alpha = import_records(studio, tmp_path, "alpha", records)
    import_records(studio, tmp_path, "beta", [{"prompt": "z?", "responses": ["x", "y"]}])
    judge = Judge(ScriptedBackend([boxed(9, 2), boxed(8, 3), boxed(7, 2), boxed(6, 5),
                                   boxed(2, 9), boxed(5, 5), boxed(9, 1), boxed(8, 1)]),
                  rescue=False, shuffle=False)
    with Session(studio.engine) as session, session.begin():
        for item_id in alpha:
            item = session.get(Item, item_id)
            judged = judge.judge(JudgeInput(query=item.query, responses=tuple(item.responses)),
                                 SamplingParams(k=2))
            save_judgement(session, judged, item_id=item_id)
    for item_id, best in zip(alpha, [0, 0, 1, 0], strict=True):
        add_label(studio.engine, item_id, "alice", best)
    playground = Judge(ScriptedBackend([
        boxed(9, 2, principles="factual accuracy and clarity"),
        boxed(8, 3, principles="factual accuracy and brevity"),
        boxed(7, 4, principles="tone politeness"),
    ]), rescue=False, shuffle=False)
    judgement = playground.judge(JudgeInput(query="2+2?", responses=("4", "5")),
                                 SamplingParams(k=3))
    return {"playground": store_judgement(studio.engine, judgement)}


def test_an_empty_store_explains_instead_of_failing(studio):
    assert dataset_choices(studio) == [ALL]
    view = insights_view(studio, ALL)
    assert view.message == EMPTY_STORE
    assert view.accuracy_plot.data == () and view.accuracy_table.empty
    assert view.bias_text == ""


def test_bad_input_is_an_error_that_names_it(studio):
    with pytest.raises(InputError, match="no dataset named 'nope'"):
        insights_view(studio, "nope")
    for raw, expected in [(None, "enter a judgement id"), ("abc", "not a judgement id"),
                          (1.5, "whole numbers"), (0, "whole numbers"),
                          (999, "no judgement with id 999")]:
        with pytest.raises(InputError, match=expected):
            diversity_view(studio, raw)


def test_insights_of_a_judged_dataset(studio, filled):
    assert dataset_choices(studio) == [ALL, "alpha", "beta"]
    view = insights_view(studio, "alpha")
    assert "dataset `alpha`: 4 judged items, 8 valid samples" in view.message
    overall, split = view.accuracy_plot.data
    # against the items' labels: alice's (0, 0, 1, 0) override the dataset's (0, 0, 0, 1), and
    # the judge picks hers on every item (against the dataset's it would be right on two)
    assert overall.x == ("alpha",) and overall.y == (1.0,)
    assert split.x == ("alpha · code", "alpha · math") and split.y == (1.0, 1.0)
    assert view.accuracy_table["n (with a label)"].tolist() == [4, 1, 3]
    # all right on 4, 1 and 3 items: Wilson intervals, never "100% to 100%"
    assert view.accuracy_table["95% CI"].tolist() == ["51% to 100%", "21% to 100%",
                                                      "44% to 100%"]
    (heatmap,) = view.agreement_plot.data
    assert heatmap.x == ("alice", "judge", "dataset")
    assert view.agreement_table["n (shared items)"].tolist() == [4, 4, 4]
    assert view.agreement_table[["kappa", "95% CI"]].values.tolist() == [  # n = 4 < 10
        ["1.00", "too few items for a 95% CI (n = 4; needs ≥ 10)"],
        ["-0.33", "too few items for a 95% CI (n = 4; needs ≥ 10)"],
        ["-0.33", "too few items for a 95% CI (n = 4; needs ≥ 10)"]]
    assert "Wilson intervals" in view.message and "from 10 shared items up" in view.message
    assert sum(sum(t.y) for t in view.scores_plot.data) == 16  # 8 samples x 2 responses
    (margins,) = view.margin_plot.data
    assert dict(zip(margins.x, margins.y, strict=True))["8-15"] == 1.0  # margins 12 and 15
    assert "decisive samples" in view.bias_text
    everything = insights_view(studio, ALL)
    assert "the store: 4 judged items, 11 valid samples" in everything.message
    assert everything.accuracy_plot.data[0].x == ("alpha", "beta")


def test_a_dataset_without_judgements_says_so(studio, filled):
    view = insights_view(studio, "beta")
    assert view.message.startswith("No judgements in dataset `beta` yet")
    assert view.scores_plot.data == () and view.margin_plot.data == ()
    assert "cannot be measured yet" in view.bias_text


def test_principle_diversity_of_a_stored_judgement(studio, filled):
    view = diversity_view(studio, float(filled["playground"]))
    assert "3 samples, 3 with principles" in view.message
    (heatmap,) = view.plot.data
    z = [list(row) for row in heatmap.z]
    assert len(z) == 3 and all(z[i][i] == 1.0 for i in range(3))
    assert all(z[i][j] == z[j][i] for i in range(3) for j in range(3))
    assert z[0][2] == 0.0 < z[0][1]
    shared = view.terms[view.terms["kind"] == "shared"]
    assert shared[["term", "samples"]].values.tolist() == [["accuracy", 2], ["factual", 2]]
    assert "tone" in view.terms["term"].tolist()


# --- the tab ---------------------------------------------------------------------------


def test_the_tab_builds_with_stable_element_ids(studio):
    with gr.Blocks() as demo:
        build_insights_tab(studio)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"insights-dataset", "insights-datasets-refresh", "insights-refresh",
            "insights-status", "insights-accuracy", "insights-accuracy-table",
            "insights-agreement", "insights-agreement-table", "insights-scores",
            "insights-margin", "insights-position-bias", "insights-position-bias-text",
            "insights-judgement-id", "insights-diversity-show", "insights-diversity-status",
            "insights-diversity", "insights-diversity-terms"} <= ids


def test_the_tab_events_fill_every_output(studio, filled):
    """Run the registered functions as Gradio would (page load, Refresh, Show)."""
    with gr.Blocks() as demo:
        build_insights_tab(studio)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    dataset, status = by_id["insights-dataset"], by_id["insights-status"]
    refresh = [f for f in demo.fns.values() if status._id in [o._id for o in f.outputs]]
    assert refresh and all(len(f.outputs) == 9 for f in refresh)
    shown = refresh[0].fn("alpha")
    assert set(shown) == set(refresh[0].outputs) and "4 judged items" in shown[status]
    reloads = [f for f in demo.fns.values() if [o._id for o in f.outputs] == [dataset._id]]
    assert len(reloads) == 2  # page load and the "↻ datasets" button
    for reload in reloads:
        update = reload.fn(*(["beta"] if reload.inputs else []))
        assert update["choices"] == [ALL, "alpha", "beta"] and update.get("value") in (None, "beta")
    show = next(f for f in demo.fns.values()
                if by_id["insights-diversity"]._id in [o._id for o in f.outputs])
    with pytest.raises(gr.Error, match="no judgement with id 4242"):  # one pop-up
        show.fn(4242)

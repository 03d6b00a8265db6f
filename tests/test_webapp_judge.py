"""The Judge tab's handler over the real engine with a replaying backend."""

import gradio as gr
import pytest

from core import ScriptedBackend, Settings
from webapp.app import build_app
from webapp.judge_tab import run_judgement
from webapp.studio import Studio

GOOD = "Specific Criteria: facts\nAnalysis: first is right\nScores: \\boxed{9, 2}"


def studio_with(completions):
    return Studio(Settings(), backend=ScriptedBackend(completions))


def test_judging_shows_vote_and_samples_and_ignores_blank_boxes():
    studio = studio_with([GOOD, GOOD])
    vote, samples = run_judgement(studio, "2+2?", ["4", "5", "", "  "], 2, 0.5)
    assert "Vote over 2 valid sample(s)" in vote
    assert "Sample 1/2" in samples and "Sample 2/2" in samples
    assert "first is right" in samples


def test_bad_input_becomes_a_gradio_error_and_generates_nothing():
    studio = studio_with([])
    with pytest.raises(gr.Error, match="the query is empty"):
        run_judgement(studio, "   ", ["4", "5"], 1, 0.5)
    assert studio.backend.prompts == []


def test_app_builds_with_a_judge_tab():
    app = build_app(studio_with([]))
    assert isinstance(app, gr.Blocks)
    ids = {getattr(block, "elem_id", None) for block in app.blocks.values()}
    assert {"query", "response-1", "judge", "vote", "samples"} <= ids

"""The Rewards tab's handlers: the runs, one run's per-step table, its distribution
figure and its close votes; and the tab is part of the studio."""

from __future__ import annotations

import pytest

from bench.rule_judge import GARBLE, RuleJudgeBackend
from core.config import Settings
from core.engine import Judge
from core.errors import InputError
from core.reward import RewardJob, RewardRequest, serve_rewards
from core.store.db import make_engine, upgrade
from core.types import SamplingParams
from webapp.rewards_tab import (
    CLOSE_COLUMNS,
    NO_RUNS,
    STEP_COLUMNS,
    rewards_view,
    run_choices,
)
from webapp.studio import Studio


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    yield Studio(Settings(data_dir=tmp_path, demo_file=None), engine)
    engine.dispose()


def test_before_any_reward_the_tab_says_how_to_start_with_real_headers(studio):
    assert run_choices(studio) == []
    empty = rewards_view(studio, None)
    assert empty.message == NO_RUNS
    assert "No reward has been served yet" in NO_RUNS and "grm-studio serve-reward" in NO_RUNS
    assert list(empty.steps.columns) == STEP_COLUMNS and empty.steps.empty
    assert list(empty.close.columns) == CLOSE_COLUMNS and empty.close.empty
    assert "no reward served yet" in empty.plot.layout.annotations[0].text
    # what the browser gets: the headers named, not Gradio's default "1 2 3"
    import gradio as gr

    for frame, columns in ((empty.steps, STEP_COLUMNS), (empty.close, CLOSE_COLUMNS)):
        shown = gr.Dataframe(headers=columns, interactive=False).postprocess(frame)
        assert shown.headers == columns and shown.data == []


def test_the_tab_shows_a_runs_steps_distribution_and_close_votes(studio):
    judge = Judge(RuleJudgeBackend(), rescue=True)
    k2 = SamplingParams(k=2)
    serve_rewards(studio.engine, judge, [
        RewardJob(RewardRequest(query="q", responses=("a b c", "d"), run="r", step=0), k2),
        RewardJob(RewardRequest(query="q", responses=("a", "b"), run="r", step=1), k2),
        RewardJob(RewardRequest(query="q", responses=(GARBLE,), run="r", step=1), k2),
    ])
    assert run_choices(studio) == ["r"]
    view = rewards_view(studio, "r")
    assert "3 requests, 5 responses (1 unscored)" in view.message
    assert list(view.steps.columns) == STEP_COLUMNS
    assert list(view.steps["step"]) == ["0", "1", "all"]
    assert list(view.steps["mean"]) == [2.0, 1.0, 1.5]  # (3 + 1 + 1 + 1) / 4
    assert list(view.steps["parse_failure %"]) == [0.0, 50.0, pytest.approx(100 / 3, 0.01)]
    assert len(view.plot.data) == 2  # one box per step with rewards
    assert list(view.close.columns) == CLOSE_COLUMNS
    assert list(view.close["step"]) == [1] and bool(view.close["tie"][0])
    with pytest.raises(InputError, match="no rewards were served to run 'nope'"):
        rewards_view(studio, "nope")


def test_the_studio_has_a_rewards_tab(studio):
    from webapp.app import build_app

    blocks = build_app(studio)
    labels = [getattr(b, "label", None) for b in blocks.blocks.values()]
    assert "RL run" in labels


def test_sending_close_votes_to_annotation_needs_an_admin(studio):
    from types import SimpleNamespace

    from core.errors import NotAllowedError
    from core.store.accounts import set_account
    from core.store.sessions import start_session
    from webapp.rewards_tab import annotate_close_votes
    from webapp.studio import SESSION_COOKIE

    judge = Judge(RuleJudgeBackend(), rescue=True)
    serve_rewards(studio.engine, judge, [
        RewardJob(RewardRequest(query="q", responses=("a", "b"), run="r", step=0),
                  SamplingParams(k=2))])
    with pytest.raises(NotAllowedError):
        annotate_close_votes(studio, "r", SimpleNamespace(cookies={}))
    boss = set_account(studio.engine, "boss", "admin", "a long password 123")
    token = start_session(studio.engine, boss, hours=1)
    said = annotate_close_votes(studio, "r", SimpleNamespace(cookies={SESSION_COOKIE: token}))
    assert said.startswith("Sent 1 close vote(s) to annotation") and "rewards-r" in said

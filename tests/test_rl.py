"""Rule-based RL (GRPO): the strict-rule reward, the prompts, and (marked
`model`) a real one-step GRPO run on the embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.store.importing import import_file
from core.store.labels import add_label
from core.templates import SCORES_PREFIX, PromptTemplate
from core.training.rl import RLConfig, reward_function, rl_prompts, strict_rule_reward


class ChatFree:
    """A tokenizer stand-in with no chat format: prompts pass through as they are."""

    chat_template = None


def write_pairs(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(
        json.dumps({"prompt": f"What is {i} + {i}?", "responses": [f"{2 * i}", f"{2 * i + 3}"],
                    "best": 0}) + "\n"
        for i in range(n)
    ))
    return path


def test_the_reward_is_plus_one_only_when_the_labelled_best_wins_strictly():
    assert strict_rule_reward("Scores: \\boxed{8, 3}", (0, 1), best=0) == 1.0
    assert strict_rule_reward("Scores: \\boxed{8, 3}", (1, 0), best=0) == -1.0  # shown swapped
    assert strict_rule_reward("Scores: \\boxed{3, 8}", (1, 0), best=0) == 1.0
    assert strict_rule_reward("Scores: \\boxed{5, 5}", (0, 1), best=0) == -1.0  # a tie is wrong
    assert strict_rule_reward("Scores: \\boxed{5, 5}", (0, 1), best=None) == 1.0  # tie label
    assert strict_rule_reward("I cannot decide.", (0, 1), best=0) == -1.0  # parse failure
    assert strict_rule_reward("Scores: \\boxed{8, 3, 1}", (0, 1), best=0) == -1.0  # wrong count
    reward = reward_function(SCORES_PREFIX)
    assert reward(["8, 3}", "3, 8}", "oops"], shown_order=[[0, 1], [0, 1], [0, 1]],
                  best=[0, 0, 0], prompts=["p"] * 3) == [1.0, -1.0, -1.0]


def test_prompts_are_the_judges_own_with_shuffles_and_labels(store, tmp_path):
    from core.engine import shown_orders
    from core.templates import POINTWISE
    from core.types import JudgeInput

    import_file(store, write_pairs(tmp_path, 3), "toy")
    add_label(store, 2, "alice", best=1)  # a human label overrides the dataset's
    config = RLConfig(orders_per_item=2, reply_prefix="Specific Criteria:")
    prompts = rl_prompts(store, "toy", ChatFree(), config)
    assert len(prompts) == 6
    assert [p.best for p in prompts] == [0, 0, 1, 1, 0, 0]
    first = JudgeInput(query="What is 0 + 0?", responses=("0", "3"))
    orders = shown_orders(2, 2, config.seed + 1)
    assert [p.shown_order for p in prompts[:2]] == orders
    assert prompts[0].prompt == POINTWISE.render(first, orders[0]) + "Specific Criteria:"
    assert len(rl_prompts(store, "toy", ChatFree(), RLConfig(limit=1))) == 1


# A short template of the judge's format: the full one is ~400 tokens, too many for
# a CPU smoke run on two shared cores. Production runs use the judge's templates.
SHORT = PromptTemplate(
    name="smoke",
    text="Query: {query}\n{responses}Score each of the {n} responses from {lo} to {hi}. "
    "Reply with Scores: \\boxed{{{placeholder}}}",
    description="short prompt for the CPU smoke test",
)


@pytest.mark.model
def test_one_grpo_step_changes_the_weights_and_the_checkpoint_judges(store, tmp_path):
    from safetensors.torch import load_file
    from sqlalchemy.orm import Session

    from core import Judge, JudgeInput, SamplingParams
    from core.backends import load_backend
    from core.config import Settings
    from core.store.schema import JudgeModel
    from core.training.meta_base import resolve_model_dir
    from core.training.rl import train_rl

    import_file(store, write_pairs(tmp_path, 2), "toy")
    settings = Settings()
    # The reply is forced to start inside the scores ("Scores: \boxed{7, ") so that the
    # two or three tokens sampled (the second score) make it right or wrong by chance:
    # only a group with mixed rewards has non-zero advantages, hence a gradient.
    config = RLConfig(prompts_per_step=2, max_steps=1, max_completion_length=3,
                      reply_prefix=SCORES_PREFIX + "7, ", learning_rate=1e-5, beta=0.04)
    out = tmp_path / "grm-rl"
    info = train_rl(store, settings, dataset="toy", out_dir=out, config=config, template=SHORT)
    assert (info.prompts, info.steps) == (2, 1)
    assert len(info.rewards) == 1 and -1.0 < info.rewards[0] < 1.0  # mixed: a real gradient
    saved = load_file(str(out / "model.safetensors"))
    base = load_file(str(resolve_model_dir("embedded", settings.cache_dir) / "model.safetensors"))
    changed = [n for n in saved if not (saved[n] == base[n]).all()]
    assert len(changed) > len(saved) // 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial")]
    with Session(store) as session:
        row = session.get_one(JudgeModel, info.judge_model_id)
    assert (row.backend, row.source) == ("transformers", str(out))
    from core.training.registry import list_judge_models

    (entry,) = list_judge_models(store, trained_only=True)  # with its provenance
    assert (entry.id, entry.method, entry.export) == (info.judge_model_id, "grpo", None)
    assert entry.parent and entry.metrics["steps"] == 1 and entry.metrics["dataset"] == "toy"

    backend = load_backend(Settings(model=str(out)))
    assert backend.info.revision == row.revision  # judging with it reuses this row
    judgement = Judge(backend, template=SHORT, rescue=True).judge(
        JudgeInput(query="What is 2 + 2?", responses=("4", "7")),
        SamplingParams(k=1, max_new_tokens=4),
    )
    assert judgement.samples[0].valid and judgement.vote.valid_samples == 1


def test_rl_train_names_a_missing_dataset_and_an_unlabelled_one(tmp_path):
    from typer.testing import CliRunner

    from cli import app
    from core.store.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = make_engine(url)
    upgrade(engine)
    path = tmp_path / "unlabelled.jsonl"
    path.write_text(json.dumps({"prompt": "q?", "responses": ["a", "b"]}) + "\n")
    import_file(engine, path, "raw")
    env = {"GRM_STUDIO_DATABASE_URL": url}
    result = CliRunner().invoke(app, ["rl", "train", str(tmp_path / "o"), "--dataset", "nope"], env=env)
    assert result.exit_code == 2 and "there is no dataset 'nope'" in result.output
    result = CliRunner().invoke(app, ["rl", "train", str(tmp_path / "o"), "--dataset", "raw"], env=env)
    assert result.exit_code == 2 and "no labelled item" in result.output
    assert not (tmp_path / "o").exists()

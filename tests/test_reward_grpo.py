"""End to end: TRL's GRPOTrainer trains the embedded model for a few steps with
rewards from a reward server running on 127.0.0.1 (over HTTP, the rule judge
behind it so that judging is quick), and every served reward is in the store,
tagged with the run and the step it was given at."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.reward_load import served
from bench.rule_judge import RuleJudgeBackend, length_score
from core.config import Settings
from core.engine import Judge
from core.reward_clients import GRMReward
from core.store.db import make_engine, upgrade
from core.store.judgements import fetch_judgement
from core.store.schema import ServedReward
from core.training.rft_trainer import resolve_model_dir
from webapp.reward_server import reward_app

pytestmark = pytest.mark.model
STEPS = 3


def test_grpo_trains_on_rewards_from_the_running_server_and_they_are_stored(tmp_path):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    settings = Settings(data_dir=tmp_path, k=2)
    model_dir, _ = resolve_model_dir("embedded", settings.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    before = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    app = reward_app(settings, engine, judge=Judge(RuleJudgeBackend(), rescue=True))
    prompts = Dataset.from_list([{"prompt": "Say hello to a friend."},
                                 {"prompt": "Name three fruits."}])
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), num_generations=2, per_device_train_batch_size=2,
        max_steps=STEPS, max_completion_length=12, learning_rate=1e-4, beta=0.0,
        temperature=1.0, use_cpu=True, logging_steps=1, save_strategy="no", report_to="none",
        disable_tqdm=True, seed=0)
    with served(app) as url:
        trainer = GRPOTrainer(model=model, reward_funcs=[GRMReward(url, run="grpo-e2e")],
                              args=args, train_dataset=prompts, processing_class=tokenizer)
        trainer.train()
    assert trainer.state.global_step == STEPS

    with Session(engine) as session:
        rows = list(session.scalars(select(ServedReward).order_by(ServedReward.id)))
    assert [(r.run, r.step, r.mode, r.responses) for r in rows] == [
        ("grpo-e2e", step, "group", [0, 1]) for step in range(STEPS)]  # one group a step
    logged = [e for e in trainer.state.log_history if "reward" in e]
    assert len(logged) == STEPS
    for row, entry in zip(rows, logged, strict=True):
        judgement = fetch_judgement(engine, row.judgement_id)
        # What the server stored is what the policy was rewarded with.
        assert row.rewards == [float(length_score(r)) for r in judgement.input.responses]
        assert entry["reward"] == pytest.approx(sum(row.rewards) / 2)
    if any(len(set(r.rewards)) > 1 for r in rows):  # a group with unequal rewards: a gradient
        after = trainer.model.model.layers[0].self_attn.q_proj.weight.detach()
        assert not torch.equal(before, after)
    engine.dispose()

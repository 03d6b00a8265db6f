"""The CPU LoRA trainer really trains a (tiny, random) Llama model with the embedded
model's tokenizer: the adapter changes, the loss is on the completion only, and a
killed run continues from its checkpoint to the same adapter as an unbroken run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InputError
from core.training.lora_sft import (
    CHECKPOINT,
    LoraSFTConfig,
    LoraSFTTrainer,
    Record,
    _step_loss,
    bucketed_batches,
    tokenize,
)

torch = pytest.importorskip("torch")

EXAMPLES = [
    [{"role": "user", "content": f"Judge response {i}: is {i} + {i} = {2 * i}?"},
     {"role": "assistant", "content": f"Specific Criteria: correctness. Analysis: {i} + {i} "
                                      f"is {2 * i}. Scores: \\boxed{{{9 - i % 3}}}"}]
    for i in range(6)
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and SmolLM2's tokenizer and chat template."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from core.config import Settings
    from core.training.rft_trainer import resolve_model_dir

    embedded_dir, _ = resolve_model_dir("embedded", Settings().cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_dir))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id))
    target = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def config(**changes: object) -> LoraSFTConfig:
    base = {"lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "learning_rate": 5e-3,
            "warmup_steps": 0, "batch_tokens": 100, "checkpoint_every": 1}
    return LoraSFTConfig(**{**base, **changes})


def adapter(directory: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(directory / "adapter_model.safetensors"))


def test_training_changes_the_adapter_and_records_the_run(tiny_model, tmp_path):
    result = LoraSFTTrainer(config(), tiny_model, tmp_path / "work").train(
        EXAMPLES, tmp_path / "adapter")
    weights = adapter(tmp_path / "adapter")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(float(w.abs().max()) > 0 for w in lora_b)  # B starts at zero
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    facts = json.loads((tmp_path / "adapter" / "TRAINING.json").read_text())
    assert facts["steps"] == result.steps >= 2 and facts["examples"] == len(EXAMPLES)
    assert result.examples_per_second > 0
    losses = [e["loss"] for e in result.log]
    assert all(0 < loss < 20 for loss in losses)


def test_a_killed_run_continues_from_its_checkpoint_to_the_same_adapter(tiny_model, tmp_path):
    whole = LoraSFTTrainer(config(), tiny_model, tmp_path / "w1").train(
        EXAMPLES, tmp_path / "a1")
    steps = iter(range(100))
    with pytest.raises(InputError, match="stopped at step 2"):
        LoraSFTTrainer(config(), tiny_model, tmp_path / "w2").train(
            EXAMPLES, tmp_path / "a2", should_stop=lambda: next(steps) >= 2)
    state = json.loads((tmp_path / "w2" / CHECKPOINT / "state.json").read_text())
    assert state["step"] == 2 and not (tmp_path / "a2").exists()
    resumed = LoraSFTTrainer(config(), tiny_model, tmp_path / "w2").train(
        EXAMPLES, tmp_path / "a2")
    assert [e["step"] for e in resumed.log] == [e["step"] for e in whole.log]
    first, second = adapter(tmp_path / "a1"), adapter(tmp_path / "a2")
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-4, atol=1e-6)


def test_a_checkpoint_of_other_settings_is_refused(tiny_model, tmp_path):
    steps = iter(range(100))
    with pytest.raises(InputError):
        LoraSFTTrainer(config(), tiny_model, tmp_path / "w").train(
            EXAMPLES, tmp_path / "a", should_stop=lambda: next(steps) >= 1)
    with pytest.raises(InputError, match="another configuration"):
        LoraSFTTrainer(config(lora_r=8), tiny_model, tmp_path / "w").train(
            EXAMPLES, tmp_path / "a")


def test_a_round_continues_from_an_earlier_adapter(tiny_model, tmp_path):
    """An RFT round starts from the cold start's adapter (its first loss is the loss
    the earlier adapter reached, not the untrained one's) and ends as one adapter."""
    first = LoraSFTTrainer(config(), tiny_model, tmp_path / "w1").train(
        EXAMPLES, tmp_path / "a1")
    fresh = LoraSFTTrainer(config(learning_rate=1e-9), tiny_model, tmp_path / "w2").train(
        EXAMPLES, tmp_path / "a2")
    more = LoraSFTTrainer(config(learning_rate=1e-9), tiny_model, tmp_path / "w3",
                          init_adapter=tmp_path / "a1").train(EXAMPLES, tmp_path / "a3")
    # with a vanishing learning rate, the run keeps the adapter it started from
    for name, weight in adapter(tmp_path / "a1").items():
        torch.testing.assert_close(adapter(tmp_path / "a3")[name], weight, rtol=1e-3, atol=1e-5)
    assert more.log[0]["loss"] < fresh.log[0]["loss"]
    assert first.log[-1]["loss"] < fresh.log[0]["loss"]
    facts = json.loads((tmp_path / "a3" / "TRAINING.json").read_text())
    assert facts["init_adapter"] == str(tmp_path / "a1")
    with pytest.raises(InputError, match="rank 4"):
        LoraSFTTrainer(config(lora_r=8), tiny_model, tmp_path / "w4",
                       init_adapter=tmp_path / "a1").train(EXAMPLES, tmp_path / "a4")


def test_the_batched_loss_is_the_completion_loss_of_each_row_alone(tiny_model):
    """Left padding, explicit positions and the kept-logits window give the same
    loss as each row run alone with every logit, the loss masked to its reply."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    rows = [tokenize(tokenizer, EXAMPLES[0]),
            Record((*tokenize(tokenizer, EXAMPLES[1]).prompt, 42, 43, 44),
                   tokenize(tokenizer, EXAMPLES[1]).completion[:3])]
    assert len(rows[0]) != len(rows[1])
    with torch.no_grad():
        batched = float(_step_loss(model, rows, tokenizer.pad_token_id))
        total, count = 0.0, 0
        for row in rows:
            ids = torch.tensor([[*row.prompt, *row.completion]])
            logits = model(input_ids=ids).logits[0]
            start = len(row.prompt)
            targets = torch.tensor(row.completion)
            losses = torch.nn.functional.cross_entropy(
                logits[start - 1: start - 1 + len(targets)], targets, reduction="sum")
            total, count = total + float(losses), count + len(targets)
    assert batched == pytest.approx(total / count, rel=1e-4)


def test_tokenize_matches_the_judge_backend_prompt(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    record = tokenize(tokenizer, EXAMPLES[0])
    served = tokenizer.apply_chat_template(
        [EXAMPLES[0][0]], add_generation_prompt=True, tokenize=True)
    served = list(served["input_ids"] if hasattr(served, "keys") else served)
    assert list(record.prompt) == served
    assert record.completion[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(record.completion[:-1]) == EXAMPLES[0][1]["content"]


def test_length_buckets_keep_the_budget_and_every_record_once():
    lengths = [5, 300, 40, 41, 39, 120, 7, 250, 60]
    batches = bucketed_batches(lengths, batch_tokens=300, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 300 or len(batch) == 1
    assert batches == bucketed_batches(lengths, batch_tokens=300, seed=3)
    assert batches != bucketed_batches(lengths, batch_tokens=300, seed=4)


def test_bf16_autocast_trains_float32_lora_weights_to_a_close_loss(tiny_model, tmp_path):
    """Mixed precision (the precision rule's choice where the CPU has native bf16):
    the adapter stays float32, the first step's loss is float32's to bf16 rounding,
    and the run records that it trained in bf16."""
    exact = LoraSFTTrainer(config(), tiny_model, tmp_path / "w1").train(
        EXAMPLES, tmp_path / "a1")
    mixed = LoraSFTTrainer(config(), tiny_model, tmp_path / "w2", bf16=True).train(
        EXAMPLES, tmp_path / "a2")
    assert all(w.dtype == torch.float32 for w in adapter(tmp_path / "a2").values())
    assert mixed.log[0]["loss"] == pytest.approx(exact.log[0]["loss"], rel=0.02)
    assert mixed.log[0]["loss"] != exact.log[0]["loss"]  # it did run in bf16
    assert json.loads((tmp_path / "a2" / "TRAINING.json").read_text())["bf16"] is True
    assert json.loads((tmp_path / "a1" / "TRAINING.json").read_text())["bf16"] is False

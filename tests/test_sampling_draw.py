"""The next-token draw of shared-prefix sampling: arg max, or a draw from the
tempered (and top-p cut) distribution, never a token of probability 0."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from core.backends.shared_prefix import Sampling, _pick  # noqa: E402

PROBS = [0.5, 0.25, 0.0, 0.2, 0.05]
DRAWS = 40_000


def frequencies(sampling: Sampling, probs=PROBS, seed: int = 0) -> list[float]:
    logits = torch.tensor([probs]).log().repeat(DRAWS, 1)
    drawn = _pick(logits, sampling, torch.Generator().manual_seed(seed))
    return (torch.bincount(drawn, minlength=len(probs)) / DRAWS).tolist()


def close(observed: list[float], expected: list[float]) -> bool:
    """Within 5 standard errors of each expected frequency; exact where it is 0 or 1."""
    return all(
        abs(o - e) <= 5 * math.sqrt(e * (1 - e) / DRAWS) for o, e in zip(observed, expected, strict=True)
    )


def test_draws_follow_the_distribution_and_skip_impossible_tokens():
    observed = frequencies(Sampling(greedy=False, temperature=1.0))
    assert observed[2] == 0.0
    assert close(observed, PROBS), observed


def test_impossible_first_and_last_tokens_are_never_drawn():
    observed = frequencies(Sampling(greedy=False), [0.0, 0.3, 0.7, 0.0])
    assert observed[0] == observed[3] == 0.0
    assert close(observed, [0.0, 0.3, 0.7, 0.0]), observed


def test_temperature_sharpens_the_distribution():
    weights = [p ** 2 for p in PROBS]  # temperature 0.5 squares the probabilities
    expected = [w / sum(weights) for w in weights]
    assert close(frequencies(Sampling(greedy=False, temperature=0.5)), expected)


def test_top_p_keeps_the_smallest_head_holding_p_and_renormalises():
    # 0.5 and 0.25 are ranked above mass 0.7; 0.2 starts after 0.75 and is cut
    assert close(frequencies(Sampling(greedy=False, top_p=0.7)), [2 / 3, 1 / 3, 0, 0, 0])


def test_one_certain_token_is_always_drawn_and_greedy_takes_the_arg_max():
    certain = [0.0, 0.0, 0.0, 1.0, 0.0]
    assert frequencies(Sampling(greedy=False), certain) == certain
    logits = torch.tensor([PROBS, list(reversed(PROBS))]).log()
    assert _pick(logits, Sampling(greedy=True), torch.Generator()).tolist() == [0, 4]


def test_a_seed_repeats_its_draws_and_another_seed_differs():
    sampling = Sampling(greedy=False)
    assert frequencies(sampling, seed=3) == frequencies(sampling, seed=3)
    logits = torch.tensor([PROBS]).log().repeat(50, 1)
    draws = [_pick(logits, sampling, torch.Generator().manual_seed(s)).tolist() for s in (1, 2)]
    assert draws[0] != draws[1]

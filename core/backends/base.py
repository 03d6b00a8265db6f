"""The one small interface every model backend implements.

A backend turns finished prompt texts (the judge's user message) into
completions. It owns the model's chat format, its tokenizer and its sampler;
the engine owns templates, shuffles, parsing and voting. A backend written
for a server (OpenAI-compatible) implements the same two methods.

Both take an optional `watch` (`core.progress`): the backend calls
`watch.report(GenerationProgress(...))` between its steps (prefill chunks,
decode steps, or finished requests), which raises JudgingStopped once a stop
is asked for; the backend lets it propagate and keeps nothing of the call.
The engine passes `watch` only when someone watches, so a backend written
before it still works unwatched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.progress import GenerationWatch
from core.types import Completion, ModelInfo, SamplingParams


@dataclass(frozen=True)
class RescueRequest:
    """Continue `assistant_prefix` (the sample's own text plus a forced scores
    prefix) with `n_responses` integers in `score_range` and a closing brace."""

    prompt: str
    assistant_prefix: str
    n_responses: int
    score_range: tuple[int, int]


@runtime_checkable
class Backend(Protocol):
    """A causal LM that the judge engine can sample from."""

    info: ModelInfo
    supports_score_rescue: bool

    def count_prompt_tokens(self, prompt: str) -> int | None:
        """Tokens the prompt takes once wrapped in the chat format; None if unknown."""
        ...

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = "",
        watch: GenerationWatch | None = None,
    ) -> list[Completion]:
        """One completion per prompt, all generated together (one batched call)
        with the sampler seeded from `params.seed`; `params.k` is ignored here.
        The reply is forced to start with `assistant_prefix`, which the returned
        text does not repeat."""
        ...

    def rescue_scores(
        self, requests: Sequence[RescueRequest], params: SamplingParams | None = None,
        *, watch: GenerationWatch | None = None,
    ) -> list[str]:
        """For each request, the continuation written under a constraint that
        allows only the scores and the closing brace, decoded as `params` say
        (the samples' own settings; None or greedy params: arg max)."""
        ...

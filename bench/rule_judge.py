"""A fast scripted judge for the reward server's tests and load bench: it reads the
responses out of each prompt (in the order shown) and writes a well-formed reply
scoring each by its length (one point a word, 1..10), in `call_s` seconds a
batch plus `prompt_s` a prompt, as a model decoding a batch would take.

It runs the same engine (shuffles, parsing, rescue, vote) as any backend. A
response containing GARBLE makes every sample of its judgement unparseable (and
unrescuable); one containing RESCUE makes the samples omit their scores, which
the score rescue then recovers. FAIL makes the whole generation raise.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence

from core.backends.base import RescueRequest
from core.errors import BackendError
from core.progress import GenerationWatch
from core.types import Completion, ModelInfo, SamplingParams

GARBLE = "<<garble>>"
RESCUE = "<<rescue>>"
FAIL = "<<fail>>"
_RESPONSE = re.compile(r"\[The Begin of Response(?: \d+)?\]\n(.*?)\n\[The End of Response", re.DOTALL)


def length_score(response: str) -> int:
    """The rule: one point a word, from 1 to 10."""
    return max(1, min(10, len(response.split())))


class RuleJudgeBackend:
    """Scores by `length_score`; counts its calls and the prompts of each (`batches`)."""

    supports_score_rescue = True

    def __init__(self, *, call_s: float = 0.0, prompt_s: float = 0.0) -> None:
        self.info = ModelInfo(name="rule-judge", backend="scripted", source="rule-judge")
        self.call_s, self.prompt_s = call_s, prompt_s
        self.batches: list[int] = []  # prompts per generate call
        self._lock = threading.Lock()

    def count_prompt_tokens(self, prompt: str) -> int | None:
        return None

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = "",
        watch: GenerationWatch | None = None,
    ) -> list[Completion]:
        with self._lock:
            self.batches.append(len(prompts))
        if any(FAIL in p for p in prompts):
            raise BackendError("the rule judge was told to fail (a response holds <<fail>>)")
        time.sleep(self.call_s + self.prompt_s * len(prompts))
        replies = [self._reply(prompt) for prompt in prompts]
        return [Completion(text=r.removeprefix(assistant_prefix), finish_reason="stop",
                           prompt_tokens=len(p.split()), completion_tokens=len(r.split()))
                for p, r in zip(prompts, replies, strict=True)]

    def rescue_scores(
        self, requests: Sequence[RescueRequest], params: SamplingParams | None = None,
        *, watch: GenerationWatch | None = None,
    ) -> list[str]:
        return ["no score}" if GARBLE in r.prompt else _scores(r.prompt) + "}" for r in requests]

    @staticmethod
    def _reply(prompt: str) -> str:
        if GARBLE in prompt:
            return "Specific Criteria: none\nAnalysis: I cannot decide."
        head = "Specific Criteria: length (100%)\nAnalysis: the longer answer says more.\n"
        if RESCUE in prompt:
            return head
        return head + "Scores: \\boxed{" + _scores(prompt) + "}"


def _scores(prompt: str) -> str:
    return ", ".join(str(length_score(r)) for r in _RESPONSE.findall(prompt))

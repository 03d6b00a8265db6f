"""A backend that replays given completions: fast, deterministic unit tests
and demos without a model. It runs the same engine code as any real backend.

Watched (`core.progress`), it plays a generation as a model would report it: a
prefill, then one decode step per word of the longest completion (each word a
token), `step_s` seconds a step: a slow model for progress and stop tests."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence

from core.backends.base import RescueRequest
from core.errors import BackendError
from core.progress import GenerationProgress, GenerationWatch
from core.types import Completion, ModelInfo, SamplingParams


class ScriptedBackend:
    """Replays `completions` in order, one per prompt; `rescues` answer
    `rescue_scores` calls in order. Every prompt received is kept in `prompts`;
    a call that a stop ended (JudgingStopped) uses up nothing."""

    supports_score_rescue = True

    def __init__(
        self,
        completions: Iterable[str | Completion],
        rescues: Iterable[str] = (),
        *,
        context_length: int | None = None,
        name: str = "scripted",
        step_s: float = 0.0,
    ) -> None:
        self._completions = deque(
            c if isinstance(c, Completion) else Completion(text=c, finish_reason="stop")
            for c in completions
        )
        self._rescues = deque(rescues)
        self.prompts: list[str] = []
        self.rescue_requests: list[RescueRequest] = []
        self.rescue_params: list[SamplingParams | None] = []
        self.assistant_prefixes: list[str] = []
        self.info = ModelInfo(
            name=name, backend="scripted", source="scripted", context_length=context_length
        )
        self.step_s = step_s  # seconds each played step takes

    def count_prompt_tokens(self, prompt: str) -> int | None:
        # One token per whitespace-separated word: enough to exercise length checks.
        return len(prompt.split()) if self.info.context_length else None

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = "",
        watch: GenerationWatch | None = None,
    ) -> list[Completion]:
        if len(prompts) > len(self._completions):
            raise BackendError(
                f"scripted backend has {len(self._completions)} completion(s) left, "
                f"{len(prompts)} requested"
            )
        replies = [self._completions[i].text for i in range(len(prompts))]
        self._play(prompts, replies, params.max_new_tokens, watch)
        self.prompts.extend(prompts)
        self.assistant_prefixes.append(assistant_prefix)
        return [self._completions.popleft() for _ in prompts]

    def rescue_scores(
        self, requests: Sequence[RescueRequest], params: SamplingParams | None = None,
        *, watch: GenerationWatch | None = None,
    ) -> list[str]:
        if len(requests) > len(self._rescues):
            raise BackendError(
                f"scripted backend has {len(self._rescues)} rescue(s) left, "
                f"{len(requests)} requested"
            )
        if requests:
            replies = [self._rescues[i] for i in range(len(requests))]
            self._play([r.prompt for r in requests], replies, 16, watch)
        self.rescue_requests.extend(requests)
        self.rescue_params.append(params)
        return [self._rescues.popleft() for _ in requests]

    def _play(
        self, prompts: Sequence[str], replies: Sequence[str], max_new_tokens: int,
        watch: GenerationWatch | None,
    ) -> None:
        """Report a prefill of `prompts`, then one decode step per word of the
        longest reply (`step_s` seconds each); `watch` may stop it between steps."""
        if watch is None and not self.step_s:
            return
        budget = max(1, max_new_tokens)
        words = [min(budget, max(1, len(reply.split()))) for reply in replies]
        samples = len(replies)
        prompt_words = sum(len(p.split()) for p in set(prompts))
        self._step(watch, GenerationProgress("prefill", 0, prompt_words, samples))
        self._step(watch, GenerationProgress("prefill", prompt_words, prompt_words, samples))
        for step in range(1, max(words, default=0) + 1):
            ended = [step >= n for n in words]
            self._step(watch, GenerationProgress(
                "decode",
                done=sum(budget if e else step for e in ended),
                total=samples * budget,
                samples=samples,
                finished=sum(ended),
                generated=sum(min(step, n) for n in words),
            ))

    def _step(self, watch: GenerationWatch | None, event: GenerationProgress) -> None:
        if self.step_s:
            time.sleep(self.step_s)
        if watch is not None:
            watch.report(event)

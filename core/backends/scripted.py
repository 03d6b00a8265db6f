"""A backend that replays given completions: fast, deterministic unit tests
and demos without a model. It runs the same engine code as any real backend."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from core.backends.base import RescueRequest
from core.errors import BackendError
from core.types import Completion, ModelInfo, SamplingParams


class ScriptedBackend:
    """Replays `completions` in order, one per prompt; `rescues` answer
    `rescue_scores` calls in order. Every prompt received is kept in `prompts`."""

    supports_score_rescue = True

    def __init__(
        self,
        completions: Iterable[str | Completion],
        rescues: Iterable[str] = (),
        *,
        context_length: int | None = None,
        name: str = "scripted",
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

    def count_prompt_tokens(self, prompt: str) -> int | None:
        # One token per whitespace-separated word: enough to exercise length checks.
        return len(prompt.split()) if self.info.context_length else None

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, assistant_prefix: str = ""
    ) -> list[Completion]:
        if len(prompts) > len(self._completions):
            raise BackendError(
                f"scripted backend has {len(self._completions)} completion(s) left, "
                f"{len(prompts)} requested"
            )
        self.prompts.extend(prompts)
        self.assistant_prefixes.append(assistant_prefix)
        return [self._completions.popleft() for _ in prompts]

    def rescue_scores(
        self, requests: Sequence[RescueRequest], params: SamplingParams | None = None
    ) -> list[str]:
        if len(requests) > len(self._rescues):
            raise BackendError(
                f"scripted backend has {len(self._rescues)} rescue(s) left, "
                f"{len(requests)} requested"
            )
        self.rescue_requests.extend(requests)
        self.rescue_params.append(params)
        return [self._rescues.popleft() for _ in requests]

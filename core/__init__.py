"""GRM Studio core: the generative reward model judge, with no UI in it.

    from core import judge
    result = judge("What is 2+2?", ["4", "5"], k=4)
    result.vote.winner, result.vote.margin, result.samples[0].parse

For many judgements, load the model once and keep a `Judge`:

    from core import JudgeInput, SamplingParams, Settings
    from core.service import build_judge
    judge_ = build_judge(Settings())          # the configured model, loaded once
    judge_.judge(JudgeInput(query=..., responses=(...)), SamplingParams(k=8))
"""

from __future__ import annotations

from collections.abc import Sequence

from core.backends import Backend, ScriptedBackend, load_backend
from core.config import Settings
from core.engine import Judge, validate_input
from core.errors import (
    BackendError,
    GRMStudioError,
    InputError,
    PromptTooLongError,
    ResponsesFileError,
)
from core.parse import parse_output
from core.templates import TEMPLATES, PromptTemplate, default_template, get_template
from core.types import (
    JudgeInput,
    Judgement,
    ParsedOutput,
    ParseFailure,
    Sample,
    SamplingParams,
    Turn,
    Vote,
)
from core.vote import vote

__all__ = [
    "TEMPLATES", "Backend", "BackendError", "GRMStudioError", "InputError", "Judge", "JudgeInput",
    "Judgement", "ParseFailure", "ParsedOutput", "PromptTemplate", "PromptTooLongError",
    "ResponsesFileError", "Sample", "SamplingParams", "ScriptedBackend", "Settings", "Turn",
    "Vote", "get_template", "judge", "load_backend", "parse_output", "vote",
]


def judge(
    query: str,
    responses: Sequence[str],
    *,
    context: Sequence[Turn] = (),
    k: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_new_tokens: int | None = None,
    seed: int | None = None,
    template: str | None = None,
    rescue: bool | None = None,
    backend: Backend | None = None,
    settings: Settings | None = None,
) -> Judgement:
    """Judge `responses` to `query` with k shuffled samples and vote.

    Unset options come from `settings` (default: `Settings()`, i.e. the
    `GRM_STUDIO_*` environment). Without `backend` the model is loaded for this
    call; pass one (see `load_backend`) to judge many times.
    """
    from core.service import build_judge  # not at the top: it imports the store

    settings = settings or Settings()
    params = settings.sampling(
        k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed
    )
    item = JudgeInput(query=query, responses=tuple(responses), context=tuple(context))
    settings = settings.model_copy(update={
        "template": template or settings.template,
        "rescue": settings.rescue if rescue is None else rescue,
    })
    chosen = get_template(settings.template) if settings.template else None
    validate_input(item, chosen or default_template(len(item.responses)))  # before a slow load
    return build_judge(settings, backend or load_backend(settings)).judge(item, params)

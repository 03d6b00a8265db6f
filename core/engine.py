"""The judge engine: k shuffled samples -> parsed scores -> vote.

    judge = Judge(load_backend(settings))
    judgement = judge.judge(JudgeInput(query=..., responses=(...)), SamplingParams(k=8))
    results = judge.judge_many([item, ...], params)   # one batched generation for all

Each sample shows the responses in its own seeded shuffle (recorded); the
scores it writes, in shown order, are mapped back to the original responses
by the identity of the response at each shown position, never by arithmetic.

An input with a reference answer (`JudgeInput.reference`) is judged with the
reference variant of the judge's template (`core.templates.with_reference`), so
its judgement's template name says that a reference was shown.

A `watch` (`core.progress`) hears how far the generation is (the samples',
then the score rescue's) and may stop it between two steps (JudgingStopped:
nothing of the call is returned).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.backends.base import Backend, RescueRequest
from core.errors import InputError, PromptTooLongError
from core.parse import parse_output
from core.progress import GenerationProgress, GenerationWatch
from core.templates import (
    POINTWISE_HINTED,
    PRINCIPLES_PREFIX,
    SCORES_PREFIX,
    PromptTemplate,
    default_template,
    get_template,
    with_reference,
)
from core.types import (
    Completion,
    JudgeInput,
    Judgement,
    ParsedOutput,
    ParseFailure,
    Rescue,
    Sample,
    SamplingParams,
)
from core.vote import vote

_ENUMERATE_ORDERS_UP_TO = 5  # 5! = 120 orders
_FORCED_TOKENS = 8  # room for the prefilled 'Specific Criteria:'


def validate_input(item: JudgeInput, template: PromptTemplate) -> None:
    """Raise InputError naming the first problem with `item`."""
    if not item.query.strip():
        raise InputError("the query is empty")
    if not item.responses:
        raise InputError("there are no responses to judge; give at least one")
    for i, response in enumerate(item.responses, start=1):
        if not response.strip():
            raise InputError(f"response {i} is empty")
    if item.reference is not None and not item.reference.strip():
        raise InputError("the reference answer is empty; write one or leave it out")
    template.check(len(item.responses))
    template.check_reference(item.reference)


def shown_orders(n_responses: int, k: int, seed: int, shuffle: bool = True) -> list[tuple[int, ...]]:
    """Per sample, the original indices in the order they are shown.

    With few responses the k samples cycle through all n! orders in a seeded
    random sequence, so that every response is shown in every position as
    evenly as k allows (two samples of a pair never both show the same order);
    with many responses each sample gets its own seeded shuffle.
    """
    identity = tuple(range(n_responses))
    if not shuffle:
        return [identity] * k
    rng = random.Random(f"shuffle:{seed}")
    if n_responses <= _ENUMERATE_ORDERS_UP_TO:
        cycle = list(itertools.permutations(identity))
        rng.shuffle(cycle)
        return [cycle[i % len(cycle)] for i in range(k)]
    orders = []
    for _ in range(k):
        order = list(identity)
        rng.shuffle(order)
        orders.append(tuple(order))
    return orders


def to_original_order(shown_scores: Sequence[int], shown_order: Sequence[int]) -> tuple[int, ...]:
    """Scores written for the shown positions, re-keyed by the response shown there."""
    by_response = dict(zip(shown_order, shown_scores, strict=True))
    return tuple(by_response[i] for i in range(len(shown_order)))


class Judge:
    """A backend plus the choices that stay fixed across judgements."""

    def __init__(
        self,
        backend: Backend,
        *,
        template: PromptTemplate | str | None = None,
        rescue: bool = True,
        prefill: bool = False,
        shuffle: bool = True,
    ) -> None:
        """`rescue` and `prefill` help weak models keep the format: rescue asks
        for just the scores where a sample wrote none usable, prefill starts
        every reply with the principles header."""
        self.backend = backend
        self.template = get_template(template) if isinstance(template, str) else template
        self.rescue = rescue and backend.supports_score_rescue
        self.prefill = PRINCIPLES_PREFIX if prefill else ""
        self.shuffle = shuffle

    def judge(
        self, item: JudgeInput, params: SamplingParams, *, hint_best: int | None = None,
        watch: GenerationWatch | None = None,
    ) -> Judgement:
        """Sample `params.k` judgements of `item` and vote over them.

        `hint_best` (original index) names the best response in the prompt; it
        needs a hinted template and is meant for rejective fine-tuning only.
        `watch` hears the generation's progress and may stop it (JudgingStopped).
        """
        started = time.perf_counter()
        planned = self._plan(item, params, hint_best)
        return self._run([planned], params, started, watch)[0]

    def judge_many(
        self, items: Sequence[JudgeInput], params: SamplingParams, *,
        watch: GenerationWatch | None = None,
    ) -> list[Judgement | InputError]:
        """`judge` for several items at once: the samples of every valid item go to
        the backend in one `generate` call (and one rescue call), so the model
        decodes them together. Per item, in order, its judgement or the
        InputError that kept it from being judged; each judgement's `seconds`
        is the batch's wall time divided among the items judged."""
        started = time.perf_counter()
        planned: list[_Planned | InputError] = []
        for item in items:
            try:
                planned.append(self._plan(item, params, None))
            except InputError as err:
                planned.append(err)
        valid = [p for p in planned if isinstance(p, _Planned)]
        judged = iter(self._run(valid, params, started, watch))
        return [p if isinstance(p, InputError) else next(judged) for p in planned]

    def _plan(self, item: JudgeInput, params: SamplingParams, hint_best: int | None) -> _Planned:
        """Validate `item` and render its k prompts; InputError if it cannot be judged."""
        n = len(item.responses)
        template = self.template_for(n, hinted=hint_best is not None,
                                     reference=item.reference is not None)
        validate_input(item, template)
        if hint_best is not None and not 0 <= hint_best < n:
            raise InputError(f"hint_best={hint_best} names no response (there are {n})")
        orders = shown_orders(n, params.k, params.seed, self.shuffle)
        prompts = [
            template.render(item, order, _shown_position(hint_best, order)) for order in orders
        ]
        self._check_length(prompts, params, n)
        return _Planned(item, template, orders, prompts)

    def _run(
        self, planned: list[_Planned], params: SamplingParams, started: float,
        watch: GenerationWatch | None,
    ) -> list[Judgement]:
        """Generate, parse and rescue the samples of every planned item together."""
        if not planned:
            return []
        if watch is not None:
            watch.check()
        generated = self.backend.generate(
            [prompt for p in planned for prompt in p.prompts], params,
            assistant_prefix=self.prefill, **_watched(watch),
        )
        completions = [c.model_copy(update={"text": self.prefill + c.text}) for c in generated]
        samples: list[_Pending] = []
        for p in planned:
            n = len(p.item.responses)
            for order, prompt in zip(p.orders, p.prompts, strict=True):
                completion = completions[len(samples)]
                parse = parse_output(
                    completion.text, n, score_range=p.template.score_range,
                    truncated=completion.finish_reason == "length",
                )
                samples.append(_Pending(p, order, prompt, completion, parse))
        rescues = self._rescue(samples, params, watch) if self.rescue else {}
        seconds = (time.perf_counter() - started) / len(planned)
        judgements = []
        for p in planned:
            own = [(i, s) for i, s in enumerate(samples) if s.planned is p]
            judgements.append(self._judgement(p, params, own, rescues, seconds))
        return judgements

    def _judgement(
        self,
        planned: _Planned,
        params: SamplingParams,
        pending: list[tuple[int, _Pending]],
        rescues: dict[int, tuple[Rescue, ParsedOutput | ParseFailure]],
        seconds: float,
    ) -> Judgement:
        samples = tuple(
            _sample(index, s.order, s.prompt, s.completion, s.parse, rescues.get(i))
            for index, (i, s) in enumerate(pending)
        )
        n = len(planned.item.responses)
        return Judgement(
            input=planned.item,
            template=planned.template.ref,
            model=self.backend.info,
            params=params,
            rescue_enabled=self.rescue,
            reply_prefix=self.prefill,
            samples=samples,
            vote=vote([s.scores for s in samples], n, seed=params.seed),
            created_at=datetime.now(UTC),
            seconds=seconds,
        )

    def template_for(
        self, n_responses: int, *, hinted: bool = False, reference: bool = False
    ) -> PromptTemplate:
        """The template this judge uses for `n_responses` responses; with `reference`,
        its variant that shows a reference answer (InputError if it has none)."""
        if self.template is not None:
            chosen = self.template
        else:
            chosen = POINTWISE_HINTED if hinted else default_template(n_responses)
        return with_reference(chosen) if reference else chosen

    def _check_length(self, prompts: list[str], params: SamplingParams, n: int) -> None:
        limit = self.backend.info.context_length
        if limit is None:
            return
        longest = max(self.backend.count_prompt_tokens(p) or 0 for p in set(prompts))
        forced = _FORCED_TOKENS if self.prefill else 0
        budget = params.max_new_tokens + forced + (_rescue_budget(n) if self.rescue else 0)
        if longest + budget > limit:
            raise PromptTooLongError(longest, budget, limit)

    def _rescue(
        self, samples: list[_Pending], params: SamplingParams, watch: GenerationWatch | None,
    ) -> dict[int, tuple[Rescue, ParsedOutput | ParseFailure]]:
        """Ask the model for just the numbers where a sample wrote none usable."""
        failed = [i for i, s in enumerate(samples) if isinstance(s.parse, ParseFailure)]
        if not failed:
            return {}
        requests = [
            RescueRequest(
                prompt=samples[i].prompt,
                assistant_prefix=samples[i].completion.text.rstrip() + "\n" + SCORES_PREFIX,
                n_responses=len(samples[i].planned.item.responses),
                score_range=samples[i].planned.template.score_range,
            )
            for i in failed
        ]
        rescuing = None if watch is None else watch.mapped(_as_rescue)
        continuations = self.backend.rescue_scores(requests, params, **_watched(rescuing))
        results = {}
        for i, request, continuation in zip(failed, requests, continuations, strict=True):
            original = samples[i].parse
            assert isinstance(original, ParseFailure)
            reparsed = parse_output(
                SCORES_PREFIX + continuation, request.n_responses, score_range=request.score_range
            )
            if isinstance(reparsed, ParsedOutput):
                reparsed = reparsed.model_copy(
                    update={
                        "principles": original.principles,
                        "critique": original.critique,
                        "score_format": "rescue",
                        "missing_sections": _missing_sections(original),
                    }
                )
            rescue = Rescue(
                original_failure=original,
                prefix=request.assistant_prefix,
                continuation=continuation,
            )
            results[i] = (rescue, reparsed)
        return results


@dataclass(frozen=True)
class _Planned:
    """An item ready to sample: its template, shown orders and rendered prompts."""

    item: JudgeInput
    template: PromptTemplate
    orders: list[tuple[int, ...]]
    prompts: list[str]


@dataclass(frozen=True)
class _Pending:
    """One generated sample of a planned item, parsed, before rescue."""

    planned: _Planned
    order: tuple[int, ...]
    prompt: str
    completion: Completion
    parse: ParsedOutput | ParseFailure


def _watched(watch: GenerationWatch | None) -> dict[str, Any]:
    """The `watch` keyword for a backend call, only when someone watches (a backend
    written before watches existed is still called as it was)."""
    return {} if watch is None else {"watch": watch}


def _as_rescue(event: GenerationProgress) -> GenerationProgress:
    return dataclasses.replace(event, rescue=True)


def _missing_sections(failure: ParseFailure) -> tuple[str, ...]:
    return tuple(
        name
        for name, text in (("principles", failure.principles), ("critique", failure.critique))
        if not text
    )


def _rescue_budget(n_responses: int) -> int:
    return 8 + 4 * n_responses


def _shown_position(hint_best: int | None, order: tuple[int, ...]) -> int | None:
    return None if hint_best is None else order.index(hint_best) + 1


def _sample(
    index: int,
    order: tuple[int, ...],
    prompt: str,
    completion: Completion,
    parse: ParsedOutput | ParseFailure,
    rescue: tuple[Rescue, ParsedOutput | ParseFailure] | None,
) -> Sample:
    if rescue is not None:
        rescue_record, parse = rescue
    else:
        rescue_record = None
    return Sample(
        index=index,
        shown_order=order,
        prompt=prompt,
        raw_text=completion.text,
        finish_reason=completion.finish_reason,
        parse=parse,
        rescue=rescue_record,
        scores=to_original_order(parse.scores, order) if isinstance(parse, ParsedOutput) else None,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
    )

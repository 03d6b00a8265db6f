"""Prompt templates of the pointwise GRM, in the released DeepSeek-GRM format.

The section markers (`#### ... ####`), the response wrappers and the
`Specific Criteria: / Analysis: / Scores: \\boxed{...}` output are the format the
released checkpoints were trained on (grm-method.md §1); the wording is ours.
Templates are immutable module constants looked up by name; every judgement
records the template's name and the SHA-256 of its text.

A `-reference` variant (`with_reference`) shows a reference answer to the query
(`JudgeInput.reference`) between the query and the responses, with an
instruction to check the responses against it; a judgement made with one says
so by its template's name. A template shows a reference exactly when it is such
a variant: the others refuse an input that carries one, so that a reference is
never dropped without a word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from core.errors import InputError
from core.types import JudgeInput, TemplateRef, Turn

SCORES_PREFIX = "Scores: \\boxed{"
PRINCIPLES_PREFIX = "Specific Criteria:"  # what a reply in this format starts with

_GENERAL_CRITERIA = """\
General criteria, with the points each is worth out of 10:
1. Instruction adherence (up to 4 points): does the response do exactly what the query asks, \
honouring every explicit constraint?
2. Usefulness (up to 3 points): is the content correct and does it actually help the user?
3. Level of detail (up to 2 points): is it as thorough as the query needs, without padding?
4. Relevance (up to 1 point): does it stay on the query?
Before scoring, write criteria specific to this query, each with a weight, so that the \
weights add up to 100%. Then analyse each response step by step against those criteria. \
Score strictly: a response that is wrong, unsafe or ignores the instruction must not get \
a high score however fluent it is, and better responses must get higher scores."""

_POINTWISE = """\
You are an impartial expert judge of AI assistant responses. Read the conversation \
context, the user's latest query and the {n} response(s) below, then score every \
response on its own merits with an integer from {lo} to {hi}.

#### Evaluation Criteria ####
{criteria}

#### Conversation Context ####
{context}[User Query]
{query}

#### Responses to be Scored ####
{responses}
#### Output Format Requirements ####
Reply in exactly three parts, each starting on its own line:
Specific Criteria: <the criteria for this query, with their weights>
Analysis: <a step-by-step analysis of each response against the criteria>
Scores: \\boxed{{{placeholder}}}
The last line holds exactly {n} integer score(s) from {lo} to {hi}, separated by commas, \
in the order the responses appear above.{hint}"""

_SINGLE = """\
You are an impartial expert judge of AI assistant responses. Read the conversation \
context, the user's latest query and the response below, then score the response with \
an integer from {lo} to {hi}.

#### Evaluation Criteria ####
{criteria}

#### Conversation Context ####
{context}[User Query]
{query}

#### Response to be Scored ####
{responses}
#### Output Format Requirements ####
Reply in exactly three parts, each starting on its own line:
Specific Criteria: <the criteria for this query, with their weights>
Analysis: <a step-by-step analysis of the response against the criteria>
Scores: \\boxed{{{placeholder}}}
The last line holds exactly one integer score from {lo} to {hi}.{hint}"""

_HINT = "\n\nHint: the best response is Response {best}."

# Shown before the responses by the reference variants (the DeepSeek-GRM paper gives the
# judge a reference answer on verifiable tasks, grm-method.md).
_REFERENCE = """\
#### Reference Answer ####
A reference answer to the user's query. It may be imperfect, and it is not one of the \
responses to score. Check each response against it: a response whose facts, final answer \
or result contradict the reference on a point that can be verified is wrong and must get a \
low score, however well it is written; a response that agrees with it may still lose \
points on the other criteria.
[The Begin of Reference Answer]
{reference}
[The End of Reference Answer]

"""


def _with_reference_section(text: str, before: str) -> str:
    """`text` with the reference section inserted before its `before` marker."""
    if text.count(before) != 1:
        raise ValueError(f"{before!r} must occur once in the template")
    return text.replace(before, _REFERENCE + before)


@dataclass(frozen=True)
class PromptTemplate:
    """A named prompt template for 1..max_responses responses."""

    name: str
    text: str
    description: str
    min_responses: int = 1
    max_responses: int = 9
    score_range: tuple[int, int] = (1, 10)
    hinted: bool = False
    shows_reference: bool = False  # its text has the reference answer's section
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256((self.text + (_HINT if self.hinted else "")).encode()).hexdigest()
        object.__setattr__(self, "sha256", digest)

    @property
    def ref(self) -> TemplateRef:
        return TemplateRef(name=self.name, sha256=self.sha256)

    def check(self, n_responses: int) -> None:
        """Raise InputError when this template cannot show n_responses responses."""
        if n_responses < self.min_responses or n_responses > self.max_responses:
            allowed = (
                f"exactly {self.min_responses}"
                if self.min_responses == self.max_responses
                else f"{self.min_responses} to {self.max_responses}"
            )
            raise InputError(
                f"template '{self.name}' takes {allowed} response(s), got {n_responses}"
            )

    def render(
        self, item: JudgeInput, shown_order: tuple[int, ...], best_shown: int | None = None
    ) -> str:
        """The prompt text with the responses in `shown_order`.

        `best_shown` (1-based position in the shown order) fills the hint of a
        hinted template; it is required there and refused elsewhere.
        """
        if sorted(shown_order) != list(range(len(item.responses))):
            raise ValueError(f"shown_order {shown_order} is not a permutation of the responses")
        self.check(len(shown_order))
        if self.hinted and best_shown is None:
            raise InputError(f"template '{self.name}' needs the best response to name in its hint")
        if not self.hinted and best_shown is not None:
            raise InputError(f"template '{self.name}' has no hint; use a hinted template")
        self.check_reference(item.reference)
        lo, hi = self.score_range
        n = len(shown_order)
        return self.text.format(
            n=n,
            lo=lo,
            hi=hi,
            criteria=_GENERAL_CRITERIA,
            context=_render_context(item.context),
            query=item.query,
            responses=_render_responses([item.responses[i] for i in shown_order]),
            placeholder=", ".join(f"score of Response {j + 1}" for j in range(n))
            if n > 1
            else "score",
            hint=_HINT.format(best=best_shown) if best_shown is not None else "",
            reference=item.reference or "",
        )

    def check_reference(self, reference: str | None) -> None:
        """InputError unless this template shows a reference exactly when one is given."""
        if self.shows_reference and not (reference or "").strip():
            raise InputError(f"template '{self.name}' shows a reference answer; give one, "
                             "or use a template without it")
        if not self.shows_reference and reference is not None:
            raise InputError(f"template '{self.name}' shows no reference answer; use "
                             f"'{self.name}-reference', or leave the reference out")


def _render_context(turns: tuple[Turn, ...]) -> str:
    if not turns:
        return "(no earlier turns)\n"
    return "".join(f"[{t.role.capitalize()}]\n{t.content}\n" for t in turns)


def _render_responses(responses: list[str]) -> str:
    if len(responses) == 1:
        return f"[The Begin of Response]\n{responses[0]}\n[The End of Response]\n"
    return "".join(
        f"[The Begin of Response {j}]\n{text}\n[The End of Response {j}]\n"
        for j, text in enumerate(responses, start=1)
    )


POINTWISE = PromptTemplate(
    name="grm-pointwise",
    text=_POINTWISE,
    description="DeepSeek-GRM pointwise prompt: principles, critique, one score per response",
)
POINTWISE_HINTED = PromptTemplate(
    name="grm-pointwise-hinted",
    text=_POINTWISE,
    description="pointwise prompt that names the best response (rejective fine-tuning only)",
    min_responses=2,
    hinted=True,
)
SINGLE = PromptTemplate(
    name="grm-single",
    text=_SINGLE,
    description="single-response form: one response, one score",
    max_responses=1,
)

POINTWISE_REFERENCE = PromptTemplate(
    name="grm-pointwise-reference",
    text=_with_reference_section(_POINTWISE, "#### Responses to be Scored ####"),
    description="pointwise prompt with a reference answer to check the responses against",
    shows_reference=True,
)
SINGLE_REFERENCE = PromptTemplate(
    name="grm-single-reference",
    text=_with_reference_section(_SINGLE, "#### Response to be Scored ####"),
    description="single-response form with a reference answer to check it against",
    max_responses=1,
    shows_reference=True,
)

TEMPLATES: Mapping[str, PromptTemplate] = MappingProxyType(
    {t.name: t for t in (POINTWISE, POINTWISE_HINTED, SINGLE, POINTWISE_REFERENCE,
                         SINGLE_REFERENCE)}
)
_REFERENCE_VARIANTS: Mapping[str, PromptTemplate] = MappingProxyType(
    {POINTWISE.name: POINTWISE_REFERENCE, SINGLE.name: SINGLE_REFERENCE}
)


def get_template(name: str) -> PromptTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise InputError(
            f"unknown template '{name}'; choose one of: {', '.join(sorted(TEMPLATES))}"
        ) from None


def default_template(n_responses: int) -> PromptTemplate:
    """The single-response form for one response, the pointwise one otherwise."""
    return SINGLE if n_responses == 1 else POINTWISE


def with_reference(template: PromptTemplate) -> PromptTemplate:
    """The variant of `template` that shows a reference answer (`template` itself when it
    does); InputError for a template that has none (the hinted one)."""
    if template.shows_reference:
        return template
    try:
        return _REFERENCE_VARIANTS[template.name]
    except KeyError:
        shown = ", ".join(sorted(_REFERENCE_VARIANTS))
        raise InputError(f"template '{template.name}' has no variant that shows a reference "
                         f"answer; one of {shown} has") from None

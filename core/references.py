"""Reference answers: whether a judge is shown them, and the rules for writing one.

An item may carry a reference answer (`Item.reference`, `JudgeInput.reference`);
the engine then judges it with its template's `-reference` variant. An
evaluation chooses whether the judge sees the items' references (`shown`, the
default, as every judging front does) or not (`hidden`: the same items judged
with the plain template), and records the choice in its settings, so that the two
runs can be compared item by item (`core.compare`; `grm-studio eval --reference
both` runs both and compares them). Items without a reference are judged alike
either way: a comparison of a run with references shown against one with them
hidden leaves them out (`NO_REFERENCE`), so the paired difference is the effect of
the reference on the items that have one.

Annotators edit references in the store (`core.store.reference_edits`), under the
limits here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from core.errors import InputError

ReferenceMode = Literal["shown", "hidden"]
REFERENCE_MODES: tuple[ReferenceMode, ...] = ("shown", "hidden")
BOTH = "both"  # `grm-studio eval --reference both`: one run of each mode, compared
MAX_REFERENCE_CHARS = 20_000  # the longest reference answer an annotator may write
# Why a comparison of references shown against hidden leaves an item out.
NO_REFERENCE = "no reference answer (judged alike with references shown and hidden)"


def parse_reference_mode(raw: str) -> ReferenceMode:
    """`raw` as a reference mode, 'shown' or 'hidden'; InputError naming the choices."""
    value = raw.strip().lower()
    if value not in REFERENCE_MODES:
        raise InputError(f"reference answers are 'shown' or 'hidden' (`grm-studio eval "
                         f"--reference` also takes '{BOTH}': one run of each); got '{raw}'")
    return value


def run_references(params: Mapping[str, Any]) -> ReferenceMode:
    """Whether an evaluation run (its stored settings) showed items' reference answers;
    a run stored before the choice existed showed them."""
    mode = params.get("references", "shown")
    return "hidden" if mode == "hidden" else "shown"


def references_words(mode: ReferenceMode, with_reference: int | None = None) -> str:
    """E.g. 'references hidden (12 evaluated items have one)'; `with_reference` None:
    not recorded (a run stored before)."""
    if with_reference is None:
        return f"references {mode}"
    if with_reference == 0:
        return f"references {mode} (no evaluated item has one)"
    items = "1 evaluated item has" if with_reference == 1 else \
        f"{with_reference} evaluated items have"
    return f"references {mode} ({items} one)"

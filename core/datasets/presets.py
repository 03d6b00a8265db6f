"""The formats a dataset file may have, by name: the shapes of `core.datasets.shapes`
and presets for published datasets, most written as a `FieldMap`.

`FORMATS` is in detection order: the first whose keys the first record has is
used, so a preset with more keys comes before a shape with fewer. Aliases
(rewardbench, trl, ...) are chosen by name only. A user's mapping is a format
too (`mapped_format`); with a preset it changes the preset's roles.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import partial

from core.datasets.field_map import FieldMap, LabelValues
from core.datasets.hh_rlhf import read_hh_rlhf
from core.datasets.mapped import read_mapped
from core.datasets.shapes import SHAPES, Shape
from core.errors import InputError

MAPPED = "mapping"  # the name of a format given as a field mapping

_BETTER_OF_TWO = LabelValues(  # HelpSteer: -3..-1 response 1 better, 0 the same, 1..3 response 2
    tuple((str(v), None if v == 0 else (0 if v < 0 else 1)) for v in range(-3, 4))
)
_WINNER = LabelValues((("model_a", 0), ("model_b", 1), ("tie", None), ("tie (bothbad)", None)))
_A_OR_B = LabelValues((("A", 0), ("B", 1), ("tie", None)))
_RB_PAIRS = FieldMap(query="prompt", chosen="chosen", rejected="rejected", id="id",
                     category="subset")


def preset(
    name: str, detect_keys: tuple[str, ...], fmap: FieldMap, summary: str, *, detect: bool = True
) -> Shape:
    """A format read with a field map, recognised by `detect_keys`."""
    fmap.check()
    return Shape(name, detect_keys, (), partial(read_mapped, fmap), summary, fmap, detect)


PRESETS: tuple[Shape, ...] = (
    preset(
        "chatbot_arena",
        ("model_a", "model_b", "winner", "conversation_a", "conversation_b", "anony"),
        FieldMap(responses=("conversation_a", "conversation_b"), best="winner",
                 label_values=_WINNER, turn="turn", id="question_id", category="language"),
        "LMSYS Chatbot Arena conversations (tie and tie (bothbad) are ties; a multi-turn "
        "battle: each response is its own conversation)",
    ),
    preset(
        "mt_bench",
        ("model_a", "model_b", "winner", "conversation_a", "conversation_b", "judge", "turn"),
        FieldMap(responses=("conversation_a", "conversation_b"), best="winner",
                 label_values=_WINNER, turn="turn", id="question_id", labeller="judge"),
        "MT-Bench human judgements: each judge's label on one item per pair and turn judged "
        "(a second turn: each response is its own conversation)",
    ),
    preset(
        "helpsteer3",
        ("context", "response1", "response2", "overall_preference"),
        FieldMap(query="context", responses=("response1", "response2"),
                 best="overall_preference", label_values=_BETTER_OF_TWO, category="domain"),
        "HelpSteer3 preference (-3..3; 0 is a tie)",
    ),
    preset(
        "helpsteer2",
        ("prompt", "response_1", "response_2", "preference_strength"),
        FieldMap(query="prompt", responses=("response_1", "response_2"),
                 best="preference_strength", label_values=_BETTER_OF_TWO),
        "HelpSteer2 preference (-3..3; 0 is a tie)",
    ),
    preset(
        "llm_comparator",
        ("input_text", "output_text_a", "output_text_b"),
        FieldMap(query="input_text", responses=("output_text_a", "output_text_b"),
                 best="custom_fields.label", label_values=_A_OR_B, category="tags[0]",
                 id="custom_fields.id"),
        "PAIR LLM Comparator JSON (the label is the custom field 'label': A, B or tie)",
    ),
    preset(
        "ultrafeedback",
        ("instruction", "completions"),
        FieldMap(query="instruction", responses=("completions[].response",),
                 ratings=("completions[].fine-grained_score",), category="source"),
        "UltraFeedback with per-completion ratings (the top fine-grained score is best)",
    ),
    preset(
        "ultrafeedback_binarized",
        ("prompt", "chosen", "rejected", "score_chosen", "score_rejected"),
        FieldMap(query="prompt", chosen="chosen", rejected="rejected",
                 ratings=("score_chosen", "score_rejected"), id="prompt_id"),
        "UltraFeedback binarized (equal scores are a tie)",
    ),
)
ALIASES: tuple[Shape, ...] = (
    preset("rewardbench", (), _RB_PAIRS, "RewardBench v1 pairs", detect=False),
    preset("rewardbench2", (), _RB_PAIRS, "RewardBench 2: lists of chosen and rejected "
           "(best-of-n); every chosen is correct, to score above every rejected",
           detect=False),
    preset("trl", (), FieldMap(query="prompt", chosen="chosen", rejected="rejected"),
           "TRL preference, standard or conversational", detect=False),
    Shape("trl_implicit", ("chosen", "rejected"), (), read_hh_rlhf,
          "TRL preference with an implicit prompt (conversations)", detect=False),
)
FORMATS: tuple[Shape, ...] = (*PRESETS, *SHAPES, *ALIASES)
FORMAT_NAMES: tuple[str, ...] = tuple(s.name for s in FORMATS)


def format_named(name: str) -> Shape:
    """The format called `name`; InputError listing the known ones otherwise."""
    for shape in FORMATS:
        if shape.name == name:
            return shape
    raise InputError(
        f"unknown dataset shape {name!r}; known shapes: {', '.join(FORMAT_NAMES)} (shapes "
        "and presets)"
    )


def detect_format(keys: Collection[str]) -> Shape | None:
    """The first detectable format whose keys the record has, or None."""
    return next((s for s in FORMATS if s.detect and s.matches(keys)), None)


def mapped_format(fmap: FieldMap, base: Shape | None = None) -> Shape:
    """The format that reads with `fmap`: on its own, or changing `base`'s roles."""
    if base is not None:
        if base.field_map is None:
            raise InputError(
                f"the '{base.name}' format is read by its own code, so its roles cannot be "
                "changed; map every role yourself instead (responses or chosen and rejected, "
                "and the rest)"
            )
        fmap = base.field_map.updated(fmap)
    fmap.check()
    name = MAPPED if base is None else f"{base.name} with {MAPPED}"
    return Shape(name, fmap.required_keys(), (), partial(read_mapped, fmap), "", fmap, False)


def is_partial(fmap: FieldMap) -> bool:
    """A map that names no responses: it can only change a preset's roles."""
    return not fmap.responses and fmap.chosen is None and fmap.rejected is None

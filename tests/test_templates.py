import pytest

from core.errors import InputError
from core.templates import POINTWISE, POINTWISE_HINTED, SINGLE, TEMPLATES, get_template
from core.types import JudgeInput, Turn

ITEM = JudgeInput(
    query="Name a prime.",
    responses=("Four.", "Seven.", "Nine."),
    context=(Turn(role="user", content="Hi"), Turn(role="assistant", content="Hello!")),
)


def test_pointwise_has_the_released_checkpoint_sections_in_order():
    text = POINTWISE.render(ITEM, (2, 0, 1))
    markers = [
        "#### Evaluation Criteria ####",
        "#### Conversation Context ####",
        "#### Responses to be Scored ####",
        "#### Output Format Requirements ####",
    ]
    positions = [text.index(m) for m in markers]
    assert positions == sorted(positions)
    assert "Scores: \\boxed{" in text
    assert "[User]\nHi\n[Assistant]\nHello!" in text


def test_responses_are_wrapped_in_shown_order():
    text = POINTWISE.render(ITEM, (2, 0, 1))
    first = text.index("[The Begin of Response 1]\nNine.\n[The End of Response 1]")
    second = text.index("[The Begin of Response 2]\nFour.\n[The End of Response 2]")
    third = text.index("[The Begin of Response 3]\nSeven.\n[The End of Response 3]")
    assert first < second < third


def test_hinted_names_the_shown_position_and_plain_has_no_hint():
    assert "Hint: the best response is Response 3." in POINTWISE_HINTED.render(ITEM, (0, 2, 1), 3)
    assert "Hint" not in POINTWISE.render(ITEM, (0, 2, 1))
    with pytest.raises(InputError):
        POINTWISE_HINTED.render(ITEM, (0, 1, 2))
    with pytest.raises(InputError):
        POINTWISE.render(ITEM, (0, 1, 2), 1)


def test_single_form_takes_exactly_one_response():
    one = JudgeInput(query="q", responses=("only",))
    assert "[The Begin of Response]\nonly\n[The End of Response]" in SINGLE.render(one, (0,))
    with pytest.raises(InputError, match="exactly 1"):
        SINGLE.check(2)


def test_too_many_responses_is_a_clear_error():
    with pytest.raises(InputError, match=r"1 to 9 response.*got 12"):
        POINTWISE.check(12)


def test_hashes_are_distinct_and_stable():
    hashes = {t.sha256 for t in TEMPLATES.values()}
    assert len(hashes) == len(TEMPLATES)
    assert POINTWISE.ref.sha256 == POINTWISE.sha256 and len(POINTWISE.sha256) == 64


def test_unknown_template_lists_the_choices():
    with pytest.raises(InputError, match="grm-pointwise"):
        get_template("nope")


def test_render_rejects_a_non_permutation():
    with pytest.raises(ValueError, match="not a permutation"):
        POINTWISE.render(ITEM, (0, 0, 1))

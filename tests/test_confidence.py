"""How far to trust a vote (`core.confidence`): strong when the samples agree on their
own, wrote their own scores and lead by more than their noise; weak for each cause
on its own; and the vote panel and the CLI report say the same in words."""

import pytest

from core import Judge, JudgeInput, SamplingParams, ScriptedBackend
from core.confidence import ConfidenceLevel, verdict_confidence
from core.report import render_vote
from core.types import Judgement
from webapp.cards import vote_panel_html

PAIR = JudgeInput(query="Capital of Australia?", responses=("Sydney.", "Canberra."))
ONE = JudgeInput(query="Say hi", responses=("hi",))
NO_SCORES = "Specific Criteria: geography\nAnalysis: the first one names the capital"


def boxed(*scores: int) -> str:
    listed = ", ".join(str(s) for s in scores)
    return f"Specific Criteria: facts\nAnalysis: checked\nScores: \\boxed{{{listed}}}"


def judged(item: JudgeInput, completions: list[str], *, rescues: tuple[str, ...] = (),
           rescue: bool = True) -> Judgement:
    backend = ScriptedBackend(completions, rescues=rescues)
    judge = Judge(backend, rescue=rescue, shuffle=False)
    return judge.judge(item, SamplingParams(k=len(completions), seed=1))


def test_agreeing_samples_with_their_own_scores_and_a_clear_margin_are_strong():
    confidence = verdict_confidence(judged(PAIR, [boxed(9, 2), boxed(8, 3), boxed(9, 1),
                                                  boxed(8, 2)]))
    assert confidence.level is ConfidenceLevel.STRONG and confidence.reasons == ()
    assert (confidence.agreeing, confidence.valid, confidence.rescued, confidence.margin) == (
        4, 4, 0, 26)
    assert confidence.margin_noise == pytest.approx(2.582, abs=1e-3)  # 2 x sd(7, 5, 8, 6)
    assert confidence.sentence == (
        "4 of 4 samples pick the winner on their own, none needed a score rescue and the "
        "margin is clear of the noise: this verdict is strong.")


def test_every_sample_rescued_is_weak_however_much_they_agree():
    """The walk's case: the model never wrote a score line; the rescue pass did, 4 times."""
    judgement = judged(PAIR, [NO_SCORES] * 4, rescues=("8, 3}",) * 4)
    assert judgement.vote.winner == 0 and not judgement.vote.split  # "Sydney", unanimously
    confidence = verdict_confidence(judgement)
    assert confidence.level is ConfidenceLevel.WEAK and confidence.rescued == 4
    assert confidence.sentence == "4 of 4 samples needed a score rescue: this verdict is weak."


def test_one_rescue_in_four_is_moderate():
    judgement = judged(PAIR, [boxed(2, 9), boxed(3, 8), boxed(1, 9), NO_SCORES],
                       rescues=("2, 8}",))
    confidence = verdict_confidence(judgement)
    assert confidence.level is ConfidenceLevel.MODERATE
    assert confidence.reasons == ("1 of 4 samples needed a score rescue",)


def test_samples_that_split_are_weak():
    # Sample winners R1, R2, R1, R2: the vote picks R1 (24 to 12), but only half agree.
    judgement = judged(PAIR, [boxed(9, 1), boxed(3, 4), boxed(8, 2), boxed(4, 5)])
    assert judgement.vote.winner == 0 and judgement.vote.split
    confidence = verdict_confidence(judgement)
    assert confidence.level is ConfidenceLevel.WEAK and confidence.agreeing == 2
    assert confidence.reasons[0] == (
        "only 2 of 4 samples pick the winner on their own (the samples split)")


def test_three_of_four_agreeing_is_enough_but_the_margin_within_noise_is_weak():
    # Leads 1, 1, 1, -2: the margin of 1 point against a standard error of 3 on the sum.
    judgement = judged(PAIR, [boxed(6, 5), boxed(6, 5), boxed(6, 5), boxed(4, 6)])
    confidence = verdict_confidence(judgement)
    assert confidence.level is ConfidenceLevel.WEAK and confidence.agreeing == 3
    assert confidence.reasons == (
        ("the margin of 1 point is within the samples' noise (the samples' own leads for "
         "the winner run from -2 to 1: ±3.0 on the sum)"),)


def test_half_the_samples_failing_to_parse_is_weak_and_one_in_four_moderate():
    half = judged(PAIR, [boxed(2, 9), boxed(3, 8), NO_SCORES, NO_SCORES], rescue=False)
    assert verdict_confidence(half).level is ConfidenceLevel.WEAK
    assert verdict_confidence(half).reasons == ("2 of 4 samples gave no usable scores",)
    quarter = judged(PAIR, [boxed(2, 9), boxed(3, 8), boxed(2, 8), NO_SCORES], rescue=False)
    assert verdict_confidence(quarter).level is ConfidenceLevel.MODERATE


def test_a_tie_and_no_valid_sample_are_weak():
    tie = verdict_confidence(judged(PAIR, [boxed(8, 3), boxed(3, 8)]))
    assert tie.level is ConfidenceLevel.WEAK and "the vote is tied at the top" in tie.reasons
    nothing = verdict_confidence(judged(PAIR, [NO_SCORES, NO_SCORES], rescue=False))
    assert nothing.level is ConfidenceLevel.WEAK
    assert nothing.reasons == ("2 of 2 samples gave no usable scores",)


def test_a_single_sample_is_at_most_moderate_and_one_response_needs_no_agreement():
    single = verdict_confidence(judged(PAIR, [boxed(2, 9)]))
    assert single.level is ConfidenceLevel.MODERATE
    assert single.reasons == ("only 1 valid sample, nothing to check its verdict against",)
    alone = verdict_confidence(judged(ONE, [boxed(7), boxed(8)]))
    assert alone.level is ConfidenceLevel.STRONG and alone.agreeing is None
    assert alone.sentence == "Every sample wrote its own scores: this verdict is strong."


# ---------------------------------------------------------------- what the pages say


def test_a_weak_verdict_is_not_shown_as_a_green_winner():
    html = vote_panel_html(judged(PAIR, [NO_SCORES] * 4, rescues=("8, 3}",) * 4))
    assert "4 of 4 samples needed a score rescue: this verdict is weak." in html
    assert 'data-confidence="weak"' in html and "Leaning R1" in html
    assert "WINNER" not in html and "Winner:" not in html and "grm-flag--win" not in html
    assert "leaning (weak)</td>" in html  # the totals table does not say "winner" either


def test_a_strong_verdict_keeps_its_green_winner_and_says_why():
    html = vote_panel_html(judged(PAIR, [boxed(2, 9), boxed(3, 8), boxed(1, 9), boxed(2, 8)]))
    assert 'grm-flag--win">WINNER' in html and "Winner: R2 · margin 26" in html
    assert 'data-confidence="strong"' in html and "this verdict is strong." in html


def test_a_tie_stays_explicit_with_its_confidence():
    html = vote_panel_html(judged(PAIR, [boxed(8, 3), boxed(3, 8)]))
    assert "TIE between R1, R2" in html and "Winner:" not in html and "LEANING" not in html
    assert "The vote is tied at the top" in html and 'data-confidence="weak"' in html


def test_the_cli_report_and_the_card_give_the_same_words():
    judgement = judged(PAIR, [boxed(9, 1), boxed(3, 4), boxed(8, 2), boxed(4, 5)])
    sentence = verdict_confidence(judgement).sentence
    assert f"Confidence: {sentence}" in render_vote(judgement)
    assert sentence.replace("'", "&#x27;") in vote_panel_html(judgement)

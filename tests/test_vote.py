from core.vote import strict_winner, tie_break_order, vote


def test_sum_vote_picks_highest_total_and_margin():
    v = vote([(7, 5), (6, 6), (8, 3)], 2, seed=0)
    assert v.totals == (21, 14)
    assert v.means == (7.0, 14 / 3)
    assert v.distribution == ((7, 6, 8), (5, 6, 3))
    assert (v.winner, v.runner_up, v.margin) == (0, 1, 7)
    assert not v.tie
    assert v.top == (0,)


def test_invalid_samples_are_excluded_and_counted():
    v = vote([(7, 5), None, None], 2)
    assert v.valid_samples == 1
    assert v.invalid_samples == 2
    assert v.totals == (7, 5)


def test_tie_is_flagged_and_broken_by_recorded_shuffle():
    v = vote([(7, 5), (5, 7)], 2, seed=3)
    assert v.tie
    assert v.top == (0, 1)
    assert v.tie_break_order == tie_break_order(2, 3)
    assert v.winner == next(i for i in v.tie_break_order if i in v.top)
    assert v.margin == 0


def test_tie_break_depends_on_seed_and_only_among_tied():
    winners = {vote([(5, 5, 1)], 3, seed=s).winner for s in range(40)}
    assert winners == {0, 1}  # never the lower response 2, both tied ones reachable


def test_split_when_samples_disagree_on_the_winner():
    assert vote([(7, 5), (4, 6), (8, 1)], 2).split
    assert not vote([(7, 5), (9, 6)], 2).split
    assert vote([(7, 5), (6, 6)], 2).split  # a tied sample disagrees with a decided one
    assert vote([(7, 5), (6, 6)], 2).sample_winners == (0, None)


def test_no_valid_samples_gives_no_winner():
    v = vote([None, None], 3)
    assert v.winner is None
    assert v.totals == (0, 0, 0)
    assert v.means == (None, None, None)
    assert v.invalid_samples == 2


def test_single_response_has_no_margin_or_split():
    v = vote([(8,), (6,)], 1)
    assert v.winner == 0 and v.totals == (14,)
    assert v.margin is None and v.runner_up is None and not v.split


def test_strict_winner():
    assert strict_winner([3, 9, 2]) == 1
    assert strict_winner([9, 9, 2]) is None


def test_meta_guided_vote_counts_only_the_top_rated_valid_samples():
    from core.vote import meta_guided_vote, meta_selected

    rows = [(9, 1), (1, 9), None, (2, 8)]
    meta = [0.9, 0.1, 0.99, 0.5]
    # the invalid sample is never chosen, however high its meta score
    assert meta_selected(rows, meta) == (0, 3)
    guided = meta_guided_vote(rows, meta, 2)
    assert guided.totals == (11, 9) and guided.winner == 0
    assert guided.valid_samples == 2 and guided.invalid_samples == 2
    assert meta_guided_vote(rows, meta, 2, k_meta=3).totals == (12, 18)


def test_meta_guided_vote_rejects_mismatched_scores():
    import pytest

    from core.vote import meta_guided_vote

    with pytest.raises(ValueError, match="2 meta scores for 3 samples"):
        meta_guided_vote([(1,), (2,), (3,)], [0.1, 0.2], 1)

"""The numbers behind the Insights page: what the judge gets right, and how.

Pure computation over the store; plotting is the front's business. The judge's
verdict on an item is its latest judgement's vote, scored by the strict rule
(see `core.agreement`). Accuracy, accuracy by margin and the score histogram
use the item's label, the one evaluation uses (`core.labels.item_label`: this
studio's annotators' majority, else the dataset's). In the kappa matrix the
"dataset" rater is what the dataset says on its own (`core.labels.dataset_label`:
its ground-truth rows and imported annotators' labels, pooled, their majority),
a rater beside the annotators and the judge. Only items with two or more
responses count towards accuracy and agreement. `self_consistency` reads how much
each latest judgement's samples agree (`core.consistency`) against its accuracy.
Empty inputs give empty results (n = 0, value None, a note), never NaN.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVarTuple

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity
from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from core.agreement import Label, cohen_kappa, judge_accuracy, judge_label, strict_correct
from core.consistency import SelfConsistency, judgement_consistency, self_consistency_of
from core.errors import InputError
from core.estimates import Estimate, proportion
from core.labels import Accepted, ItemLabel, LabelValue, NoLabel, correct_of
from core.store.judgements import latest_judgement_ids, load_judgement
from core.store.labels import dataset_labels, is_current, item_labels
from core.store.schema import Annotation, Annotator, Dataset, Item, JudgementRow, SampleRow
from core.types import Judgement
from core.vote import strict_winner

JUDGE = "judge"
DATASET = "dataset"  # the kappa matrix's rater for what the dataset says


@dataclass(frozen=True)
class CategoryAccuracy:
    category: str | None  # None: the dataset's items without a category
    accuracy: Estimate  # n: judged items of the category with a label
    judged: int


@dataclass(frozen=True)
class DatasetAccuracy:
    dataset: str
    accuracy: Estimate  # n: judged items with a label
    judged: int  # items of two or more responses with a judgement
    by_category: tuple[CategoryAccuracy, ...]  # empty when the dataset has no categories


@dataclass(frozen=True)
class AgreementMatrix:
    """Cohen's kappa between every two raters, square and symmetric (a heatmap)."""

    dataset: str | None
    raters: tuple[str, ...]  # annotators, then "judge" and "dataset" when they label
    kappa: tuple[tuple[Estimate | None, ...], ...]  # None: diagonal, or < 2 shared items
    shared: tuple[tuple[int, ...], ...]  # items both raters label (diagonal: the rater's)
    note: str | None = None


@dataclass(frozen=True)
class ScoreDistribution:
    """Counts of per-sample scores, per score value, by what the response is."""

    dataset: str | None
    values: tuple[int, ...]  # every score value seen, ascending
    best: tuple[int, ...]  # scores of the labelled best response (the item's label)
    other: tuple[int, ...]  # scores of the other responses of those items
    unknown: tuple[int, ...]  # the item has no label, or is labelled a tie
    samples: int  # valid samples counted
    note: str | None = None


@dataclass(frozen=True)
class MarginBin:
    low: int  # the vote margin, in summed score points, from `low`
    high: int | None  # up to `high` exclusive; None: no upper bound
    label: str
    accuracy: Estimate


@dataclass(frozen=True)
class PositionBias:
    """Does the response shown first win its sample more often than chance?

    CIs are Wilson 95% intervals (`core.estimates.proportion`)."""

    dataset: str | None
    samples: int  # valid samples of judgements of two or more responses
    decisive: int  # of those, samples with a strict winner
    first_wins: int  # decisive samples won by the response shown first
    first_win_rate: Estimate  # first_wins / decisive
    expected: float | None  # the rate with no bias: mean of 1/n over decisive samples
    wins_by_shown_position: tuple[int, ...]  # decisive samples won at shown position j
    tie_rate: Estimate  # (samples - decisive) / samples
    note: str | None = None


@dataclass(frozen=True)
class TermSpread:
    term: str
    samples: int  # in how many samples' principles the term appears


@dataclass(frozen=True)
class PrincipleDiversity:
    """How different the principles of one judgement's samples are (TF-IDF cosine)."""

    samples: tuple[int, ...]  # sample indices with principles, the matrix's order
    missing: tuple[int, ...]  # sample indices with no principles text
    similarity: tuple[tuple[float, ...], ...]
    mean_similarity: float | None  # mean over distinct pairs
    shared_terms: tuple[TermSpread, ...]  # in two or more samples, most first
    distinct_terms: tuple[TermSpread, ...]  # not in every sample, fewest first
    note: str | None = None


_Row = TypeVarTuple("_Row")  # the columns of a query
_Rule = Callable[[Session, Iterable[int]], dict[int, ItemLabel | NoLabel]]


class _Judged(NamedTuple):
    item_id: int
    dataset: str
    category: str | None
    totals: list[int]
    margin: int | None
    valid_samples: int


def _empty(note: str) -> Estimate:
    return Estimate(None, None, None, 0, note)


def _check_dataset(session: Session, dataset: str | None) -> None:
    if dataset is None:
        return
    if session.scalar(select(Dataset.id).where(Dataset.name == dataset)) is None:
        raise InputError(f"there is no dataset named '{dataset}'; pick an imported one")


def _in_dataset(query: Select[*_Row], item_id: Any, dataset: str | None) -> Select[*_Row]:
    if dataset is None:
        return query
    return query.where(item_id.in_(select(Item.id).join(Dataset).where(Dataset.name == dataset)))


def _latest_judged(session: Session, dataset: str | None) -> list[_Judged]:
    """Each preference item's latest judgement."""
    latest = _in_dataset(latest_judgement_ids(), JudgementRow.item_id, dataset)
    rows = session.execute(
        select(Item.id, Dataset.name, Item.category, JudgementRow.totals, JudgementRow.margin,
               JudgementRow.valid_samples)
        .join(Item, Item.id == JudgementRow.item_id).join(Dataset, Dataset.id == Item.dataset_id)
        .where(JudgementRow.id.in_(latest), Item.n_responses >= 2)
        .order_by(Item.id)
    )
    return [_Judged(*row) for row in rows]


def _labels(
    session: Session, dataset: str | None, *, rule: _Rule = item_labels
) -> dict[int, LabelValue]:
    """item id -> its label's best response (None: a tie; an `Accepted` set: a best-of-n
    item's correct responses), for the preference items that have one: by `rule`, the
    item's label (default) or `dataset_labels`."""
    query = _in_dataset(select(Item.id).where(Item.n_responses >= 2), Item.id, dataset)
    labels = rule(session, session.scalars(query))
    return {item: label.best for item, label in labels.items() if isinstance(label, ItemLabel)}


def _accuracy(judged: Sequence[_Judged], labels: dict[int, LabelValue]) -> Estimate:
    if not judged:
        return _empty("no judged items")
    pairs = [(j.totals, labels[j.item_id]) for j in judged if j.item_id in labels]
    if not pairs:
        return _empty("no judged item has a label")
    return judge_accuracy(pairs)


def accuracy_by_dataset(engine: Engine) -> list[DatasetAccuracy]:
    """Per dataset (by name), judge accuracy against the items' labels, and per category
    (every category of the dataset's items, judged or not; None: no category)."""
    with Session(engine) as session:
        categories: dict[str, set[str | None]] = defaultdict(set)
        for name, category in session.execute(
            select(Dataset.name, Item.category).outerjoin(Item).distinct()
        ):
            categories[name].add(category)
        judged = _latest_judged(session, None)
        labels = _labels(session, None)
    by_category: dict[tuple[str, str | None], list[_Judged]] = defaultdict(list)
    for j in judged:
        by_category[j.dataset, j.category].append(j)
    result = []
    for name in sorted(categories):
        names = sorted(categories[name], key=lambda c: (c is None, c or ""))
        split = tuple(
            CategoryAccuracy(c, _accuracy(by_category[name, c], labels),
                             len(by_category[name, c]))
            for c in names
        ) if names != [None] else ()
        items = [j for c in names for j in by_category[name, c]]
        result.append(DatasetAccuracy(name, _accuracy(items, labels), len(items), split))
    return result


def _current_labels(session: Session, dataset: str | None) -> dict[str, dict[int, Label]]:
    """annotator -> {item id: current label} over preference items, in one query."""
    query = (
        select(Annotator.name, Annotation.item_id, Annotation.best)
        .join(Annotator, Annotator.id == Annotation.annotator_id)
        .join(Item, Item.id == Annotation.item_id)
        .where(Item.n_responses >= 2, is_current())
    )
    ratings: dict[str, dict[int, Label]] = defaultdict(dict)
    for name, item_id, best in session.execute(_in_dataset(query, Annotation.item_id, dataset)):
        reserved = name in (JUDGE, DATASET)
        ratings[f"{name} (annotator)" if reserved else name][item_id] = best
    return ratings


def agreement_matrix(
    engine: Engine, dataset: str | None = None, *, seed: int = 0
) -> AgreementMatrix:
    """Cohen's kappa between annotators, the judge and the dataset, pair by pair.

    The judge's label is `judge_label` of its latest totals; a judgement with no
    valid sample gives no label. The dataset's is `dataset_label` (what the dataset
    says, whatever this studio's annotators say); a best-of-n label with several correct
    responses is no category of one best response, so those items are left out of the
    dataset's. Ties are a category of their own."""
    with Session(engine) as session:
        _check_dataset(session, dataset)
        ratings = dict(sorted(_current_labels(session, dataset).items()))
        judge = {j.item_id: judge_label(j.totals) for j in _latest_judged(session, dataset)
                 if j.valid_samples > 0}
        says: dict[int, Label] = {
            item: best for item, best in _labels(session, dataset, rule=dataset_labels).items()
            if not isinstance(best, Accepted)}
    ratings.update({name: labels for name, labels in ((JUDGE, judge), (DATASET, says)) if labels})
    raters = tuple(ratings)
    size = len(raters)
    kappa: list[list[Estimate | None]] = [[None] * size for _ in range(size)]
    shared = [[len(ratings[r]) if i == j else 0 for j, _ in enumerate(raters)]
              for i, r in enumerate(raters)]
    for (i, a), (j, b) in itertools.combinations(enumerate(raters), 2):
        items = sorted(ratings[a].keys() & ratings[b].keys())
        shared[i][j] = shared[j][i] = len(items)
        if len(items) >= 2:
            kappa[i][j] = kappa[j][i] = cohen_kappa(
                [ratings[a][k] for k in items], [ratings[b][k] for k in items], seed=seed
            )
    note = None if size >= 2 else "fewer than two raters have labels"
    return AgreementMatrix(
        dataset, raters, tuple(map(tuple, kappa)), tuple(map(tuple, shared)), note
    )


def _valid_samples(
    session: Session, dataset: str | None
) -> list[tuple[list[int], list[int], int | None]]:
    """(scores, shown order, item id) of every valid sample (all judgements)."""
    query = select(SampleRow.scores, SampleRow.shown_order, JudgementRow.item_id).join(
        JudgementRow, JudgementRow.id == SampleRow.judgement_id
    )
    rows = session.execute(_in_dataset(query, JudgementRow.item_id, dataset))
    return [(scores, order, item) for scores, order, item in rows if scores is not None]


def score_distributions(engine: Engine, dataset: str | None = None) -> ScoreDistribution:
    """Histogram of the scores of every valid sample (all judgements, not just the
    latest), split by whether the response is the best by the item's label (one of the
    correct responses, for a best-of-n item with several)."""
    with Session(engine) as session:
        _check_dataset(session, dataset)
        samples = _valid_samples(session, dataset)
        labels = _labels(session, dataset)
    counts: dict[str, Counter[int]] = {"best": Counter(), "other": Counter(), "unknown": Counter()}
    for scores, _, item_id in samples:
        best = labels.get(item_id) if item_id is not None else None
        for response, score in enumerate(scores):
            group = ("unknown" if best is None
                     else "best" if response in correct_of(best) else "other")
            counts[group][score] += 1
    values = tuple(sorted(set().union(*counts.values())))
    per = {g: tuple(c[v] for v in values) for g, c in counts.items()}
    note = None if samples else "no valid samples"
    return ScoreDistribution(
        dataset, values, per["best"], per["other"], per["unknown"], len(samples), note
    )


def _bin_label(low: int, high: int | None) -> str:
    if low == 0:
        return "tie (0)"
    if high is None:
        return f"{low}+"
    return str(low) if high == low + 1 else f"{low}-{high - 1}"


def margin_vs_accuracy(
    engine: Engine, dataset: str | None = None, bins: Sequence[int] = (1, 2, 4, 8, 16, 32),
) -> list[MarginBin]:
    """Accuracy of the latest judgements by their vote margin (items with a label).

    `bins` are the lower edges of the bins of positive margins, from 1 up; ties
    (margin 0) are always a bin of their own, first. Judgements without a valid
    sample have no margin and are left out. Every bin is returned, empty or not."""
    edges = list(bins)
    if not edges or edges[0] != 1 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise InputError(f"margin bins must start at 1 and increase, got {tuple(bins)}")
    with Session(engine) as session:
        _check_dataset(session, dataset)
        judged = _latest_judged(session, dataset)
        labels = _labels(session, dataset)
    lows = [0, *edges]
    pairs: list[list[tuple[list[int], LabelValue]]] = [[] for _ in lows]
    for j in judged:
        if j.item_id in labels and j.margin is not None:
            pairs[int(np.searchsorted(lows, j.margin, side="right")) - 1].append(
                (j.totals, labels[j.item_id])
            )
    highs: list[int | None] = [*lows[1:], None]
    return [
        MarginBin(low, high, _bin_label(low, high),
                  judge_accuracy(p) if p else _empty("no items in this margin bin"))
        for low, high, p in zip(lows, highs, pairs, strict=True)
    ]


def position_bias(engine: Engine, dataset: str | None = None) -> PositionBias:
    """How often each valid sample's strict winner is the response it showed first
    (all judgements of two or more responses), against 1/n for no bias."""
    with Session(engine) as session:
        _check_dataset(session, dataset)
        samples = [(s, o) for s, o, _ in _valid_samples(session, dataset) if len(o) >= 2]
    return position_bias_of(samples, dataset=dataset)


def position_bias_of(
    samples: Sequence[tuple[Sequence[int], Sequence[int]]], *, dataset: str | None = None
) -> PositionBias:
    """Position bias over valid samples given as (scores in original order, shown
    order), each of two or more responses."""
    wins: Counter[int] = Counter()
    chance = 0.0
    for scores, order in samples:
        winner = strict_winner(scores)
        if winner is not None:
            wins[order.index(winner)] += 1
            chance += 1 / len(order)
    decisive = sum(wins.values())
    width = max((len(o) for _, o in samples), default=0)
    return PositionBias(
        dataset=dataset,
        samples=len(samples),
        decisive=decisive,
        first_wins=wins[0],
        first_win_rate=proportion(wins[0], decisive, empty="no valid sample has a strict winner"),
        expected=chance / decisive if decisive else None,
        wins_by_shown_position=tuple(wins[j] for j in range(width)),
        tie_rate=proportion(len(samples) - decisive, len(samples), empty="no valid samples"),
        note=None if samples else "no valid samples of two or more responses",
    )


def _spread(
    terms: np.ndarray, df: np.ndarray, order: Sequence[int], top: int
) -> tuple[TermSpread, ...]:
    return tuple(TermSpread(str(terms[i]), int(df[i])) for i in order[:top])


def principle_diversity(judgement: Judgement, *, top_terms: int = 10) -> PrincipleDiversity:
    """Pairwise TF-IDF cosine similarity of the samples' principles, and the terms
    most and least shared (English stop words left out). Samples with no
    principles text are listed in `missing`."""
    texts = {s.index: s.parse.principles for s in judgement.samples}
    present = tuple(i for i, t in texts.items() if t and t.strip())
    missing = tuple(i for i in texts if i not in present)
    if not present:
        return PrincipleDiversity((), missing, (), None, (), (), "no sample has principles")
    try:
        matrix = TfidfVectorizer(stop_words="english").fit(texts[i] for i in present)
        vectors = matrix.transform(texts[i] for i in present)
    except ValueError:  # nothing but stop words
        note = "the principles hold no terms"
        return PrincipleDiversity(present, missing, (), None, (), (), note)
    similarity = np.clip(cosine_similarity(vectors), 0.0, 1.0)
    np.fill_diagonal(similarity, 1.0)
    upper = similarity[np.triu_indices(len(present), k=1)]
    terms = matrix.get_feature_names_out()
    df = np.asarray((vectors > 0).sum(axis=0)).ravel()
    by_most = [t for t in sorted(range(len(terms)), key=lambda t: (-df[t], terms[t])) if df[t] > 1]
    by_fewest = [t for t in sorted(range(len(terms)), key=lambda t: (df[t], terms[t]))
                 if df[t] < len(present)]
    return PrincipleDiversity(
        samples=present,
        missing=missing,
        similarity=tuple(tuple(float(x) for x in row) for row in similarity),
        mean_similarity=float(upper.mean()) if upper.size else None,
        shared_terms=_spread(terms, df, by_most, top_terms),
        distinct_terms=_spread(terms, df, by_fewest, top_terms),
        note=None if upper.size else "only one sample has principles",
    )


def self_consistency(engine: Engine, dataset: str | None = None) -> SelfConsistency:
    """How much the samples of each preference item's latest judgement of two or more
    samples agree (`core.consistency`; a greedy judgement has nothing to agree with),
    and the accuracy of its vote against that (strict rule, items with a label)."""
    with Session(engine) as session:
        _check_dataset(session, dataset)
        sampled = latest_judgement_ids().where(JudgementRow.k >= 2)
        latest = _in_dataset(sampled, JudgementRow.item_id, dataset)
        rows = session.execute(
            select(JudgementRow.id, Item.id).join(Item, Item.id == JudgementRow.item_id)
            .where(JudgementRow.id.in_(latest), Item.n_responses >= 2).order_by(Item.id))
        labels = _labels(session, dataset)
        judged = []
        for judgement_id, item_id in rows.all():
            judgement = load_judgement(session, judgement_id)
            right = (strict_correct(judgement.vote.totals, labels[item_id])
                     if item_id in labels else None)
            judged.append((judgement_consistency(judgement, judgement_id, item_id), right))
    return self_consistency_of(judged, dataset=dataset)

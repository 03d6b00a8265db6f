"""Counts, judge accuracy and agreement over what the store holds.

The judge's verdict on an item is its latest judgement's vote. Accuracy uses
the strict rule (the labelled best response must score strictly above every
other; a tie is wrong, and so is a judgement without a valid sample): against
the item's label (`core.labels.item_label`: this studio's annotators'
majority, else the dataset's; the label evaluation uses), and against each
current label of this studio's annotators. Kappa and alpha between annotators
count every annotator, imported ones too. In the counts, "labelled" and
"labels" are this studio's annotators' (`core.store.labels.has_human_label`);
imported annotators' labels are counted apart, as the dataset's.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from core.agreement import cohen_kappa, judge_accuracy, judge_human_kappa, krippendorff_alpha
from core.estimates import Estimate
from core.labels import ItemLabel, LabelValue
from core.store.judgements import latest_judgement_ids
from core.store.labels import IMPORTED, by_studio_annotator, is_current, item_labels
from core.store.schema import Annotation, Annotator, Dataset, GroundTruth, Item, JudgementRow

_PerItem = GroundTruth | Annotation | JudgementRow  # the tables with an item_id per row


@dataclass(frozen=True)
class DatasetCounts:
    dataset: str
    items: int
    with_ground_truth: int  # items with a ground-truth row
    labelled: int  # items with a current label by one of this studio's annotators
    judged: int
    labels: int  # current labels of this studio's annotators
    imported_labels: int  # current labels of imported annotators (part of the dataset)


@dataclass(frozen=True)
class Agreement:
    dataset: str | None
    accuracy_vs_label: Estimate  # against each item's label (`core.labels.item_label`)
    accuracy_vs_humans: Estimate
    judge_human_kappa: Estimate
    annotator_kappas: tuple[tuple[str, str, Estimate], ...]
    annotator_alpha: Estimate


def dataset_counts(engine: Engine) -> list[DatasetCounts]:
    with Session(engine) as session:
        def per_dataset(counted: ColumnElement[int], table: type[_PerItem],
                        *where: ColumnElement[bool]) -> dict[int, int]:
            query = (
                select(Item.dataset_id, counted)
                .join(table, table.item_id == Item.id)
                .where(*where)
                .group_by(Item.dataset_id)
            )
            return dict(session.execute(query).all())

        items = dict(session.execute(select(Item.dataset_id, func.count()).group_by(Item.dataset_id)).all())
        truths = per_dataset(func.count(func.distinct(GroundTruth.item_id)), GroundTruth)
        human = (is_current(), by_studio_annotator())
        labelled = per_dataset(func.count(func.distinct(Annotation.item_id)), Annotation, *human)
        judged = per_dataset(func.count(func.distinct(JudgementRow.item_id)), JudgementRow)
        labels = per_dataset(func.count(Annotation.id), Annotation, *human)
        imported = per_dataset(func.count(Annotation.id), Annotation, is_current(),
                               ~by_studio_annotator())
        return [
            DatasetCounts(
                dataset=name,
                items=items.get(ds_id, 0),
                with_ground_truth=truths.get(ds_id, 0),
                labelled=labelled.get(ds_id, 0),
                judged=judged.get(ds_id, 0),
                labels=labels.get(ds_id, 0),
                imported_labels=imported.get(ds_id, 0),
            )
            for ds_id, name in session.execute(select(Dataset.id, Dataset.name).order_by(Dataset.name))
        ]


def agreement(engine: Engine, dataset: str | None = None, *, seed: int = 0) -> Agreement:
    """Judge accuracy (Wilson 95% CIs) and agreement (bootstrap 95% CIs, from
    `core.estimates.MIN_BOOTSTRAP_ITEMS` items up) over `dataset` or all."""
    vs_label: list[tuple[list[int], LabelValue]] = []
    vs_humans: list[tuple[list[int], int | None]] = []
    ratings: dict[str, dict[int, int | None]] = defaultdict(dict)
    with Session(engine) as session:
        query = select(Item.id).where(Item.n_responses >= 2).order_by(Item.id)
        if dataset is not None:
            query = query.join(Dataset).where(Dataset.name == dataset)
        item_ids = list(session.scalars(query))
        latest = _latest_totals(session)
        labels = item_labels(session, item_ids)
        for item_id, name, role, best in session.execute(
            select(Annotation.item_id, Annotator.name, Annotator.role, Annotation.best)
            .join(Annotator, Annotator.id == Annotation.annotator_id)
            .where(Annotation.item_id.in_(query.order_by(None)), is_current())
            .order_by(Annotation.item_id, Annotation.id)
        ):
            ratings[name][item_id] = best
            if role != IMPORTED and item_id in latest:
                vs_humans.append((latest[item_id], best))
    for item_id in item_ids:
        label = labels[item_id]
        if item_id in latest and isinstance(label, ItemLabel):
            vs_label.append((latest[item_id], label.best))
    kappas = []
    for a, b in itertools.combinations(sorted(ratings), 2):
        shared = sorted(ratings[a].keys() & ratings[b].keys())
        if len(shared) >= 2:
            estimate = cohen_kappa([ratings[a][i] for i in shared], [ratings[b][i] for i in shared], seed=seed)
            kappas.append((a, b, estimate))
    return Agreement(
        dataset=dataset,
        accuracy_vs_label=judge_accuracy(vs_label),
        accuracy_vs_humans=judge_accuracy(vs_humans),
        judge_human_kappa=judge_human_kappa(
            [s for s, _ in vs_humans], [b for _, b in vs_humans], seed=seed
        ),
        annotator_kappas=tuple(kappas),
        annotator_alpha=krippendorff_alpha(ratings, seed=seed),
    )


def _latest_totals(session: Session) -> dict[int, list[int]]:
    rows = session.execute(
        select(JudgementRow.item_id, JudgementRow.totals).where(
            JudgementRow.id.in_(latest_judgement_ids())
        )
    )
    return {item_id: list(totals) for item_id, totals in rows}

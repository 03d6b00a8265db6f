"""The one label rule (`core.labels`), and every consumer of a label seeing it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Judge, SamplingParams, ScriptedBackend
from core.insights import (
    DATASET,
    accuracy_by_dataset,
    agreement_matrix,
    margin_vs_accuracy,
    score_distributions,
)
from core.labels import (
    Accepted,
    ItemLabel,
    LabelVotes,
    NoLabel,
    Settled,
    dataset_label,
    item_label,
)
from core.service import judge_dataset, judge_setup
from core.store.adjudication import adjudicate
from core.store.browse import browse_items
from core.store.db import make_engine, upgrade
from core.store.evals import evaluation_items
from core.store.importing import import_file
from core.store.labels import add_label, annotator_id, item_labels
from core.store.queues import Queue, item_view, queue_items
from core.store.schema import Dataset, GroundTruth, Item
from core.store.stats import agreement, dataset_counts
from core.training.labelled import labelled_items
from core.training.meta_data import meta_training_set
from core.training.rl import RLConfig, rl_prompts


def human(best: int | None, votes: int, total: int) -> ItemLabel:
    return ItemLabel(best=best, source="human", votes=votes, total=total)


def dataset(best: int | Accepted | None, votes: int, total: int) -> ItemLabel:
    return ItemLabel(best=best, source="dataset", votes=votes, total=total)


def settled(best: int | None) -> ItemLabel:
    return ItemLabel(best=best, source="adjudicated", votes=1, total=1)


RULE = {  # (human votes, dataset votes) -> the item's label
    "no labels": ((), (), NoLabel("unlabelled")),
    "one human": ((1,), (), human(1, 1, 1)),
    "humans agree": ((1, 1), (), human(1, 2, 2)),
    "humans split evenly": ((0, 1), (), NoLabel("annotators disagree")),
    "humans split, the dataset is not asked": ((0, 1), (0, 0), NoLabel("annotators disagree")),
    "two humans of three": ((2, 0, 2), (), human(2, 2, 3)),
    "three humans, three answers": ((0, 1, None), (), NoLabel("annotators disagree")),
    "a plurality of four": ((0, 0, 1, 2), (), human(0, 2, 4)),
    "humans call it a tie": ((None, None, 0), (), human(None, 2, 3)),
    "one human tie": ((None,), (1,), human(None, 1, 1)),
    "humans tie against a tie": ((None, 0), (), NoLabel("annotators disagree")),
    "only a ground truth": ((), (1,), dataset(1, 1, 1)),
    "a ground-truth tie": ((), (None,), dataset(None, 1, 1)),
    "two ground truths disagree": ((), (0, 1), NoLabel("dataset labels disagree")),
    "imported annotators 2 vs 1": ((), (1, 1, 0), dataset(1, 2, 3)),
    "imported annotators outvote the truth": ((), (1, 0, 0), dataset(0, 2, 3)),
    "a dataset tie by majority": ((), (None, None, 1), dataset(None, 2, 3)),
    "a human overrides the dataset": ((0,), (1, 1, 1), human(0, 1, 1)),
    "a best-of-n ground truth": ((), (Accepted((0, 2)),), dataset(Accepted((0, 2)), 1, 1)),
    "best-of-n truths disagree": ((), (Accepted((0, 2)), 1), NoLabel("dataset labels disagree")),
    "a human overrides a best-of-n truth": ((1,), (Accepted((0, 2)),), human(1, 1, 1)),
}


@pytest.mark.parametrize("case", list(RULE))
def test_the_rule(case):
    humans, data, expected = RULE[case]
    assert item_label(LabelVotes(human=humans, dataset=data)) == expected


ADJUDICATED = {  # (adjudicated label, human votes, dataset votes) -> the item's label
    "settles a split": (Settled(1), (0, 1), (0,), settled(1)),
    "overrides the humans' majority": (Settled(0), (1, 1, 0), (), settled(0)),
    "overrides the dataset": (Settled(0), (), (1, 1), settled(0)),
    "settles it as a tie": (Settled(None), (0, 1), (), settled(None)),
    "needs no vote at all": (Settled(1), (), (), settled(1)),
}


@pytest.mark.parametrize("case", list(ADJUDICATED))
def test_an_adjudicated_label_comes_first(case):
    adjudicated, humans, data, expected = ADJUDICATED[case]
    votes = LabelVotes(adjudicated=adjudicated, human=humans, dataset=data)
    assert item_label(votes) == expected
    # what the dataset says is still the dataset's alone
    assert dataset_label(votes) == dataset_label(LabelVotes(dataset=data))


def test_a_tie_label_is_a_label():
    label = item_label(LabelVotes(human=(None,)))
    assert isinstance(label, ItemLabel) and label.is_tie
    assert not dataset(0, 1, 1).is_tie


def test_the_dataset_label_reads_only_the_dataset():
    assert dataset_label(LabelVotes(human=(0,), dataset=(1,))) == dataset(1, 1, 1)
    assert dataset_label(LabelVotes(human=(0,))) == NoLabel("unlabelled")
    assert dataset_label(LabelVotes(dataset=(0, None))) == NoLabel("dataset labels disagree")


# -- every consumer, one store ------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One item, in a dataset of its own named `name`."""

    name: str
    truths: tuple[int | None, ...]  # ground-truth rows
    imported: tuple[int | None, ...]  # labels of imported annotators
    humans: tuple[int | None, ...]  # labels of this studio's annotators
    label: ItemLabel | NoLabel  # the item's label
    dataset: ItemLabel | NoLabel  # what its dataset says
    settled: tuple[int | None, ...] = ()  # a reviewer's adjudicated labels, the last current


CASES = [
    Case("unlabelled", (), (), (), NoLabel("unlabelled"), NoLabel("unlabelled")),
    Case("humans-agree", (0,), (), (1, 1), human(1, 2, 2), dataset(0, 1, 1)),
    Case("humans-split", (0,), (), (0, 1), NoLabel("annotators disagree"), dataset(0, 1, 1)),
    Case("humans-tie", (), (), (None, None, 0), human(None, 2, 3), NoLabel("unlabelled")),
    Case("truth-only", (1,), (), (), dataset(1, 1, 1), dataset(1, 1, 1)),
    Case("truths-disagree", (0, 1), (), (), NoLabel("dataset labels disagree"),
         NoLabel("dataset labels disagree")),
    Case("imported-2-1", (), (1, 1, 0), (), dataset(1, 2, 3), dataset(1, 2, 3)),
    Case("imported-and-truth", (1,), (0, 0), (), dataset(0, 2, 3), dataset(0, 2, 3)),
    Case("humans-override", (1,), (1, 1), (0,), human(0, 1, 1), dataset(1, 3, 3)),
    Case("dataset-tie", (None,), (), (), dataset(None, 1, 1), dataset(None, 1, 1)),
    Case("settled-split", (0,), (), (0, 1), settled(1), dataset(0, 1, 1), settled=(1,)),
    Case("settled-again", (), (1, 1), (1, 1, 0), settled(0), dataset(1, 2, 2), settled=(1, 0)),
    Case("settled-tie", (1,), (), (0, 1), settled(None), dataset(1, 1, 1), settled=(None,)),
]
HUMANS = ("alice", "bob", "carol")
IMPORTED = ("pandalm-1", "pandalm-2", "pandalm-3")
PARAMS = SamplingParams(k=3)
# The judge's samples, in original order: one picks response 0, one response 1, and the
# third sets its vote, to the dataset's label (response 0 when the dataset has none).
PICK = {0: (9, 2), 1: (2, 9), None: (5, 5)}
# Items whose label the judge's vote misses: their label is not the dataset's.
JUDGE_DISAGREES = {"humans-agree", "humans-tie", "humans-override", "settled-split",
                   "settled-again", "settled-tie"}
# The annotation queues read only this studio's annotators: imported ones are the dataset.
NO_HUMAN_LABEL = {"unlabelled", "truth-only", "truths-disagree", "imported-2-1",
                  "imported-and-truth", "dataset-tie"}
HUMANS_SPLIT = {"humans-split"}  # a split that a reviewer settled is no longer one
REVIEWER = "rita"


def scores_text(scores: tuple[int, int]) -> str:
    return f"Specific Criteria: c\nAnalysis: a\nScores: \\boxed{{{scores[0]}, {scores[1]}}}"


def vote_of(case: Case) -> int | None:
    return case.dataset.best if isinstance(case.dataset, ItemLabel) else 0


def build_store(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'labels.db'}")
    upgrade(engine)
    with Session(engine) as session, session.begin():
        for name in IMPORTED:
            annotator_id(session, name, role="imported")
        annotator_id(session, REVIEWER, role="reviewer")
    texts = []
    for n, case in enumerate(CASES):
        path = tmp_path / f"{case.name}.jsonl"
        path.write_text(json.dumps({"prompt": f"question {n}?", "responses": ["a", "b"]}) + "\n")
        import_file(engine, path, case.name)
        texts += [scores_text(PICK[0]), scores_text(PICK[1]), scores_text(PICK[vote_of(case)])]
    ids = {}
    with Session(engine) as session, session.begin():
        for case in CASES:
            ids[case.name] = item_id = session.scalar(
                select(Item.id).join(Dataset).where(Dataset.name == case.name))
            session.add_all(GroundTruth(item_id=item_id, best=b, source="file")
                            for b in case.truths)
    for case in CASES:
        # a case has up to three imported and three human labels
        for who, best in [*zip(IMPORTED, case.imported, strict=False),
                          *zip(HUMANS, case.humans, strict=False)]:
            add_label(engine, ids[case.name], who, best)
        for best in case.settled:
            adjudicate(engine, ids[case.name], REVIEWER, best, note="settled in review")
    judge = Judge(ScriptedBackend(texts), rescue=False, shuffle=False)
    for case in CASES:
        judge_dataset(engine, judge, case.name, PARAMS)
    return engine, judge, ids


def needs_a_best(label: ItemLabel | NoLabel) -> object:
    """What a consumer that needs a best response reports for `label`."""
    if isinstance(label, NoLabel):
        return {label.reason: 1}
    if label.best is None:
        return {"labelled a tie": 1}
    return (label.best, label.source)


def test_every_consumer_sees_the_same_label(tmp_path):
    engine, judge, ids = build_store(tmp_path)
    accuracy = {a.dataset: a.accuracy for a in accuracy_by_dataset(engine)}
    with Session(engine) as session:
        assert item_labels(session, ids.values()) == {ids[c.name]: c.label for c in CASES}
        disagrees = set(queue_items(session, Queue.JUDGE_DISAGREES, limit=None))
        unlabelled = set(queue_items(session, Queue.UNLABELLED, limit=None))
        split = set(queue_items(session, Queue.ANNOTATORS_DISAGREE, limit=None))
        views = {c.name: item_view(session, ids[c.name]) for c in CASES}
    assert disagrees == {ids[name] for name in JUDGE_DISAGREES}
    assert unlabelled == {ids[name] for name in NO_HUMAN_LABEL}
    assert split == {ids[name] for name in HUMANS_SPLIT}
    assert {r.item_id for r in browse_items(engine, labelled=False).rows} == unlabelled
    assert {r.item_id for r in browse_items(engine, queue=Queue.ANNOTATORS_DISAGREE).rows} == split
    assert {c.dataset: c.labelled for c in dataset_counts(engine)} == {
        c.name: int(c.name not in NO_HUMAN_LABEL) for c in CASES}
    for case in CASES:
        name, label = case.name, case.label
        # evaluation and RFT need a best response: a tie is left out
        items, considered, excluded = evaluation_items(engine, judge_setup(judge), name, PARAMS)
        seen = (items[0].best, items[0].label_source) if items else excluded
        assert (considered, seen) == (1, needs_a_best(label)), name
        rft = labelled_items(engine, name)
        seen = (rft.items[0].best, rft.items[0].label_source) if rft.items else dict(rft.skipped)
        assert seen == needs_a_best(label), name
        # the meta RM: a sample is correct when it picks the label (a tie: when it ties)
        meta = meta_training_set(engine, name)
        if isinstance(label, NoLabel):
            assert (meta.skipped_items, meta.examples) == ({label.reason: 1}, []), name
        else:
            correct = [e.correct for e in sorted(meta.examples, key=lambda e: e.sample_index)]
            assert correct[:2] == [label.best == 0, label.best == 1], name
        # RL trains towards the label, a tie included
        prompts = rl_prompts(engine, name, ChatFree(), RLConfig())
        assert [p.best for p in prompts] == ([] if isinstance(label, NoLabel) else [label.best])
        # the judge's accuracy on Insights (per dataset and by margin) and in the stats is
        # against the item's label, as evaluation's is: the vote is the dataset's label, so
        # it misses where the humans' label is another
        expected = [] if isinstance(label, NoLabel) else [
            (1, 0.0 if name in JUDGE_DISAGREES else 1.0)]
        by_margin = [(b.accuracy.n, b.accuracy.value) for b in margin_vs_accuracy(engine, name)
                     if b.accuracy.n]
        for estimate in (accuracy[name], agreement(engine, name).accuracy_vs_label):
            assert [(e.n, e.value) for e in [estimate] if e.n] == expected, name
        assert by_margin == expected, name
        # the score histogram's "best": the scores of the labelled best response
        scores = score_distributions(engine, name)
        best = {v: n for v, n in zip(scores.values, scores.best, strict=True) if n}
        assert best == labelled_best_scores(case), name
        # the dataset's label: shown to annotators, and the "dataset" rater of the kappa
        # matrix (what the dataset says, whatever the humans say)
        assert views[name].dataset_label == case.dataset, name
        raters = agreement_matrix(engine, name).raters
        assert (DATASET in raters) == isinstance(case.dataset, ItemLabel), name


def labelled_best_scores(case: Case) -> dict[int, int]:
    """score -> how often the item's labelled best response got it (none: no label or a
    tie), from the judge's three scripted samples."""
    if not isinstance(case.label, ItemLabel) or case.label.best is None:
        return {}
    samples = (PICK[0], PICK[1], PICK[vote_of(case)])
    return dict(Counter(sample[case.label.best] for sample in samples))


class ChatFree:
    """A tokenizer stand-in with no chat format."""

    chat_template = None

"""The label of an item: one rule, which every consumer calls.

The rule reads three things about an item (`LabelVotes`), each label in them
a response index or None for a tie:

- **adjudicated**: the current adjudicated label (`core.store.adjudication`), an
  admin's or reviewer's decision that settles the item;
- **human**: the votes, the current label of each of this studio's annotators (every
  role but "imported");
- **dataset**: the votes, the labels that came with the dataset file, pooled: its
  ground-truth rows and the current labels of imported annotators (PandaLM's
  three annotators, for one).

The rule (`item_label`):

0. If the item has a current adjudicated label, it decides, whatever the votes
   (no one's label is deleted: the votes stay as they were, and an adjudication
   can itself be undone or replaced, append-only).
1. If any human has labelled the item, the humans' majority decides: the
   label given more often than any other (a plurality), a tie label included.
   When the top count is shared, the item has no label ("annotators disagree");
   the dataset is not consulted, since a human has looked at the item.
2. Otherwise the dataset's majority decides in the same way ("dataset labels
   disagree" when its top count is shared). `dataset_label` is this step on
   its own: what the dataset says, whatever the humans say.
3. Otherwise the item has no label ("unlabelled").

A label is an `ItemLabel` (a tie label is one too: `is_tie`); no label is a
`NoLabel` with its reason, never a sentinel mixed with the response indices.
A consumer that needs a best response (the strict rule: the best must score
strictly above every other) leaves a tie label out with the reason
`LABELLED_A_TIE`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Source = Literal["adjudicated", "human", "dataset"]
Reason = Literal["annotators disagree", "dataset labels disagree", "unlabelled"]
LABELLED_A_TIE = "labelled a tie"  # why a consumer that needs a best response leaves a tie out


@dataclass(frozen=True)
class Settled:
    """An adjudicated label: the best response, or a tie."""

    best: int | None
    """The index of the best response (original order); None: the responses tie."""


@dataclass(frozen=True)
class LabelVotes:
    """Everything the rule reads about one item."""

    adjudicated: Settled | None = None
    """The item's current adjudicated label; None: it has none."""
    human: tuple[int | None, ...] = ()
    """The current labels of this studio's annotators (role not "imported"); None: a tie."""
    dataset: tuple[int | None, ...] = ()
    """The dataset's labels: its ground-truth rows and imported annotators' current labels."""


@dataclass(frozen=True)
class ItemLabel:
    """An item's label: the best response, or a tie."""

    best: int | None
    """The index of the best response (original order); None: the responses tie."""
    source: Source
    """Who decided it: an adjudication, or whose majority."""
    votes: int
    """How many of that group's labels say `best`."""
    total: int
    """How many labels that group gave."""

    @property
    def is_tie(self) -> bool:
        return self.best is None


@dataclass(frozen=True)
class NoLabel:
    """An item without a label, and why."""

    reason: Reason


def item_label(votes: LabelVotes) -> ItemLabel | NoLabel:
    """The item's label by the rule of this module: the adjudicated label, else the
    humans' majority, else the dataset's."""
    if votes.adjudicated is not None:
        return ItemLabel(best=votes.adjudicated.best, source="adjudicated", votes=1, total=1)
    if votes.human:
        return _majority(votes.human, "human") or NoLabel("annotators disagree")
    return dataset_label(votes)


def dataset_label(votes: LabelVotes) -> ItemLabel | NoLabel:
    """What the dataset says (step 2 of the rule alone): neither an adjudication nor
    the human votes are read."""
    if votes.dataset:
        return _majority(votes.dataset, "dataset") or NoLabel("dataset labels disagree")
    return NoLabel("unlabelled")


def _majority(labels: Sequence[int | None], source: Source) -> ItemLabel | None:
    """The label given more often than any other; None when the top count is shared."""
    (best, count), *rest = Counter(labels).most_common()
    if rest and rest[0][1] == count:
        return None
    return ItemLabel(best=best, source=source, votes=count, total=len(labels))


def label_words(label: ItemLabel | NoLabel) -> str:
    """An item's label in words, and who decided it: every front that shows one says it
    this way ('Response 2 (human majority, 2 of 3)', 'a tie (adjudicated)', 'no label
    (annotators disagree)')."""
    if isinstance(label, NoLabel):
        return f"no label ({label.reason})"
    best = "a tie" if label.best is None else f"Response {label.best + 1}"
    if label.source == "adjudicated":
        return f"{best} (adjudicated)"
    return f"{best} ({label.source} majority, {label.votes} of {label.total})"

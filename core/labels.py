"""The label of an item: one rule, which every consumer calls.

The rule reads three things about an item (`LabelVotes`), each label in them
a response index, None for a tie, or (the dataset's only) an `Accepted` set:

- **adjudicated**: the current adjudicated label (`core.store.adjudication`), an
  admin's or reviewer's decision that settles the item;
- **human**: the votes, the current label of each of this studio's annotators (every
  role but "imported");
- **dataset**: the votes, the labels that came with the dataset file, pooled: its
  ground-truth rows and the current labels of imported annotators (PandaLM's
  three annotators, for one). A ground-truth row of a best-of-n item whose
  dataset marks several responses correct (RewardBench 2's Ties subset) is an
  `Accepted` set: those responses are correct, every other one is not.

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

A label is an `ItemLabel` (a tie label is one too: `is_tie`; a best-of-n label
with several correct responses too: `is_best_of_n`); no label is a `NoLabel`
with its reason, never a sentinel mixed with the response indices. A label's
value (`LabelValue`) is a response index, None (a tie) or an `Accepted` set;
`best_of_n` makes the value of "these responses are correct": one correct
response is an ordinary best response (the rule "it scores strictly above
every other" is the same), several are an `Accepted` set. How a judge's scores
are checked against any of the three is `core.agreement.strict_correct`.

A consumer that needs a best response (the strict rule: the best must score
strictly above every other) leaves a tie label out with the reason
`LABELLED_A_TIE`; one that needs a single best response (a pair to export, a
hint to name) leaves a best-of-n label out with `LABELLED_BEST_OF_N`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

Source = Literal["adjudicated", "human", "dataset"]
Reason = Literal["annotators disagree", "dataset labels disagree", "unlabelled"]
LABELLED_A_TIE = "labelled a tie"  # why a consumer that needs a best response leaves a tie out
LABELLED_BEST_OF_N = "labelled best-of-n (several correct responses)"  # needs one best: left out


@dataclass(frozen=True)
class Accepted:
    """A best-of-n label with several correct responses (RewardBench 2's Ties): the
    responses in `indices` are correct, every other response of the item is not. A
    judge is right when every correct response scores strictly above every incorrect
    one (`core.agreement.strict_correct`). Made by `best_of_n`."""

    indices: tuple[int, ...]
    """The correct responses' indices (original order): two or more, ascending, distinct."""

    def __post_init__(self) -> None:
        if len(self.indices) < 2 or list(self.indices) != sorted(set(self.indices)) or (
                self.indices[0] < 0):
            raise ValueError(
                f"an accepted set holds two or more distinct response indices >= 0 in "
                f"ascending order, not {self.indices}")


LabelValue: TypeAlias = int | Accepted | None
"""What a label says: the best response's index, None (a tie), or an `Accepted` set."""


def best_of_n(correct: Iterable[int], n: int) -> int | Accepted:
    """The label "the `correct` responses (of `n`) are correct, the others are not":
    one correct response is the best response; several are an `Accepted` set.
    ValueError when none, or every one, of the responses is correct."""
    indices = tuple(sorted(set(correct)))
    if not indices or indices[0] < 0 or indices[-1] >= n:
        raise ValueError(f"the correct responses {indices} must be indices into {n} responses")
    if len(indices) == n:
        raise ValueError(f"all {n} responses are correct: nothing to prefer")
    return indices[0] if len(indices) == 1 else Accepted(indices)


def correct_of(value: int | Accepted) -> tuple[int, ...]:
    """The correct responses a best response or an accepted set names."""
    return value.indices if isinstance(value, Accepted) else (value,)


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
    dataset: tuple[LabelValue, ...] = ()
    """The dataset's labels: its ground-truth rows (an `Accepted` set for a best-of-n item
    with several correct responses) and imported annotators' current labels."""


@dataclass(frozen=True)
class ItemLabel:
    """An item's label: the best response, a tie, or the correct responses of a best-of-n item."""

    best: LabelValue
    """The index of the best response (original order); None: the responses tie; an
    `Accepted` set: those responses are correct and the others are not."""
    source: Source
    """Who decided it: an adjudication, or whose majority."""
    votes: int
    """How many of that group's labels say `best`."""
    total: int
    """How many labels that group gave."""

    @property
    def is_tie(self) -> bool:
        return self.best is None

    @property
    def is_best_of_n(self) -> bool:
        """Several responses are correct (an `Accepted` set), not one best."""
        return isinstance(self.best, Accepted)


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


def _majority(labels: Sequence[LabelValue], source: Source) -> ItemLabel | None:
    """The label given more often than any other; None when the top count is shared."""
    (best, count), *rest = Counter(labels).most_common()
    if rest and rest[0][1] == count:
        return None
    return ItemLabel(best=best, source=source, votes=count, total=len(labels))


def value_words(value: LabelValue) -> str:
    """A label's value in words: 'Response 2', 'a tie', 'best-of-n: Responses 1 and 3
    correct'."""
    if value is None:
        return "a tie"
    if isinstance(value, Accepted):
        *first, last = (str(i + 1) for i in value.indices)
        return f"best-of-n: Responses {', '.join(first)} and {last} correct"
    return f"Response {value + 1}"


def value_short(value: LabelValue) -> str:
    """A label's value for a table cell: 'R2', 'tie', 'R1+R3' (best-of-n)."""
    if value is None:
        return "tie"
    return "+".join(f"R{i + 1}" for i in correct_of(value))


def label_words(label: ItemLabel | NoLabel) -> str:
    """An item's label in words, and who decided it: every front that shows one says it
    this way ('Response 2 (human majority, 2 of 3)', 'a tie (adjudicated)', 'best-of-n:
    Responses 1 and 3 correct (dataset majority, 1 of 1)', 'no label (annotators
    disagree)')."""
    if isinstance(label, NoLabel):
        return f"no label ({label.reason})"
    best = value_words(label.best)
    if label.source == "adjudicated":
        return f"{best} (adjudicated)"
    return f"{best} ({label.source} majority, {label.votes} of {label.total})"

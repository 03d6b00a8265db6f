"""Training data of the meta reward model, read from the store.

Every stored sample of a judgement of a labelled item with two or more
responses becomes one example: the text the meta RM reads (query, responses,
the sample's own principles, critique and scores) and whether the sample is
correct by the strict rule (`core.agreement.strict_correct`, grm-method.md
§2). An item's label is decided by the rule of `core.labels` (the annotators'
majority, else the dataset's); items without one are skipped and counted by
reason, never guessed. A tie label is kept: a sample is correct on it only when
it ties. Samples without scores (parse failures) are left out: meta-guided
voting only ever ranks valid samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.agreement import strict_correct
from core.labels import NoLabel
from core.store.judgements import load_judgement
from core.store.labels import item_labels
from core.store.schema import Dataset, Item, JudgementRow
from core.types import JudgeInput, Sample

# Character budgets of the meta RM's input; the tokenizer then keeps the END
# of what is left (truncation from the left), where the scores are.
QUERY_CHARS = 1500
RESPONSE_CHARS = 1000
JUDGEMENT_CHARS = 2500


@dataclass(frozen=True)
class MetaExample:
    judgement_id: int
    sample_index: int
    text: str
    correct: bool


@dataclass
class MetaTrainingSet:
    examples: list[MetaExample] = field(default_factory=list)
    items: int = 0  # labelled items with at least one usable sample
    skipped_items: dict[str, int] = field(default_factory=dict)  # reason -> count
    invalid_samples: int = 0  # left out: no scores

    @property
    def positives(self) -> int:
        return sum(e.correct for e in self.examples)

    @property
    def negatives(self) -> int:
        return len(self.examples) - self.positives


def meta_training_set(engine: Engine, dataset: str | None = None) -> MetaTrainingSet:
    """Every usable stored sample of `dataset` (all datasets by default), labelled."""
    result = MetaTrainingSet()
    with Session(engine) as session:
        query = (
            select(Item.id)
            .where(Item.n_responses >= 2, Item.id.in_(select(JudgementRow.item_id)))
            .order_by(Item.id)
        )
        if dataset is not None:
            query = query.join(Dataset).where(Dataset.name == dataset)
        item_ids = list(session.scalars(query))
        labels = item_labels(session, item_ids)
        for item_id in item_ids:
            label = labels[item_id]
            if isinstance(label, NoLabel):
                result.skipped_items[label.reason] = result.skipped_items.get(label.reason, 0) + 1
                continue
            judgement_ids = session.scalars(
                select(JudgementRow.id)
                .where(JudgementRow.item_id == item_id)
                .order_by(JudgementRow.id)
            ).all()
            used = False
            for judgement_id in judgement_ids:
                judgement = load_judgement(session, judgement_id)
                for sample in judgement.samples:
                    if sample.scores is None:
                        result.invalid_samples += 1
                        continue
                    used = True
                    result.examples.append(
                        MetaExample(
                            judgement_id=judgement_id,
                            sample_index=sample.index,
                            text=meta_input_text(judgement.input, sample),
                            correct=strict_correct(sample.scores, label.best),
                        )
                    )
            result.items += used
    return result


def meta_input_text(item: JudgeInput, sample: Sample) -> str:
    """What the meta RM reads for one sample: the query, the responses in the
    order this sample saw them (its critique names them by that position), and
    the sample's own text with the scores it wrote."""
    responses = "".join(
        f"[Response {j}]\n{_clip(item.responses[i], RESPONSE_CHARS)}\n"
        for j, i in enumerate(sample.shown_order, start=1)
    )
    context = "".join(f"[{t.role}] {_clip(t.content, RESPONSE_CHARS)}\n" for t in item.context)
    return (
        f"{context}[Query]\n{_clip(item.query, QUERY_CHARS)}\n{responses}"
        f"[Judgement]\n{_clip(judgement_text(sample), JUDGEMENT_CHARS)}"
    )


def judgement_text(sample: Sample) -> str:
    """The sample's text as the model wrote it, with a score rescue's numbers."""
    if sample.rescue is not None:
        return sample.rescue.prefix + sample.rescue.continuation
    return sample.raw_text


def _clip(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters: its first third and last two thirds."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return text[:head] + " [...] " + text[-(limit - head) :]


def labels_of(examples: Sequence[MetaExample]) -> list[float]:
    return [1.0 if e.correct else 0.0 for e in examples]

"""Browsing the items of the store: filter, search and page through them.

`browse_items` combines its filters with AND: a dataset, labelled or not (by
this studio's annotators: imported annotators' labels are the dataset's, see
`core.store.labels.has_human_label`), an annotation queue (`core.store.queues`)
and a case-insensitive substring search over the query and every response.
The search text only ever travels as a bound parameter, with the LIKE
wildcards `%` and `_` escaped, so it is matched literally. Each row carries
the item's latest judgement verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, String, Text, cast, column, exists, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from core.errors import InputError
from core.store.labels import by_studio_annotator, has_human_label, is_current
from core.store.queues import ItemView, Queue, item_view, label_rule_members, queue_filter
from core.store.schema import Annotation, Dataset, Item, JudgementRow

SNIPPET_CHARS = 120
MAX_SEARCH_CHARS = 1_000  # SQLite refuses LIKE patterns past 50,000 bytes; no one types this
MAX_PAGE = 500


@dataclass(frozen=True)
class ItemRow:
    """One item as a browse table shows it."""

    item_id: int
    dataset: str
    category: str | None
    query: str  # the start of the query, whitespace collapsed, "…" when cut
    n_responses: int
    labels: int  # current labels of this studio's annotators (imported ones are the dataset's)
    judgement_id: int | None  # the latest judgement; None: never judged
    winner: int | None  # 0-based; with `tie`, the tie-break pick, not a win
    tie: bool | None
    margin: int | None

    @property
    def verdict(self) -> str:
        """The latest judgement in a few words: "R1", "TIE (pick R2)", "no winner",
        or "" when never judged."""
        if self.judgement_id is None:
            return ""
        if self.winner is None:
            return "no winner"
        return f"TIE (pick R{self.winner + 1})" if self.tie else f"R{self.winner + 1}"


@dataclass(frozen=True)
class ItemPage:
    """One page of the items that pass the filters, oldest first."""

    rows: tuple[ItemRow, ...]
    total: int  # items passing the filters, on all pages
    offset: int
    limit: int


def dataset_names(engine: Engine) -> list[str]:
    """The names of all datasets, sorted."""
    with Session(engine) as session:
        return list(session.scalars(select(Dataset.name).order_by(Dataset.name)))


def view_item(engine: Engine, item_id: int) -> ItemView:
    """Everything stored about one item: text, ground truth, labels, latest judgement."""
    with Session(engine) as session:
        return item_view(session, item_id)


def _as_queue(queue: Queue | str) -> Queue:
    try:
        return Queue(queue)
    except ValueError:
        raise InputError(
            f"unknown queue '{queue}'; one of: {', '.join(q.value for q in Queue)}"
        ) from None


def _contains(engine: Engine, needle: str) -> ColumnElement[bool]:
    """The query or one of the responses contains `needle`, ignoring case.

    `icontains(..., autoescape=True)` binds `needle` as a parameter and escapes
    `%`, `_` and the escape character in it. Responses are a JSON array, so
    each element is unpacked with the database's own JSON function rather than
    searching the JSON text (where quotes, newlines and non-ASCII are escaped)."""
    in_query = Item.query.icontains(needle, autoescape=True)
    dialect = engine.dialect.name
    if dialect == "sqlite":
        elements = func.json_each(Item.responses).table_valued(column("value", String))
    elif dialect == "postgresql":
        elements = func.json_array_elements_text(Item.responses).table_valued(
            column("value", String)
        )
    else:  # other databases: the JSON text, good enough for plain words
        return or_(in_query, cast(Item.responses, Text).icontains(needle, autoescape=True))
    in_responses = (
        exists()
        .select_from(elements)
        .where(elements.c.value.icontains(needle, autoescape=True))
    )
    return or_(in_query, in_responses)


def _conditions(
    engine: Engine,
    dataset: str | None,
    labelled: bool | None,
    queue: Queue | str | None,
    search: str | None,
    margin_threshold: int,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if dataset:
        conditions.append(Dataset.name == dataset)
    if labelled is not None:
        conditions.append(has_human_label() if labelled else ~has_human_label())
    if queue:
        conditions.append(queue_filter(_as_queue(queue), margin_threshold))
    if search and search.strip():
        if len(search.strip()) > MAX_SEARCH_CHARS:
            raise InputError(f"search for at most {MAX_SEARCH_CHARS:,} characters "
                             f"(this one has {len(search.strip()):,})")
        conditions.append(_contains(engine, search.strip()))
    return conditions


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def _rows(session: Session, item_ids: list[int]) -> tuple[ItemRow, ...]:
    latest = aliased(JudgementRow)  # aliased: queue filters use the plain table
    newer_judgement = aliased(JudgementRow)
    latest_id = (
        select(func.max(newer_judgement.id))
        .where(newer_judgement.item_id == Item.id)
        .scalar_subquery()
    )
    labels = (
        select(func.count(Annotation.id))
        .where(Annotation.item_id == Item.id, is_current(), by_studio_annotator())
        .scalar_subquery()
    )
    query = (
        select(
            Item.id, Dataset.name, Item.category, func.substr(Item.query, 1, SNIPPET_CHARS * 2),
            Item.n_responses, labels, latest.id, latest.winner, latest.tie, latest.margin,
        )
        .join(Dataset, Dataset.id == Item.dataset_id)
        .outerjoin(latest, latest.id == latest_id)
        .where(Item.id.in_(item_ids))
        .order_by(Item.id)
    )
    return tuple(
        ItemRow(
            item_id=r[0], dataset=r[1], category=r[2], query=_snippet(r[3] or ""),
            n_responses=r[4], labels=r[5] or 0, judgement_id=r[6], winner=r[7], tie=r[8],
            margin=r[9],
        )
        for r in session.execute(query)
    )


def browse_items(
    engine: Engine,
    *,
    dataset: str | None = None,
    labelled: bool | None = None,
    queue: Queue | str | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    margin_threshold: int = 2,
) -> ItemPage:
    """The items passing every given filter (None or "" means no filter), oldest
    first: `limit` of them from `offset`, and how many pass in all.

    `labelled`: True, items with a current label by one of this studio's annotators;
    False, items with none (labels of imported annotators don't count).
    `queue`: a `Queue` (or its value). `search`: a case-insensitive substring of
    the query or a response, matched literally. Raises InputError on an unknown
    queue or a bad page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"a page holds 1 to {MAX_PAGE} items, not {limit}")
    if offset < 0:
        raise InputError(f"the offset must be 0 or more, not {offset}")
    conditions = _conditions(engine, dataset, labelled, queue, search, margin_threshold)
    matching = select(Item.id).join(Dataset, Dataset.id == Item.dataset_id).where(*conditions)
    with Session(engine) as session:
        if queue and (chosen := _as_queue(queue)).by_label_rule:  # decided in Python
            candidates = list(session.scalars(matching.order_by(Item.id)))
            found = label_rule_members(session, chosen, candidates)  # page the survivors
            total, page_ids = len(found), found[offset : offset + limit]
        else:
            total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
            page_ids = list(session.scalars(matching.order_by(Item.id).limit(limit).offset(offset)))
        rows = _rows(session, page_ids) if page_ids else ()
    return ItemPage(rows=rows, total=total, offset=offset, limit=limit)

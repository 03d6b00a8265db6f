"""`grm-studio adjudicate list / show / settle / undo`: settle the items where
annotators disagree (`core.store.adjudication`), from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors
from core.errors import InputError
from core.labels import label_words
from core.store.adjudication import AdjudicatedLabel
from core.store.queues import TO_SETTLE_HELP, SettleView

adjudicate_app = typer.Typer(
    help="Settle items where annotators disagree: the adjudicated label decides the item "
         "for evaluation, training, the queues and the statistics; no label is deleted.",
    no_args_is_help=True,
)
app.add_typer(adjudicate_app, name="adjudicate")

By = Annotated[str, typer.Option("--by", help="the account that settles (role admin or reviewer)")]


@adjudicate_app.command("list")
def list_items(
    dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many items")] = 50,
) -> None:
    """The disagreements to settle, oldest first, with every current label."""
    from core.store import open_store
    from core.store.queues import settle_views

    with reported_errors():
        views = settle_views(open_store(load_settings()), dataset=dataset, limit=limit)
    if not views:
        typer.echo(f"nothing to settle ({TO_SETTLE_HELP})")
    for view in views:
        typer.echo(f"item {view.item.item_id} ({view.item.dataset}) · now: {label_words(view.label)}")
        for line in labels_lines(view):
            typer.echo(f"  {line}")


@adjudicate_app.command("show")
def show(item_id: Annotated[int, typer.Argument(help="the item's id")]) -> None:
    """An item as a reviewer settles it: its responses, every current label with its
    author and note, its label now and its adjudication history."""
    from core.store import open_store
    from core.store.queues import settle_view_of

    with reported_errors():
        view = settle_view_of(open_store(load_settings()), item_id)
    typer.echo(f"item {view.item.item_id} ({view.item.dataset})")
    typer.echo(f"query: {_line(view.item.query)}")
    for n, response in enumerate(view.item.responses, start=1):
        typer.echo(f"Response {n}: {_line(response)}")
    typer.echo("labels:")
    for line in labels_lines(view):
        typer.echo(f"  {line}")
    typer.echo(f"label now: {label_words(view.label)}")
    typer.echo("adjudication history:" if view.history else "never adjudicated")
    for row in view.history:
        typer.echo(f"  {history_line(row)}")


@adjudicate_app.command("settle")
def settle(
    item_id: Annotated[int, typer.Argument(help="the item's id")],
    best: Annotated[str, typer.Argument(help="the best response's number (1..n), or 'tie'")],
    by: By,
    note: Annotated[str | None, typer.Option(help="why (shown in the history)")] = None,
) -> None:
    """Settle an item: this label decides it (replacing an earlier adjudication)."""
    from core.store import open_store
    from core.store.adjudication import adjudicate

    with reported_errors():
        chosen = _best(best)
        row = adjudicate(open_store(load_settings()), item_id, by, chosen, note=note)
    typer.echo(f"item {item_id} settled as {_best_text(row.best)} by {by} "
               f"(adjudication {row.id}; `grm-studio adjudicate undo {row.id} --by NAME` "
               "takes it back)")


@adjudicate_app.command("undo")
def undo(
    adjudication_id: Annotated[int, typer.Argument(help="the adjudication's id")],
    by: By,
) -> None:
    """Undo an item's current adjudication: the one before it is restored, or none."""
    from core.store import open_store
    from core.store.adjudication import undo_adjudication

    with reported_errors():
        restored = undo_adjudication(open_store(load_settings()), adjudication_id, by)
    typer.echo("undone; the item is no longer adjudicated" if restored is None else
               f"undone; the item is settled as {_best_text(restored.best)} again "
               f"(adjudication {restored.id})")


def labels_lines(view: SettleView) -> list[str]:
    """Every current label on the item: author, answer, note."""
    return [f"{label.annotator}: {_best_text(label.best)}"
            + (f" · note: {_line(label.note)}" if label.note else "")
            for label in view.item.labels] or ["(no labels)"]


def history_line(row: AdjudicatedLabel) -> str:
    what = "withdrew the adjudication" if row.retracted else f"settled as {_best_text(row.best)}"
    note = f" · note: {_line(row.note)}" if row.note else ""
    return f"#{row.id} {row.created_at:%Y-%m-%d %H:%M} {row.adjudicator} {what}{note}"


def _best(text: str) -> int | None:
    """A response number (1-based) or 'tie' as typed -> the index, None for a tie."""
    if text.strip().lower() == "tie":
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise InputError(f"best must be a response number (1, 2, ...) or 'tie', got '{text}'")
    return int(text) - 1


def _best_text(best: int | None) -> str:
    return "a tie" if best is None else f"Response {best + 1}"


def _line(text: str, width: int = 100) -> str:
    """`text` on one line, cut to `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"

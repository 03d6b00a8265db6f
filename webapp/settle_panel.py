"""The Annotate tab's queue of disagreements to settle, for admins and reviewers.

It walks `core.store.queues.next_to_settle`: each item with every current label,
its author and note, the item's label now, the dataset's, the judge's samples
and the item's adjudication history. Settle records the adjudicated label
(`core.store.adjudication.adjudicate`), which then decides the item for every
consumer; Skip leaves it for later on this page; Undo takes back this page's
last settlement (append-only). The panel shows itself to roles that may
adjudicate; the store checks the role again on every write.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr

from core.errors import InputError
from core.labels import ItemLabel, NoLabel, label_words
from core.store.accounts import Action
from core.store.adjudication import AdjudicatedLabel, adjudicate, undo_adjudication
from core.store.queues import TO_SETTLE_HELP, SettleView, next_to_settle
from webapp.cards import sample_cards_html
from webapp.errors import shows_errors
from webapp.item_views import best_choices, chosen_response, item_html
from webapp.studio import Studio


@dataclass(frozen=True)
class SettlePage:
    """This page's walk through the disagreements to settle."""

    dataset: str | None = None  # None: every dataset
    item_id: int | None = None  # the item open now
    skipped: tuple[int, ...] = ()
    settled: tuple[int, ...] = ()  # ids of the adjudications written here, newest last


def _best(best: int | None) -> str:
    return "tie" if best is None else f"Response {best + 1}"


def label_now_html(label: ItemLabel | NoLabel) -> str:
    """The item's label by the rule now, and who decided it (`core.labels.label_words`)."""
    return html.escape(label_words(label))


def history_html(history: tuple[AdjudicatedLabel, ...]) -> str:
    """Who settled what, and when, oldest first."""
    if not history:
        return "<i>never adjudicated</i>"
    rows = "".join(
        f"<li>#{row.id} {row.created_at:%Y-%m-%d %H:%M} {html.escape(row.adjudicator)}: "
        f"{'withdrew the adjudication' if row.retracted else 'settled as ' + _best(row.best)}"
        f"{' · ' + html.escape(row.note) if row.note else ''}</li>"
        for row in history
    )
    return f"<ol class='settle-history'>{rows}</ol>"


def settle_labels_html(view: SettleView) -> str:
    """Every current label with its author and note, the label now, the dataset's, the
    history (names and notes come from users and files: escaped)."""
    rows = "".join(
        f"<tr><td>{html.escape(label.annotator)}</td><td>{_best(label.best)}</td>"
        f"<td class='grm-text'>{html.escape(label.note or '')}</td>"
        f"<td>{label.created_at:%Y-%m-%d %H:%M}</td></tr>"
        for label in view.item.labels
    )
    truth = view.item.dataset_label
    dataset = (label_now_html(truth) if isinstance(truth, ItemLabel)
               else f"none ({html.escape(truth.reason)})" if truth is not None else "hidden")
    return (
        "<table class='grm-table settle-labels'><tr><th>annotator</th><th>label</th>"
        f"<th>note</th><th>when</th></tr>{rows}</table>"
        f"<p><b>Label now:</b> {label_now_html(view.label)} · <b>dataset:</b> {dataset}</p>"
        f"<p><b>Adjudication history</b></p>{history_html(view.history)}"
    )


def build_settle_panel(studio: Studio) -> tuple[Callable[..., dict[Any, Any]], list[Any]]:
    """The panel; returns the page-load handler that shows it to those who may
    adjudicate, and the components it fills."""
    page_state = gr.State(None)  # SettlePage | None
    with gr.Accordion("Disagreements to settle (admins and reviewers)", open=True,
                      visible=False, elem_id="settle-panel") as panel:
        gr.Markdown(f"The queue: {TO_SETTLE_HELP}. The label you settle on decides the "
                    "item for evaluation, training, the queues and the statistics; nobody's "
                    "label is deleted, and Undo takes yours back.")
        with gr.Row():
            dataset = gr.Textbox(label="Dataset (blank: all)", scale=3, elem_id="settle-dataset")
            start = gr.Button("Start settling", variant="primary", scale=1,
                              elem_id="settle-start")
        progress = gr.Markdown(elem_id="settle-progress")
        item = gr.HTML(elem_id="settle-item")
        labels = gr.HTML(elem_id="settle-labels")
        with gr.Accordion("The judge's samples", open=False):
            samples = gr.HTML(elem_id="settle-samples")
        best = gr.Radio([], label="Settle as", elem_id="settle-best")
        note = gr.Textbox(label="Note (why; kept in the history)", elem_id="settle-note")
        with gr.Row():
            settle = gr.Button("Settle & next", variant="primary", elem_id="settle-save")
            skip = gr.Button("Skip", elem_id="settle-skip")
            undo = gr.Button("Undo last settlement", elem_id="settle-undo")
    outputs = [page_state, progress, item, labels, samples, best, note]

    def show(page: SettlePage) -> dict[Any, Any]:
        head = next_to_settle(studio.engine, dataset=page.dataset, exclude=page.skipped)
        view = head.view
        page = replace(page, item_id=None if view is None else view.item.item_id)
        done = f"{len(page.settled)} settled on this page · {len(page.skipped)} skipped"
        if view is None:
            return {page_state: page, progress: f"**Nothing to settle.** {done}", item: "",
                    labels: "", samples: "", best: gr.update(choices=[], value=None), note: ""}
        judged = view.item.judgement
        return {
            page_state: page,
            progress: f"**{head.pending} item(s) to settle** · {done}",
            item: item_html(view.item),
            labels: settle_labels_html(view),
            samples: "<i>not judged yet</i>" if judged is None else sample_cards_html(judged),
            best: gr.update(choices=best_choices(len(view.item.responses)), value=None),
            note: "",
        }

    def open_page(page: SettlePage | None) -> SettlePage:
        if page is None or page.item_id is None:
            raise InputError("no item is open: press Start settling")
        return page

    @shows_errors
    def on_settle_start(dataset_name: str, request: gr.Request) -> dict[Any, Any]:
        studio.require(request, Action.ADJUDICATE)
        return show(SettlePage(dataset=(dataset_name or "").strip() or None))

    @shows_errors
    def on_settle(page: SettlePage | None, choice: str | None, why: str,
                  request: gr.Request) -> dict[Any, Any]:
        account = studio.require(request, Action.ADJUDICATE)
        page = open_page(page)
        assert page.item_id is not None  # open_page says so
        row = adjudicate(studio.engine, page.item_id, account.name, chosen_response(choice),
                         note=why or None)
        return show(replace(page, settled=(*page.settled, row.id)))

    @shows_errors
    def on_settle_skip(page: SettlePage | None, request: gr.Request) -> dict[Any, Any]:
        studio.require(request, Action.ADJUDICATE)
        page = open_page(page)
        assert page.item_id is not None
        return show(replace(page, skipped=(*page.skipped, page.item_id)))

    @shows_errors
    def on_settle_undo(page: SettlePage | None, request: gr.Request) -> dict[Any, Any]:
        account = studio.require(request, Action.ADJUDICATE)
        if page is None or not page.settled:
            raise InputError("nothing to undo: no item settled on this page")
        undo_adjudication(studio.engine, page.settled[-1], account.name)
        return show(replace(page, settled=page.settled[:-1]))

    start.click(on_settle_start, dataset, outputs)
    settle.click(on_settle, [page_state, best, note], outputs)
    skip.click(on_settle_skip, page_state, outputs)
    undo.click(on_settle_undo, page_state, outputs)

    @shows_errors
    def on_settle_load(request: gr.Request) -> dict[Any, Any]:
        account = studio.account(request)
        return {panel: gr.update(visible=account is not None
                                 and account.may(Action.ADJUDICATE))}

    return on_settle_load, [panel]

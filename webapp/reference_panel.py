"""The Annotate tab's reference answer of the open item: see it, edit it, remove it.

An annotator, reviewer or admin (`Action.EDIT_REFERENCE`) writes the answer in the
box and saves it (`core.store.reference_edits.set_reference`: added or replaced,
with who and when kept in the item's history), or removes it with its own button
(`remove_reference`): an empty box is refused, never taken as a removal. Viewers
see the answer and its history; the store checks the role again on every write.
Only the panel's buttons write: labelling the item (Save & next) does not save
what the box holds.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import gradio as gr

from core.errors import InputError
from core.references import MAX_REFERENCE_CHARS
from core.store.accounts import Action
from core.store.reference_edits import (
    ReferenceChange,
    item_reference,
    remove_reference,
    set_reference,
)
from core.store.walks import Walk
from webapp.errors import shows_errors
from webapp.studio import Studio


def _excerpt(text: str | None, chars: int = 80) -> str:
    if text is None:
        return "none"
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[: chars - 1] + "…"


def reference_history_html(reference: str | None, history: list[ReferenceChange]) -> str:
    """Whether the item has a reference answer now, and who added, edited or removed
    it, and when, oldest first (texts come from users and files: escaped)."""
    now = ("<i>this item has no reference answer</i>" if reference is None else
           f"<b>Reference answer now</b> ({len(reference):,} characters)")
    if not history:
        return f"<p>{now} · <span class='grm-muted'>never edited here</span></p>"
    rows = "".join(
        f"<li>#{c.id} {c.created_at:%Y-%m-%d %H:%M} {html.escape(c.editor)} {c.action} it"
        f"{'' if c.previous is None else ' (was: ' + html.escape(_excerpt(c.previous)) + ')'}</li>"
        for c in history)
    return f"<p>{now}</p><ol class='reference-history'>{rows}</ol>"


def build_reference_panel(
    studio: Studio, walk_state: gr.State
) -> tuple[Callable[[int | None], dict[Any, Any]], list[Any]]:
    """The panel, for the item open in `walk_state`'s walk; returns the function that
    fills it for an item (None: no item open) and the components it fills."""
    with gr.Accordion("Reference answer (optional): what the judge checks responses "
                      "against", open=False, elem_id="reference-panel"):
        text = gr.Textbox(label="Reference answer", lines=4, elem_id="reference-text",
                          info=f"at most {MAX_REFERENCE_CHARS:,} characters; saved with Save "
                               "reference (not with Save & next); to take it away, Remove "
                               "reference")
        with gr.Row():
            save = gr.Button("Save reference", elem_id="reference-save")
            remove = gr.Button("Remove reference", variant="stop", elem_id="reference-remove")
        history = gr.HTML(elem_id="reference-history")

    def fill(item_id: int | None) -> dict[Any, Any]:
        if item_id is None:
            return {text: "", history: ""}
        reference, changes = item_reference(studio.engine, item_id)
        return {text: reference or "", history: reference_history_html(reference, changes)}

    def open_item(walk: Walk | None) -> int:
        if walk is None or walk.item_id is None:
            raise InputError("no item is open: choose a queue and press Start")
        return walk.item_id

    @shows_errors
    def on_save(walk: Walk | None, written: str | None, request: gr.Request) -> dict[Any, Any]:
        account = studio.require(request, Action.EDIT_REFERENCE)
        item_id = open_item(walk)
        set_reference(studio.engine, item_id, account.name, written or "")
        return fill(item_id)

    @shows_errors
    def on_remove(walk: Walk | None, request: gr.Request) -> dict[Any, Any]:
        account = studio.require(request, Action.EDIT_REFERENCE)
        item_id = open_item(walk)
        remove_reference(studio.engine, item_id, account.name)
        return fill(item_id)

    # named apart: Gradio names an endpoint after its function, and the Annotate tab's
    # label save is the API's `on_save`
    save.click(on_save, [walk_state, text], [text, history], api_name="save_reference")
    remove.click(on_remove, walk_state, [text, history], api_name="remove_reference")
    return fill, [text, history]

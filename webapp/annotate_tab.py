"""The Annotate tab: walk a queue, pick the best response, correct, note.

Keyboard (outside text fields): 1-9 pick a response, Enter saves and moves on,
S skips, U undoes the last label. The walk's position lives in a per-session
`Walk` (gr.State); every label goes to the store at once.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr

from core.errors import InputError, NotAllowedError
from core.inputs import parse_score_list
from core.labels import ItemLabel
from core.store.accounts import Account, Action, require
from core.store.labels import add_label, response_count, undo_label
from core.store.queues import QUEUE_HELP, ItemView, Queue, next_in_queue
from webapp.cards import injection_warnings_html, sample_cards_html
from webapp.errors import shows_errors
from webapp.studio import Studio

TIE = "Tie"
ALL = "all datasets"

KEYBOARD_JS = """
<script>
document.addEventListener("keydown", (event) => {
  const best = document.querySelector("#annotate-best");
  if (!best || best.offsetParent === null) return;          // Annotate tab not shown
  const tag = (event.target.tagName || "").toLowerCase();
  if (tag === "textarea" || tag === "input" && event.target.type !== "radio") return;
  const click = (selector) => { const el = document.querySelector(selector); if (el) el.click(); };
  if (/^[1-9]$/.test(event.key)) {
    const options = best.querySelectorAll("input[type=radio]");
    const option = options[Number(event.key) - 1];
    if (option) { option.click(); event.preventDefault(); }
  } else if (event.key === "Enter") { click("#annotate-save"); event.preventDefault(); }
  else if (event.key === "s" || event.key === "S") { click("#annotate-skip"); }
  else if (event.key === "u" || event.key === "U") { click("#annotate-undo"); }
});
</script>
"""


@dataclass(frozen=True)
class Walk:
    """One annotator's walk through a queue in this browser session."""

    annotator: str = ""
    queue: str = Queue.UNLABELLED.value
    dataset: str | None = None
    blind: bool = False
    item_id: int | None = None
    skipped: tuple[int, ...] = ()
    saved: tuple[int, ...] = ()  # ids of the labels this walk wrote, newest last (for undo)


def next_item(studio: Studio, walk: Walk) -> tuple[Walk, ItemView | None, int]:
    """The walk moved to the next pending item (or None), and how many are pending."""
    head = next_in_queue(studio.engine, walk.queue, annotator=walk.annotator,
                         dataset=walk.dataset, exclude=walk.skipped, blind=walk.blind)
    item_id = head.view.item_id if head.view is not None else None
    return replace(walk, item_id=item_id), head.view, head.pending


def save_label(
    studio: Studio, account: Account | None, walk: Walk, best: str | None, scores: str,
    principles: str, critique: str, note: str, judgement_id: int | None,
) -> Walk:
    """Store the signed-in account's label on the current item; raises
    NotAllowedError (role) or InputError."""
    account = require(account, Action.LABEL)
    if walk.item_id is None:
        raise InputError("no item is open: choose a queue and press Start")
    if not best:
        raise InputError("pick the best response (keys 1-9) or Tie first")
    n = response_count(studio.engine, walk.item_id)
    label = add_label(
        studio.engine, walk.item_id, account.name,
        None if best == TIE else int(best.split()[-1]) - 1,
        corrected_scores=parse_score_list(scores or "", n),
        corrected_principles=principles, corrected_critique=critique, note=note,
        judgement_id=judgement_id,
    )
    return replace(walk, saved=(*walk.saved, label.id))


def undo_last(studio: Studio, account: Account | None, walk: Walk) -> Walk:
    """Undo the newest label this walk wrote (append-only); raises
    NotAllowedError (role) or InputError."""
    account = require(account, Action.LABEL)
    if not walk.saved:
        raise InputError("nothing to undo: no label saved in this session")
    undo_label(studio.engine, walk.saved[-1], annotator=account.name)
    return replace(walk, saved=walk.saved[:-1])


def item_html(view: ItemView) -> str:
    """The item as escaped HTML: earlier turns, query, numbered responses."""
    turns = "".join(
        f"<p><b>{html.escape(t.role)}:</b> <span class='grm-text'>{html.escape(t.content)}</span></p>"
        for t in view.context
    )
    responses = "".join(
        f"<div class='grm-card'><b>Response {i}</b><div class='grm-text'>{html.escape(r)}</div></div>"
        for i, r in enumerate(view.responses, start=1)
    )
    return (
        f"<div id='annotate-item-{view.item_id}'>{turns}<p><b>Query</b> "
        f"<span class='grm-muted'>(item {view.item_id}, {html.escape(view.dataset)})</span></p>"
        f"<div class='grm-text'>{html.escape(view.query)}</div>"
        f"{injection_warnings_html(view.responses)}{responses}</div>"
    )


def others_html(view: ItemView, annotator: str) -> str:
    """Current labels on the item (names come from users and files: escaped)."""
    lines = [
        f"<li>{'you' if label.annotator == annotator else html.escape(label.annotator)}: "
        f"{'tie' if label.best is None else f'Response {label.best + 1}'}</li>"
        for label in view.labels
    ]
    truth = view.dataset_label
    if isinstance(truth, ItemLabel) and truth.best is not None:
        lines.append(f"<li>dataset label: Response {truth.best + 1}</li>")
    return f"<ul>{''.join(lines)}</ul>" if lines else "<i>no labels yet</i>"


def build_annotate_tab(studio: Studio) -> None:
    walk_state = gr.State(Walk())
    with gr.Row():
        queue = gr.Dropdown(
            [q.value for q in Queue], value=Queue.UNLABELLED.value, label="Queue",
            info="; ".join(f"{q.value}: {h}" for q, h in QUEUE_HELP.items()), scale=3,
        )
        dataset = gr.Textbox(label="Dataset (blank: all)", scale=2)
        blind = gr.Checkbox(label="Blind (hide others' labels and the judge)", scale=2)
        start = gr.Button("Start", variant="primary", elem_id="annotate-start", scale=1)
    progress = gr.Markdown(elem_id="annotate-progress")
    item = gr.HTML(elem_id="annotate-item")
    with gr.Accordion("The judge's samples", open=False) as samples_box:
        samples = gr.HTML(elem_id="annotate-samples")
    others = gr.HTML(elem_id="annotate-labels")
    best = gr.Radio([], label="Best response (keys 1-9)", elem_id="annotate-best")
    with gr.Accordion("Corrections and note (optional)", open=False):
        scores = gr.Textbox(label="Corrected scores, e.g. 7, 5", elem_id="annotate-scores")
        principles = gr.Textbox(label="Corrected principles", lines=3)
        critique = gr.Textbox(label="Corrected critique", lines=3)
        note = gr.Textbox(label="Note", elem_id="annotate-note")
    with gr.Row():
        save = gr.Button("Save & next (Enter)", variant="primary", elem_id="annotate-save")
        skip = gr.Button("Skip (S)", elem_id="annotate-skip")
        undo = gr.Button("Undo last (U)", elem_id="annotate-undo")
    judgement_id = gr.State(None)
    cleared = [scores, principles, critique, note]

    def show(walk: Walk) -> dict[Any, Any]:
        walk, view, pending = next_item(studio, walk)
        done = f"{len(walk.saved)} labelled this session · {len(walk.skipped)} skipped"
        base = {walk_state: walk, **dict.fromkeys(cleared, "")}
        if view is None:
            return {**base, progress: f"**Queue done.** {done}", item: "", samples: "",
                    others: "", best: gr.update(choices=[], value=None), judgement_id: None}
        choices = [f"Response {i}" for i in range(1, len(view.responses) + 1)] + [TIE]
        judged = view.judgement is not None
        return {
            **base,
            progress: f"**{pending} item(s) pending** in `{walk.queue}` · {done}",
            item: item_html(view),
            samples: sample_cards_html(view.judgement) if judged else "<i>not judged yet</i>",
            samples_box: gr.update(visible=not walk.blind),
            others: "" if walk.blind else others_html(view, walk.annotator),
            best: gr.update(choices=choices, value=None),
            judgement_id: view.judgement_id,
        }

    outputs = [walk_state, progress, item, samples, samples_box, others, best, judgement_id,
               *cleared]

    @shows_errors
    def on_start(queue_name: str, dataset_name: str, blind_on: bool,
                 request: gr.Request) -> dict[Any, Any]:
        account = studio.account(request)
        if account is None:
            raise NotAllowedError("sign in first")
        return show(Walk(annotator=account.name, queue=queue_name,
                         dataset=(dataset_name or "").strip() or None, blind=blind_on))

    @shows_errors
    def on_save(walk: Walk, choice: str | None, s: str, p: str, c: str, n: str,
                jid: int | None, request: gr.Request) -> dict[Any, Any]:
        return show(save_label(studio, studio.account(request), walk, choice, s, p, c, n, jid))

    @shows_errors
    def on_skip(walk: Walk) -> dict[Any, Any]:
        if walk.item_id is None:
            return show(walk)
        return show(replace(walk, skipped=(*walk.skipped, walk.item_id)))

    @shows_errors
    def on_undo(walk: Walk, request: gr.Request) -> dict[Any, Any]:
        return show(undo_last(studio, studio.account(request), walk))

    start.click(on_start, [queue, dataset, blind], outputs)
    save.click(on_save, [walk_state, best, scores, principles, critique, note, judgement_id],
               outputs)
    skip.click(on_skip, walk_state, outputs)
    undo.click(on_undo, walk_state, outputs)

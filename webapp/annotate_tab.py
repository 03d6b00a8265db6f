"""The Annotate tab: walk a queue, pick the best response, correct, note.

Keyboard (outside text fields): 1-9 pick a response, Enter saves and moves on,
S skips, U undoes the last label (`KEYBOARD_JS`). The walk is the account's
(`core.store.walks`): every step is kept in the store, so a reload resumes it
(`build_annotate_tab` returns the page-load handler that does). Every label goes
to the store at once. Annotators always label blind; an admin chooses. The open
item's reference answer is edited in its own panel (`reference_panel`). Below the
walk, admins and reviewers settle the items where annotators disagree
(`settle_panel`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import gradio as gr

from core.errors import InputError, NotAllowedError
from core.labels import ItemLabel, value_words
from core.store.accounts import Account, Action
from core.store.queues import QUEUE_HELP, ItemView, Queue
from core.store.walks import (
    ALWAYS_BLIND,
    Corrections,
    Walk,
    label_open_item,
    resume_walk,
    skip_open_item,
    start_walk,
    undo_last_label,
    walk_on,
)
from webapp.cards import sample_cards_html
from webapp.errors import shows_errors
from webapp.item_views import best_choices, chosen_response, item_html
from webapp.reference_panel import build_reference_panel
from webapp.settle_panel import build_settle_panel
from webapp.studio import Studio

# The line under the buttons where the keys' queue and refusals are shown (by KEYBOARD_JS).
KEY_STATUS_HTML = (
    "<div class='annotate-key-line'><span class='annotate-key-queue grm-muted'></span> "
    "<span class='annotate-key-refusal' role='alert' style='color:#c62828'></span></div>"
)

KEYBOARD_JS = """
<script>
/* The Annotate tab's keys, outside text fields: 1-9 pick a response (the number
   after the last response is Tie), Enter saves and moves on, S skips, U undoes
   the last label. Every press is applied, in order, or refused on the page
   (#annotate-keys): a digit is applied at once; Save, Skip, Undo and Start run
   one at a time, each once the one before has answered (the tab chains
   grmAnnotate.done after each of them), and a mouse click on one of them waits
   its turn the same way. When one is refused (the pop-up says why), the presses
   queued behind it are dropped and the page says which. Enter on a focused
   button or link does what Enter does there (on Start: start). */
(() => {
  const MAX_QUEUED = 40, ANSWER_MS = 30000;
  const BUTTONS = {enter: "#annotate-save", s: "#annotate-skip", u: "#annotate-undo",
                   start: "#annotate-start"};
  const NAMES = {enter: "Enter", s: "S", u: "U", start: "Start"};
  const queued = [];
  let waiting = null;  // the timer of the action whose answer is awaited, or null
  const name = (key) => NAMES[key] || key;
  const best = () => document.querySelector("#annotate-best");
  const shown = () => { const b = best(); return b !== null && b.offsetParent !== null; };
  const line = (part) => document.querySelector(`#annotate-keys .annotate-key-${part}`);
  const say = (part, text) => { const el = line(part); if (el) el.textContent = text; };
  const refuse = (text) => say("refusal", `Refused: ${text}`);
  const showQueue = () => say("queue", queued.length ? `Queued: ${queued.map(name).join(" ")}` : "");
  const drop = (why) => {
    if (queued.length) refuse(`${why}; not applied: ${queued.map(name).join(" ")}`);
    queued.length = 0;
  };
  const wait = () => {
    waiting = setTimeout(() => { waiting = null; drop("no answer from the server"); showQueue(); },
                         ANSWER_MS);
  };
  const pick = (key) => {
    const options = shown() ? best().querySelectorAll("input[type=radio]") : [];
    const option = options[Number(key) - 1];
    if (option) { option.click(); return; }
    refuse(options.length ? `key ${key}: this item has ${options.length} choices`
                          : `key ${key}: no item is open`);
  };
  const run = (key) => {
    const button = document.querySelector(BUTTONS[key]);
    if (!button) { refuse(`key ${name(key)}: the Annotate tab is not shown`); return; }
    wait();
    button.click();  // untrusted: the click listener below lets it through
  };
  const pump = () => {
    while (waiting === null && queued.length) {
      const key = queued.shift();
      if (/^[1-9]$/.test(key)) pick(key); else run(key);
    }
    showQueue();
  };
  const accept = (key) => {
    if (queued.length >= MAX_QUEUED) { refuse(`key ${name(key)}: ${MAX_QUEUED} keys wait already`); return; }
    say("refusal", "");
    queued.push(key);
    pump();
  };
  window.grmAnnotate = {
    done(ok) {  // the answer to Save, Skip, Undo or Start has been shown
      if (waiting === null) return;
      clearTimeout(waiting);
      waiting = null;
      if (!ok) drop("the key before was refused");
      setTimeout(pump, 0);  // after the page has drawn the answer
    },
    idle: () => waiting === null && queued.length === 0,  // every press applied or refused
  };
  window.addEventListener("click", (event) => {
    if (!event.isTrusted || !event.target.closest) return;
    const key = Object.keys(BUTTONS).find((k) => event.target.closest(BUTTONS[k]));
    if (key === undefined) return;
    if (waiting === null && queued.length === 0) { wait(); return; }  // goes through now
    event.preventDefault();
    event.stopImmediatePropagation();
    accept(key);  // its turn comes after the answers awaited
  }, true);
  document.addEventListener("keydown", (event) => {
    if (!shown() || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const target = event.target;
    const tag = (target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "select" || target.isContentEditable
        || (tag === "input" && target.type !== "radio")) return;
    const key = event.key.toLowerCase();
    if (!/^[1-9]$/.test(key) && !["enter", "s", "u"].includes(key)) return;
    if (key === "enter" && target.closest
        && target.closest("button, a, summary, [role=button], [role=tab]")) return;
    event.preventDefault();
    if (!event.repeat) accept(key);
  });
})();
</script>
"""

# Chained after each of the tab's events: the keys' queue goes on (KEYBOARD_JS).
_ANSWERED = "() => { if (window.grmAnnotate) window.grmAnnotate.done(true); }"
_REFUSED = "() => { if (window.grmAnnotate) window.grmAnnotate.done(false); }"


def others_html(view: ItemView, annotator: str) -> str:
    """Current labels on the item (names come from users and files: escaped)."""
    lines = [
        f"<li>{'you' if label.annotator == annotator else html.escape(label.annotator)}: "
        f"{'tie' if label.best is None else f'Response {label.best + 1}'}</li>"
        for label in view.labels
    ]
    truth = view.dataset_label
    if isinstance(truth, ItemLabel) and truth.best is not None:  # a best-of-n set too
        lines.append(f"<li>dataset label: {html.escape(value_words(truth.best))}</li>")
    return f"<ul>{''.join(lines)}</ul>" if lines else "<i>no labels yet</i>"


def walk_progress(walk: Walk, pending: int) -> str:
    """The progress line: what is pending, and what this walk has done."""
    done = f"{len(walk.saved)} labelled in this walk · {len(walk.skipped)} skipped"
    if walk.item_id is None:
        return f"**Queue done.** {done}"
    return f"**{pending} item(s) pending** in `{walk.queue.value}` · {done}"


def blind_choice(account: Account, ticked: bool = True) -> Any:
    """The Blind box for `account`: fixed and ticked for the roles that always label
    blind (`core.store.walks.ALWAYS_BLIND`), else `ticked` and theirs to change."""
    if account.role in ALWAYS_BLIND:
        return gr.update(value=True, interactive=False,
                         info="annotators always label blind: their labels stay independent")
    return gr.update(value=ticked, interactive=True, info="untick to see them while labelling")


def build_annotate_tab(studio: Studio) -> tuple[Callable[..., dict[Any, Any]], list[Any]]:
    """The tab; returns the page-load handler that resumes the account's walk, and
    the components it fills (the app wires it to the page's load)."""
    walk_state = gr.State(None)  # Walk | None: this page's walk
    with gr.Row():
        queue = gr.Dropdown(
            [q.value for q in Queue], value=Queue.UNLABELLED.value, label="Queue",
            info="; ".join(f"{q.value}: {h}" for q, h in QUEUE_HELP.items()), scale=3,
            elem_id="annotate-queue",
        )
        dataset = gr.Textbox(label="Dataset (blank: all)", scale=2, elem_id="annotate-dataset")
        blind = gr.Checkbox(True, label="Blind (hide others' labels, the dataset's label and "
                            "the judge)", scale=2, elem_id="annotate-blind")
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
    gr.HTML(KEY_STATUS_HTML, elem_id="annotate-keys")
    fill_reference, reference_components = build_reference_panel(studio, walk_state)
    judgement_id = gr.State(None)
    cleared = [scores, principles, critique, note]

    def show(account: Account, walk: Walk) -> dict[Any, Any]:
        walk, head = walk_on(studio.engine, account, walk)
        base: dict[Any, Any] = {walk_state: walk, progress: walk_progress(walk, head.pending),
                                **dict.fromkeys(cleared, "")}
        base.update(fill_reference(walk.item_id))
        if (view := head.view) is None:
            return {**base, item: "", samples: "", others: "",
                    best: gr.update(choices=[], value=None), judgement_id: None}
        choices = best_choices(len(view.responses))
        return {
            **base,
            item: item_html(view),
            samples: ("<i>not judged yet</i>" if view.judgement is None
                      else sample_cards_html(view.judgement)),
            samples_box: gr.update(visible=not walk.blind),
            others: "" if walk.blind else others_html(view, walk.annotator),
            best: gr.update(choices=choices, value=None),
            judgement_id: view.judgement_id,
        }

    outputs = [walk_state, progress, item, samples, samples_box, others, best, judgement_id,
               *cleared, *reference_components]

    def signed_in(request: gr.Request) -> Account:
        account = studio.account(request)
        if account is None:
            raise NotAllowedError("sign in first")
        return account

    def open_walk(walk: Walk | None) -> Walk:
        if walk is None:
            raise InputError("no item is open: choose a queue and press Start")
        return walk

    @shows_errors
    def on_start(queue_name: str, dataset_name: str, blind_on: bool,
                 request: gr.Request) -> dict[Any, Any]:
        account = signed_in(request)
        walk = start_walk(account, queue_name, dataset=dataset_name, blind=blind_on)
        return {**show(account, walk), blind: walk.blind}

    @shows_errors
    def on_save(walk: Walk | None, choice: str | None, s: str, p: str, c: str, n: str,
                jid: int | None, request: gr.Request) -> dict[Any, Any]:
        account = studio.require(request, Action.LABEL)
        walk = label_open_item(studio.engine, account, open_walk(walk), chosen_response(choice),
                               Corrections(s or "", p or "", c or "", n or ""), judgement_id=jid)
        return show(account, walk)

    @shows_errors
    def on_skip(walk: Walk | None, request: gr.Request) -> dict[Any, Any]:
        return show(signed_in(request), skip_open_item(open_walk(walk)))

    @shows_errors
    def on_undo(walk: Walk | None, request: gr.Request) -> dict[Any, Any]:
        account = studio.require(request, Action.LABEL)
        return show(account, undo_last_label(studio.engine, account, open_walk(walk)))

    @shows_errors
    def on_load(request: gr.Request) -> dict[Any, Any]:
        account = studio.account(request)
        if account is None:
            return {blind: gr.skip()}
        walk = resume_walk(studio.engine, account)
        if walk is None:
            return {blind: blind_choice(account)}
        return {**show(account, walk), queue: walk.queue.value, dataset: walk.dataset or "",
                blind: blind_choice(account, walk.blind)}

    for event in (
        start.click(on_start, [queue, dataset, blind], [*outputs, blind]),
        save.click(on_save, [walk_state, best, scores, principles, critique, note,
                             judgement_id], outputs),
        skip.click(on_skip, walk_state, outputs),
        undo.click(on_undo, walk_state, outputs),
    ):
        event.success(None, js=_ANSWERED, api_visibility="private")
        event.failure(None, js=_REFUSED, api_visibility="private")
    settle_load, settle_components = build_settle_panel(studio)  # admins and reviewers

    @shows_errors
    def on_page_load(request: gr.Request) -> dict[Any, Any]:
        return {**on_load(request), **settle_load(request)}

    return on_page_load, [*outputs, queue, dataset, blind, *settle_components]

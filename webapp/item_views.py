"""HTML of an item as the annotation screens show it, and the choice of a best
response as they offer it: shared by the Annotate tab's walk (`annotate_tab`)
and its queue of disagreements to settle (`settle_panel`). Every text from a
user or a file is escaped."""

from __future__ import annotations

import html

from core.errors import InputError
from core.store.queues import ItemView
from webapp.cards import injection_warnings_html

TIE = "Tie"


def best_choices(n_responses: int) -> list[str]:
    """The choices of a best response: 'Response 1'..'Response n', then Tie."""
    return [f"Response {i}" for i in range(1, n_responses + 1)] + [TIE]


def chosen_response(choice: str | None) -> int | None:
    """The response index of a choice shown as 'Response N'; None for a tie."""
    if not choice:
        raise InputError("pick the best response (keys 1-9) or Tie first")
    return None if choice == TIE else int(choice.split()[-1]) - 1


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

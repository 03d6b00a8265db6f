"""HTML of a judgement for `gr.HTML`: one collapsible card per sample and the vote panel.

Mirrors `core.report`. The vote panel says how far to trust the verdict
(`core.confidence`): a weak verdict is shown as LEANING in a neutral colour,
never as a green WINNER, with the reasons in words. Every text that comes from a user or a model (query,
responses, principles, critique, raw output, rescue text, failure reasons) is
untrusted and goes through `_text` / `_attr` (`html.escape`), so markup in it
is shown, never run. Styling is `CARD_CSS`, scoped to `.grm-` classes.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from core.confidence import ConfidenceLevel, VerdictConfidence, verdict_confidence
from core.injection import flagged_responses, warning_line
from core.report import parse_status
from core.types import Judgement, ParsedOutput, ParseFailure, Sample, Vote

CARD_CSS = """
.grm-card { border: 1px solid #cfd8dc; border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
.grm-card > summary { cursor: pointer; font-weight: 600; }
.grm-card--failed { border-left: 5px solid #c62828; }
.grm-card--rescued { border-left: 5px solid #ef6c00; }
.grm-card--parsed { border-left: 5px solid #2e7d32; }
.grm-text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 2px 0 8px 0; }
.grm-label { font-weight: 600; margin-top: 6px; }
.grm-table { border-collapse: collapse; margin: 4px 0; }
.grm-table th, .grm-table td { border: 1px solid #cfd8dc; padding: 2px 8px; text-align: left; }
.grm-flag { display: inline-block; border-radius: 4px; padding: 0 6px; margin-right: 6px;
  font-weight: 700; color: #fff; }
.grm-flag--win { background: #2e7d32; }
.grm-flag--moderate { background: #689f38; }
.grm-flag--leaning { background: #78909c; }
.grm-flag--tie { background: #ef6c00; }
.grm-flag--split { background: #6a1b9a; }
.grm-flag--none { background: #c62828; }
.grm-muted { color: #607d8b; }
.grm-confidence { border-radius: 4px; padding: 2px 8px; margin: 4px 0; border-left: 5px solid; }
.grm-confidence--strong { border-color: #2e7d32; background: #f1f8e9; }
.grm-confidence--moderate { border-color: #f9a825; background: #fffde7; }
.grm-confidence--weak { border-color: #ef6c00; background: #fff3e0; }
.grm-injection { border-left: 5px solid #c62828; background: #fff3f0; padding: 2px 8px;
  margin: 4px 0; }
/* An error is said once, in its pop-up (webapp.errors), not again as an "Error" pill
   drawn over every output of the event that failed (Gradio's status tracker). */
[data-testid="status-tracker"]:has(.error) { display: none !important; }
/* The Datasets tab's browse table: every header on one line (datasets_tab.BROWSE_WIDTHS). */
#datasets-table th .header-content, #datasets-table th .header-content span {
  white-space: nowrap; }
"""

if TYPE_CHECKING:
    from core.training.meta_vote import MetaGuidedVote

_SNIPPET = 80  # characters of a response shown in the vote table (full text on hover)


def _text(value: str) -> str:
    """Untrusted text as an HTML-escaped block that keeps its newlines."""
    return f'<div class="grm-text" style="white-space: pre-wrap">{escape(value)}</div>'


def _attr(value: str) -> str:
    """Untrusted text escaped for use inside a double-quoted attribute."""
    return escape(value, quote=True)


def _label(index: int) -> str:
    return f"R{index + 1}"


def _section(title: str, body: str | None) -> str:
    text = body.strip() if body and body.strip() else None
    content = _text(text) if text else '<div class="grm-muted">(missing)</div>'
    return f'<div class="grm-label">{escape(title)}</div>{content}'


def sample_status(sample: Sample) -> tuple[str, str]:
    """(css kind, short status) for a card header: parsed / failed / rescued."""
    parse = sample.parse
    if isinstance(parse, ParsedOutput):
        if sample.rescue is not None:
            return "rescued", "rescued"
        return "parsed", f"parsed ({parse.score_format})"
    rescued = " · rescue failed too" if sample.rescue is not None else ""
    return "failed", f"failed ({parse.reason}){rescued}"


def _scores_table(sample: Sample) -> str:
    n = len(sample.shown_order)
    if sample.scores is None:
        found = ""
        if isinstance(sample.parse, ParseFailure) and sample.parse.found_scores:
            numbers = ", ".join(f"{v:g}" for v in sample.parse.found_scores)
            found = f" Numbers found but not usable: {escape(numbers)}."
        return f'<div class="grm-muted">Scores: none (excluded from the vote).{found}</div>'
    head = "".join(f"<th>{_label(i)}</th>" for i in range(n))
    scores = "".join(f"<td>{s}</td>" for s in sample.scores)
    shown = "".join(f"<td>{sample.shown_order.index(i) + 1}</td>" for i in range(n))
    return (
        '<div class="grm-label">Scores (original order)</div><table class="grm-table">'
        f"<tr><th></th>{head}</tr><tr><th>score</th>{scores}</tr>"
        f"<tr><th>shown at position</th>{shown}</tr></table>"
    )


def _rescue_block(sample: Sample) -> str:
    if sample.rescue is None:
        return ""
    failure = sample.rescue.original_failure
    return (
        '<div class="grm-label">Rescue</div>'
        f"<div>Original failure: {escape(str(failure.kind))}: {escape(failure.reason)}</div>"
        '<div class="grm-label">The rescue wrote (after the forced scores prefix)</div>'
        f"{_text(sample.rescue.continuation)}"
    )


def _body_sections(sample: Sample) -> str:
    parse = sample.parse
    if not (parse.principles or parse.critique):
        return _section("Output (no Specific Criteria / Analysis sections)", sample.raw_text)
    parts = [_section("Principles", parse.principles), _section("Critique", parse.critique)]
    if sample.scores is None:
        parts.append(
            f'<details><summary>Raw output</summary>{_text(sample.raw_text)}</details>'
        )
    return "".join(parts)


def sample_card_html(sample: Sample, k: int) -> str:
    """A `<details>` card for one sample: header, principles, critique (or the raw
    output), scores in original order with shown positions, parse status, rescue."""
    kind, status = sample_status(sample)
    shown = ", ".join(_label(i) for i in sample.shown_order)
    cut = " · cut off at the token limit" if sample.finish_reason == "length" else ""
    header = f"Sample {sample.index + 1}/{k} · shown order {shown} · {status}{cut}"
    return (
        f'<details class="grm-card grm-card--{kind}" data-sample="{sample.index + 1}">'
        f"<summary>{escape(header)}</summary>"
        f"{_body_sections(sample)}{_scores_table(sample)}"
        f'<div class="grm-label">Parse</div><div>{escape(parse_status(sample))}</div>'
        f"{_rescue_block(sample)}</details>"
    )


def sample_cards_html(judgement: Judgement) -> str:
    """The cards of every sample of `judgement`, in sample order."""
    k = judgement.params.k
    return '<div class="grm-cards">' + "".join(
        sample_card_html(s, k) for s in judgement.samples
    ) + "</div>"


def _flag(kind: str, text: str) -> str:
    return f'<span class="grm-flag grm-flag--{kind}">{escape(text)}</span>'


_WIN_FLAG = {ConfidenceLevel.STRONG: "win", ConfidenceLevel.MODERATE: "moderate"}


def _confidence_badge(confidence: VerdictConfidence) -> str:
    """How far to trust the verdict, in words (e.g. 'this verdict is weak')."""
    level = confidence.level.value
    return (f'<div class="grm-confidence grm-confidence--{level}" data-confidence="{level}">'
            f"<b>{escape(level.capitalize())} verdict.</b> {escape(confidence.sentence)}</div>")


def _winner_line(vote: Vote, confidence: VerdictConfidence) -> str:
    """WINNER (strong: green; moderate: a lighter green), or LEANING for a weak verdict."""
    assert vote.winner is not None
    if confidence.level is ConfidenceLevel.WEAK:
        line = _flag("leaning", "LEANING") + (
            f"Leaning {_label(vote.winner)}: a weak verdict, not a clear win")
    else:
        line = _flag(_WIN_FLAG[confidence.level], "WINNER") + f"Winner: {_label(vote.winner)}"
    if vote.runner_up is not None:
        return line + f" · margin {vote.margin} over the runner-up {_label(vote.runner_up)}"
    return line + " (the only response)"


def _headline(judgement: Judgement, confidence: VerdictConfidence) -> str:
    """Winner and margin (LEANING when weak), or TIE with the tie-break pick named as
    such, SPLIT, and the confidence badge."""
    vote = judgement.vote
    if vote.winner is None:
        return (_flag("none", "NO WINNER") + "No sample produced usable scores."
                + _confidence_badge(confidence))
    if vote.tie:
        tied = ", ".join(_label(i) for i in vote.top)
        order = ", ".join(_label(i) for i in vote.tie_break_order or ())
        line = _flag("tie", "TIE") + (
            f"TIE between {tied}: a tie is not a win, there is no winner by the vote. "
            f"Tie-break pick: {_label(vote.winner)} (first tied response in the recorded "
            f"shuffle {order})."
        )
    else:
        line = _winner_line(vote, confidence)
    if len(judgement.input.responses) > 1:
        split = _flag("split", "SPLIT") + "samples disagree on the winner"
        line += f"<div>{split if vote.split else 'No split: the samples agree on the winner.'}</div>"
    return f'<div class="grm-headline">{line}{_confidence_badge(confidence)}</div>'


def _counts(judgement: Judgement) -> str:
    vote = judgement.vote
    return (
        f'<div class="grm-counts">{vote.valid_samples} valid · {vote.invalid_samples} failed · '
        f"{judgement.rescued_samples} rescued · of k={len(judgement.samples)} samples</div>"
    )


def _snippet(response: str) -> str:
    short = response if len(response) <= _SNIPPET else response[: _SNIPPET - 1] + "…"
    return f'<span title="{_attr(response)}">{escape(short)}</span>'


def _totals_table(judgement: Judgement, confidence: VerdictConfidence) -> str:
    vote = judgement.vote
    weak = confidence.level is ConfidenceLevel.WEAK
    rows = []
    for i, response in enumerate(judgement.input.responses):
        mean = vote.means[i]
        marker = ""
        if i == vote.winner:
            marker = "tie-break pick" if vote.tie else "leaning (weak)" if weak else "winner"
        elif i in vote.top:
            marker = "tied"
        scores = ", ".join(str(s) for s in vote.distribution[i])
        rows.append(
            f'<tr data-response="{i + 1}"><th>{_label(i)}</th><td>{_snippet(response)}</td>'
            f"<td>{vote.totals[i]}</td><td>{'n/a' if mean is None else f'{mean:.2f}'}</td>"
            f"<td>{scores}</td><td>{marker}</td></tr>"
        )
    return (
        '<table class="grm-table"><tr><th></th><th>response</th><th>total</th><th>mean</th>'
        f"<th>scores</th><th></th></tr>{''.join(rows)}</table>"
    )


def vote_panel_html(judgement: Judgement) -> str:
    """The vote: winner and margin (or TIE / no winner), SPLIT, how far to trust it,
    sample counts, and per response its total, mean and scores over the valid samples."""
    query = _snippet(judgement.input.query)
    confidence = verdict_confidence(judgement)
    return (
        f'<div class="grm-vote"><div class="grm-muted">Query: {query}</div>'
        f"{_headline(judgement, confidence)}{injection_warnings_html(judgement.input.responses)}"
        f"{_counts(judgement)}{_totals_table(judgement, confidence)}</div>"
    )


def injection_warnings_html(responses: tuple[str, ...] | list[str]) -> str:
    """A warning per response that looks like it tries to steer the judge (escaped)."""
    return "".join(
        f'<div class="grm-injection">⚠ {_text(warning_line(index, flags))}</div>'
        for index, flags in flagged_responses(responses).items()
    )


def _vote_line(vote: Vote) -> str:
    totals = " · ".join(f"R{i + 1} {t}" for i, t in enumerate(vote.totals)) or "no valid samples"
    if vote.winner is None:
        return f"{totals} → no winner"
    return f"{totals} → {_flag('tie', 'TIE') if vote.tie else ''}R{vote.winner + 1}"


def meta_panel_html(view: MetaGuidedVote | None) -> str:
    """Meta-guided voting beside the plain vote: each sample's meta reward, the
    samples kept (top k_meta), both votes, and whether the winner changes."""
    if view is None:
        return ""
    rows = "".join(
        f"<tr><td>Sample {i + 1}</td><td>{m:.3f}</td>"
        f"<td>{'✔ voted' if i in view.chosen else ''}</td></tr>"
        for i, m in enumerate(view.meta_scores)
    )
    source = f" · {_text(view.meta_model)}" if view.meta_model else ""
    change = (_flag("split", "CHANGES THE WINNER") if view.changes_winner
              else '<span class="grm-muted">same winner as the plain vote</span>')
    return (
        f'<div class="grm-meta" id="meta-vote"><div class="grm-label">Meta-guided vote '
        f"(top {view.k_meta} of {len(view.meta_scores)} samples by meta reward{source})</div>"
        f"<div>Plain: {_vote_line(view.plain)}</div><div>Meta-guided: {_vote_line(view.vote)} "
        f"{change}</div>"
        f'<table class="grm-table"><tr><th>sample</th><th>meta reward</th><th></th></tr>'
        f"{rows}</table></div>"
    )

"""Plain-text report of a judgement, for terminals and plain-text views."""

from __future__ import annotations

import textwrap

from core.confidence import verdict_confidence
from core.types import Judgement, ParsedOutput, Sample


def _label(index: int) -> str:
    return f"R{index + 1}"


def _block(title: str, text: str | None) -> str:
    body = textwrap.indent(text.strip(), "    ") if text and text.strip() else "    (missing)"
    return f"  {title}:\n{body}"


def parse_status(sample: Sample) -> str:
    """One line on how the sample's scores were (or were not) read."""
    parse = sample.parse
    if sample.rescue is not None:
        failure = sample.rescue.original_failure
        outcome = "rescued" if isinstance(parse, ParsedOutput) else f"rescue failed ({parse.reason})"
        return f"failed to parse ({failure.kind}: {failure.reason}), {outcome}"
    if isinstance(parse, ParsedOutput):
        missing = parse.missing_sections
        return f"parsed ({parse.score_format})" + (
            f"; missing sections: {', '.join(missing)}" if missing else ""
        )
    return f"failed to parse ({parse.kind}: {parse.reason})"


def render_sample(sample: Sample, k: int) -> str:
    shown = ", ".join(_label(i) for i in sample.shown_order)
    parse = sample.parse
    lines = [
        f"── Sample {sample.index + 1}/{k} · shown order: {shown} · {parse_status(sample)}"
        + (" · cut off at the token limit" if sample.finish_reason == "length" else "")
    ]
    if parse.principles or parse.critique:
        lines += [_block("Principles", parse.principles), _block("Critique", parse.critique)]
    else:
        lines.append(_block("Output (no Specific Criteria / Analysis sections)", sample.raw_text))
    if sample.rescue is not None:
        lines.append(f"  Rescue wrote: {sample.rescue.continuation!r}")
    if sample.scores is not None:
        scores = "  ".join(f"{_label(i)}={s}" for i, s in enumerate(sample.scores))
        lines.append(f"  Scores (original order): {scores}")
    else:
        lines.append("  Scores: none (excluded from the vote)")
        if parse.principles or parse.critique:
            lines.append(_block("Raw output", sample.raw_text))
    return "\n".join(lines)


def render_vote(judgement: Judgement) -> str:
    vote = judgement.vote
    lines = [
        (f"Vote over {vote.valid_samples} valid sample(s) "
         f"({vote.invalid_samples} failed to parse, {judgement.rescued_samples} rescued)")
    ]
    if vote.winner is None:
        lines.append("  No winner: no sample produced usable scores.")
        return "\n".join(lines)
    for i, total in enumerate(vote.totals):
        mean = vote.means[i]
        marker = ""
        if i == vote.winner:
            marker = "  ← tie-break pick" if vote.tie else "  ← winner"
        lines.append(
            f"  {_label(i)}  total {total:>3}  mean {mean:5.2f}  "
            f"scores {list(vote.distribution[i])}{marker}"
        )
    if vote.tie:
        tied = ", ".join(_label(i) for i in vote.top)
        order = ", ".join(_label(i) for i in vote.tie_break_order or ())
        summary = (
            f"TIE between {tied}: no winner by the vote; the recorded tie-break "
            f"(shuffled order {order}) picks Response {vote.winner + 1}"
        )
    else:
        summary = f"Winner: Response {vote.winner + 1}"
        if vote.runner_up is not None:
            summary += f" · margin {vote.margin} over Response {vote.runner_up + 1}"
    if len(judgement.input.responses) > 1:
        summary += " · split: " + ("yes, samples disagree on the winner" if vote.split else "no")
    lines.append(summary)
    lines.append(f"Confidence: {verdict_confidence(judgement).sentence}")
    return "\n".join(lines)


def render_judgement(judgement: Judgement) -> str:
    model, params, template = judgement.model, judgement.params, judgement.template
    revision = f", {model.revision[:12]}" if model.revision else ""
    header = (
        f"Judge: {model.name} ({model.backend}{revision}) · template {template.name} "
        f"({template.sha256[:12]}) · k={params.k} temperature={params.temperature} "
        f"top_p={params.top_p} seed={params.seed} · {judgement.seconds:.1f} s"
    )
    parts = [header, ""]
    parts += [render_sample(s, params.k) + "\n" for s in judgement.samples]
    parts.append(render_vote(judgement))
    return "\n".join(parts)

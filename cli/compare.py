"""`grm-studio compare`: judge against judge on one dataset, item by item."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.app import app, fail, load_settings, reported_errors
from core.compare import JudgeComparison
from core.estimates import Estimate

SIDE_HELP = ("run:ID (an evaluation run's judgements), judge:NAME or judge:ID (a judge "
             "model's latest judgement of each item); @K reads the first K samples only")


@app.command("compare")
def compare(
    a: Annotated[str | None, typer.Option("--a", help=f"side A: {SIDE_HELP}")] = None,
    b: Annotated[str | None, typer.Option("--b", help="side B, named as side A")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="the dataset to compare on (default: the evaluation runs' dataset)")] = None,
    show: Annotated[int, typer.Option(min=0, help="list at most this many of the items "
                                      "whose verdicts differ")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (every differing item)")]
    = False,
    list_sides: Annotated[bool, typer.Option("--list", help="list the runs and judges to "
                                             "compare")] = False,
) -> None:
    """Judge against judge: both sides' accuracy (strict rule, a tie is wrong), the paired
    difference A - B with a bootstrap 95% CI over items, Cohen's kappa between their
    verdicts, who is right where, and the items where the verdicts differ."""
    from core.service import compare_judges
    from core.store import open_store
    from core.store.verdicts import side_choices

    with reported_errors():
        engine = open_store(load_settings())
        if list_sides:
            for label, spec in side_choices(engine):
                typer.echo(f"{spec:14} {label}")
            return
        if a is None or b is None:
            raise fail("name both sides: --a RUN_OR_JUDGE --b RUN_OR_JUDGE (--list shows them)")
        comparison = compare_judges(engine, a, b, dataset)
    if as_json:
        typer.echo(json.dumps(comparison.record(), indent=2))
        return
    for line in report_lines(comparison, show=show):
        typer.echo(line)


def _figure(e: Estimate, spec: str = ".1%") -> str:
    """'75.0%  95% CI [52.1%, 89.2%]', or the value and why it has no CI, or why none."""
    if e.value is None:
        return f"n/a ({e.note})"
    value = f"{e.value:{spec}}"
    if e.low is None or e.high is None:
        return f"{value}  ({e.note or 'no 95% CI'})"
    caveat = f"  ({e.note})" if e.note else ""
    return f"{value}  95% CI [{e.low:{spec}}, {e.high:{spec}}]{caveat}"


def report_lines(c: JudgeComparison, *, show: int = 20) -> list[str]:
    """The comparison as the terminal shows it."""
    excluded = "; ".join(f"{why}: {n}" for why, n in c.excluded)
    lines = [
        f"Judge against judge on '{c.dataset}': {len(c.items)} labelled items judged by both"
        + (f" (left out: {excluded})" if excluded else ""),
        f"  A  {c.a.label}", f"  B  {c.b.label}", "",
        f"accuracy A        {_figure(c.accuracy_a)}",
        f"accuracy B        {_figure(c.accuracy_b)}",
        f"A - B (paired)    {_figure(c.difference, '+.1%')}",
        f"Cohen's kappa     {_figure(c.kappa, '.3f')}", "",
        f"{'':14}{'B right':>10}{'B wrong':>10}",
        f"{'A right':14}{c.confusion.both_right:>10}{c.confusion.only_a:>10}",
        f"{'A wrong':14}{c.confusion.only_b:>10}{c.confusion.both_wrong:>10}", "",
    ]
    differing = c.differing
    lines.append(f"{len(differing)} item(s) where the verdicts differ"
                 + (f" (first {show}):" if len(differing) > show else ":" if differing else "."))
    if differing and show:
        lines.append(f"{'item':>8}  {'label':>5}  {'A says':>7}  {'B says':>7}  "
                     f"{'outcome':14}  judgements (A, B)")
    lines += [f"{p.item_id:>8}  R{p.best + 1:<4}  {_says(p.a.winner):>7}  "
              f"{_says(p.b.winner):>7}  {p.outcome:14}  #{p.a.judgement_id}, #{p.b.judgement_id}"
              for p in differing[:show]]
    return lines


def _says(winner: int | None) -> str:
    return "no win" if winner is None else f"R{winner + 1}"

"""`grm-studio eval`: judge a dataset, score greedy / one sample / voting@k / meta@k."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.app import app, fail, load_settings, reported_errors
from cli.compare import report_lines
from core.config import Settings
from core.errors import InputError
from core.files import atomic_write
from core.references import BOTH, ReferenceMode, parse_reference_mode


def parse_list(raw: str, what: str) -> list[str]:
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        raise InputError(f"--{what} needs a comma-separated list, e.g. 1,8")
    return values


def parse_k_list(raw: str) -> list[int]:
    try:
        return [int(v) for v in parse_list(raw, "k")]
    except ValueError:
        raise InputError(f"--k takes whole numbers separated by commas, e.g. 1,8; got '{raw}'")\
            from None


@app.command("eval")
def eval_(
    dataset: Annotated[str, typer.Option(help="a stored dataset (see `grm-studio stats`)")],
    k: Annotated[str, typer.Option("--k", "-k", help="values of k, e.g. 1,8 (judged once "
                                   "with max k samples)")] = "1,8",
    voting: Annotated[str, typer.Option(help="sum (plain voting), meta (meta-guided), or "
                                        "both: sum,meta")] = "sum",
    meta_model: Annotated[Path | None, typer.Option(
        help="the meta reward model for --voting meta")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="first N items only")] = None,
    greedy: Annotated[bool, typer.Option("--greedy/--no-greedy",
                                         help="also judge once at temperature 0")] = True,
    out: Annotated[Path | None, typer.Option(
        help="write report.md, results.csv and accuracy_vs_k.html here")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0)] = None,
    top_p: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    seed: Annotated[int | None, typer.Option(min=0)] = None,
    template: Annotated[str | None, typer.Option(help="prompt template name")] = None,
    model: Annotated[str | None, typer.Option(
        help="'studio' (default), 'embedded' (the base), a model directory or a .gguf file")] = None,
    rescue: Annotated[bool | None, typer.Option("--rescue/--no-rescue")] = None,
    reference: Annotated[str, typer.Option(
        "--reference", help="items' reference answers: shown to the judge (default), hidden, "
        "or both (two runs on the same items, compared: the paired difference with a "
        "bootstrap 95% CI over the items that have one)")] = "shown",
) -> None:
    """Evaluate the judge on a labelled dataset: accuracy (strict rule, a tie is
    wrong, 95% CIs) of greedy, one sample, voting@k and meta-guided@k; parse-failure
    and rescue rates, position bias, per category. Stored, and resumable."""
    settings = load_settings(model=model, temperature=temperature, top_p=top_p,
                             max_new_tokens=max_new_tokens, seed=seed, template=template,
                             rescue=rescue)
    with reported_errors():
        both = reference.strip().lower() == BOTH
        references = "shown" if both else parse_reference_mode(reference)
        ks = parse_k_list(k)
        votings = parse_list(voting, "voting")
        if meta_model is not None and "meta" not in votings:
            raise fail("--meta-model is for --voting meta (e.g. --voting sum,meta)")
        if "meta" in votings and meta_model is None:
            from core.service import META_MISSING

            raise InputError(META_MISSING.replace(": train", " (--meta-model PATH): train"))
        _evaluate(settings, dataset, ks, votings, meta_model, limit, greedy, out,
                  references, both=both)


def _evaluate(
    settings: Settings,
    dataset: str,
    ks: list[int],
    votings: list[str],
    meta_model: Path | None,
    limit: int | None,
    greedy: bool,
    out: Path | None,
    references: ReferenceMode,
    *,
    both: bool = False,
) -> None:
    from rich.progress import Progress, TaskID

    from core.evaluation import parse_ks, render_markdown, write_report
    from core.service import (
        EvalProgress,
        build_judge,
        evaluate_references,
        load_meta_model,
        run_evaluation,
    )
    from core.store import open_store
    from core.store.batch import has_references, require_dataset

    engine = open_store(settings)
    require_dataset(engine, dataset)  # before the slow model load
    if both and not has_references(engine, dataset, limit=limit):
        raise InputError(f"--reference both: no item of '{dataset}' has a reference answer"
                         + (f" among the first {limit}" if limit else ""))
    try:
        chosen = parse_ks(ks)
    except ValueError as err:
        raise InputError(str(err)) from None
    scorer = load_meta_model(meta_model, settings) if meta_model is not None else None
    typer.echo(f"Loading judge '{settings.model}' ...", err=True)
    judge_ = build_judge(settings)
    with Progress(transient=True) as progress:
        tasks: dict[tuple[str, str], TaskID] = {}

        def advance(state: EvalProgress) -> None:
            key = (state.references, state.phase)
            if key not in tasks:
                label = f"k={max(chosen)} samples" if state.phase == "sampled" else "greedy"
                hidden = ", references hidden" if state.references == "hidden" else ""
                tasks[key] = progress.add_task(f"judging {dataset} ({label}{hidden})")
            report = state.report
            progress.update(tasks[key], total=report.total - report.already_done,
                            completed=report.judged + len(report.failed))

        options: dict[str, Any] = {"ks": chosen, "votings": votings, "limit": limit, "greedy": greedy,
                   "meta_scorer": scorer, "on_item": advance}
        if both:
            compared = evaluate_references(engine, judge_, dataset, settings.sampling(),
                                           **options)
        else:
            evaluation = run_evaluation(engine, judge_, dataset, settings.sampling(),
                                        references=references, **options)
    if not both:
        typer.echo(render_markdown(evaluation))
        if out is not None:
            for path in write_report(evaluation, out):
                typer.echo(f"wrote {path}")
        return
    for evaluation in (compared.shown, compared.hidden):
        typer.echo(render_markdown(evaluation))
        if out is not None:
            for path in write_report(evaluation, out / f"references-{evaluation.run.references}"):
                typer.echo(f"wrote {path}")
    shown, hidden = compared.shown.run.id, compared.hidden.run.id
    typer.echo(f"## References shown (run #{shown}) against hidden (run #{hidden})\n")
    for line in report_lines(compared.comparison):
        typer.echo(line)
    typer.echo(f"\nOther readings: grm-studio compare --a run:{shown}@1 --b run:{hidden}@1")
    if out is not None:
        path = out / "references-compared.json"
        with atomic_write(path) as handle:
            handle.write(json.dumps(compared.comparison.record(), indent=2) + "\n")
        typer.echo(f"wrote {path}")

"""`grm-studio eval`: judge a dataset, score greedy / one sample / voting@k / meta@k."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, fail, load_settings, reported_errors
from core.config import Settings
from core.errors import InputError


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
) -> None:
    """Evaluate the judge on a labelled dataset: accuracy (strict rule, a tie is
    wrong, 95% CIs) of greedy, one sample, voting@k and meta-guided@k; parse-failure
    and rescue rates, position bias, per category. Stored, and resumable."""
    settings = load_settings(model=model, temperature=temperature, top_p=top_p,
                             max_new_tokens=max_new_tokens, seed=seed, template=template,
                             rescue=rescue)
    with reported_errors():
        ks = parse_k_list(k)
        votings = parse_list(voting, "voting")
        if meta_model is not None and "meta" not in votings:
            raise fail("--meta-model is for --voting meta (e.g. --voting sum,meta)")
        if "meta" in votings and meta_model is None:
            from core.service import META_MISSING

            raise InputError(META_MISSING.replace(": train", " (--meta-model PATH): train"))
        _evaluate(settings, dataset, ks, votings, meta_model, limit, greedy, out)


def _evaluate(
    settings: Settings,
    dataset: str,
    ks: list[int],
    votings: list[str],
    meta_model: Path | None,
    limit: int | None,
    greedy: bool,
    out: Path | None,
) -> None:
    from rich.progress import Progress, TaskID

    from core.evaluation import parse_ks, render_markdown, write_report
    from core.service import EvalProgress, build_judge, load_meta_model, run_evaluation
    from core.store import open_store
    from core.store.batch import require_dataset

    engine = open_store(settings)
    require_dataset(engine, dataset)  # before the slow model load
    try:
        chosen = parse_ks(ks)
    except ValueError as err:
        raise InputError(str(err)) from None
    scorer = load_meta_model(meta_model, settings) if meta_model is not None else None
    typer.echo(f"Loading judge '{settings.model}' ...", err=True)
    judge_ = build_judge(settings)
    with Progress(transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(state: EvalProgress) -> None:
            if state.phase not in tasks:
                label = f"k={max(chosen)} samples" if state.phase == "sampled" else "greedy"
                tasks[state.phase] = progress.add_task(f"judging {dataset} ({label})")
            report = state.report
            progress.update(tasks[state.phase], total=report.total - report.already_done,
                            completed=report.judged + len(report.failed))

        evaluation = run_evaluation(
            engine, judge_, dataset, settings.sampling(), ks=chosen, votings=votings,
            limit=limit, greedy=greedy, meta_scorer=scorer, on_item=advance)
    typer.echo(render_markdown(evaluation))
    if out is not None:
        for path in write_report(evaluation, out):
            typer.echo(f"wrote {path}")

"""`grm-studio import / stats / export`: the store from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, load_settings, reported_errors
from core.agreement import Estimate
from core.errors import InputError


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(help="JSON, JSONL, CSV (optionally .gz) or Parquet file; a folder of "
                            "Parquet shards; a Hugging Face datasets folder (save_to_disk)"),
    ],
    dataset: Annotated[str, typer.Option(help="dataset to import into (created if new)")],
    preset: Annotated[
        str | None,
        typer.Option(help="a shape or preset by name (rewardbench2, chatbot_arena, ...); "
                          "detected from the first record if unset"),
    ] = None,
    field_map: Annotated[
        list[str] | None,
        typer.Option("--map", help="ROLE=FIELD, repeatable: query, context, responses "
                                   "(FIELD,FIELD,...), chosen, rejected, best, ratings, "
                                   "reference, category, id, turn, labeller; a field may be "
                                   "a path (completions[].response). With --preset, changes "
                                   "the preset's roles"),
    ] = None,
    label_values: Annotated[
        list[str] | None,
        typer.Option(help="how the best field names a response: VALUE=INDEX (from 0) or "
                          "VALUE=tie, comma-separated, e.g. 1=0,2=1,tie=tie"),
    ] = None,
    shape: Annotated[str | None, typer.Option(hidden=True, help="the old name of --preset")] = None,
) -> None:
    """Import preference data: one transaction, idempotent, with a report of what was skipped."""
    from core.datasets import parse_roles
    from core.store import open_store
    from core.store.importing import import_file

    with reported_errors():
        if preset is not None and shape is not None:
            raise InputError("give --preset or --shape (its old name), not both")
        mapping = None
        if field_map or label_values:
            mapping = parse_roles(field_map or [], label_values or [])
        settings = load_settings()
        report = import_file(open_store(settings), file, dataset, shape=preset or shape,
                             limits=settings.import_limits(), mapping=mapping)
    typer.echo(report.summary())
    for skipped in report.skipped:
        typer.echo(f"  skipped {skipped.reason}")
    if report.more_skipped:
        typer.echo(f"  … and {report.more_skipped:,} more skipped records")


@app.command()
def stats(
    dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None,
) -> None:
    """Counts per dataset, judge accuracy and agreement, with 95% CIs."""
    from core.store import open_store
    from core.store.stats import agreement, dataset_counts

    with reported_errors():
        engine = open_store(load_settings())
        counts = dataset_counts(engine)
        result = agreement(engine, dataset)
    typer.echo(f"{'dataset':30} {'items':>7} {'truth':>7} {'imported':>9} {'labelled':>9} "
               f"{'judged':>7} {'labels':>7}")
    for c in counts:
        if dataset is None or c.dataset == dataset:
            typer.echo(
                f"{c.dataset:30} {c.items:7} {c.with_ground_truth:7} {c.imported_labels:9} "
                f"{c.labelled:9} {c.judged:7} {c.labels:7}"
            )
    typer.echo("(truth: items with a ground truth; imported: labels that came with the dataset; "
               "labelled, labels: by this studio's annotators)")
    typer.echo("")
    typer.echo(f"judge accuracy vs item label    {_estimate(result.accuracy_vs_label)}")
    typer.echo(f"judge accuracy vs human labels  {_estimate(result.accuracy_vs_humans)}")
    typer.echo(f"judge-human Cohen's kappa       {_estimate(result.judge_human_kappa)}")
    typer.echo(f"annotators Krippendorff's alpha {_estimate(result.annotator_alpha)}")
    for a, b, estimate in result.annotator_kappas:
        typer.echo(f"  kappa {a} / {b}: {_estimate(estimate)}")


def _estimate(e: Estimate) -> str:
    if e.value is None:
        return f"n/a (n={e.n}{'; ' + e.note if e.note else ''})"
    if e.low is None or e.high is None:  # e.g. too few items for a CI: the note says so
        return f"{e.value:.3f}  ({e.note or 'no 95% CI'})  n={e.n}"
    caveat = f"  ({e.note})" if e.note else ""
    return f"{e.value:.3f}  95% CI [{e.low:.3f}, {e.high:.3f}]  n={e.n}{caveat}"


@app.command()
def export(
    kind: Annotated[
        str,
        typer.Argument(help="items, labels or judgements (JSONL of the store's records); or "
                            "trl, trl-conversational, parquet or comparator (a dataset with "
                            "its labels and the judge's verdicts, for TRL, Hugging Face "
                            "datasets and PAIR's LLM Comparator)"),
    ],
    output: Annotated[Path, typer.Argument(help="file to write")],
    dataset: Annotated[
        str | None, typer.Option(help="only this dataset (required for the formats for other tools)")
    ] = None,
) -> None:
    """Export records or a dataset in another tool's format (written whole or not at all)."""
    from core.store import open_store
    from core.store.export import KINDS, export_jsonl
    from core.store.export_formats import FORMATS, export_preferences

    with reported_errors():
        if kind not in (*KINDS, *FORMATS):
            raise InputError(f"unknown export '{kind}'; one of {', '.join((*KINDS, *FORMATS))}")
        engine = open_store(load_settings())
        if kind in FORMATS:
            if dataset is None:
                raise InputError(f"--dataset is needed to export as {kind}")
            typer.echo(export_preferences(engine, kind, output, dataset).summary())
            return
        count = export_jsonl(engine, kind, output, dataset)
    typer.echo(f"wrote {count} {kind} record(s) to {output}")


@app.command()
def account(
    name: Annotated[str, typer.Argument(help="the annotator's sign-in name")],
    role: Annotated[str, typer.Option(help="admin, annotator or viewer")] = "annotator",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                          help="asked for when not given; never printed")
    ] = "",
) -> None:
    """Create an account, or change its role and password (argon2-hashed)."""
    from core.store import open_store
    from core.store.accounts import set_account

    with reported_errors():
        created = set_account(open_store(load_settings()), name, role, password)
    typer.echo(f"account '{created.name}' ({created.role}) saved")

"""The Training tab: build an RFT export (preview of the labels, counts, download),
train the judge on it with live progress and log, list the registered judges.

Handlers are module-level functions of the studio and plain values (tested
without a browser); the slow work runs in a thread and reports through a
queue, and closing the generator (the Stop button) stops it: an export then
writes nothing, a training run saves and registers nothing.
"""

from __future__ import annotations

import queue as queues
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import pandas as pd

from core.errors import GRMStudioError, NotAllowedError
from core.store.accounts import Account, Action, require
from core.store.browse import dataset_names
from core.training import (
    RFTConfig,
    RFTTrainConfig,
    export_rft,
    exports_dir,
    find_export,
    labelled_items,
    list_exports,
    list_judge_models,
    train_rft,
)
from webapp.studio import Studio

EXPORT_FILES = ("train.jsonl", "validation.jsonl", "hinted.jsonl", "card.json", "README.md")
MODEL_COLUMNS = ["id", "name", "backend", "trained", "parent", "export", "metrics", "source"]
EXPORT_COLUMNS = ["id", "export", "dataset", "train", "validation", "hinted", "sha256", "path"]


class _Stopped(Exception):
    """Raised inside a job when its generator was closed."""



def run_job(work: Callable[[Callable[[str], None]], str]) -> Iterator[str]:
    """Run `work(report)` in a thread, yielding each line it reports and then its
    result; closing the generator makes the next `report` call stop the job."""
    updates: queues.Queue[tuple[str, str | BaseException]] = queues.Queue()
    stop = threading.Event()

    def report(line: str) -> None:
        if stop.is_set():
            raise _Stopped
        updates.put(("line", line))

    def run() -> None:
        try:
            updates.put(("done", work(report)))
        except _Stopped:
            updates.put(("stopped", "stopped"))
        except BaseException as err:  # noqa: BLE001 - handed to the generator's thread
            updates.put(("error", err))

    threading.Thread(target=run, name="training-tab-job", daemon=True).start()
    try:
        while True:
            kind, value = updates.get()
            if kind == "line" or kind == "done":
                yield str(value)
                if kind == "done":
                    return
            elif kind == "stopped":
                return
            elif isinstance(value, GRMStudioError):
                yield f"Stopped by an error: {value}"
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()


def preview_labels(studio: Studio, dataset: str, limit: float | None) -> str:
    """How many items of `dataset` have a usable label, and why the others do not."""
    if not dataset:
        return "Choose a dataset."
    try:
        found = labelled_items(studio.engine, dataset, limit=int(limit or 0) or None)
    except GRMStudioError as err:
        return str(err)
    human = sum(i.label_source == "human" for i in found.items)
    corrected = sum(len(i.human) for i in found.items)
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items())) or "none"
    return (f"{len(found.items)} labelled item(s) ({human} by a human label, overriding the "
            f"dataset's; {corrected} human-corrected judgement(s)); left out: {skipped}.")


def counts_markdown(counts: dict[str, int]) -> str:
    rows = "".join(f"| {k} | {v} |\n" for k, v in sorted(counts.items()))
    return f"| count | n |\n|---|---|\n{rows}"


def build_export(
    studio: Studio, account: Account | None, dataset: str, name: str, n_rft: float,
    limit: float | None, keep_easy: bool, hinted: bool, max_hinted: float,
) -> Iterator[tuple[str, str, list[str] | None]]:
    """Build an export with the studio's judge if `account` may train: (progress
    line, counts, files to download)."""
    try:
        account = require(account, Action.TRAIN)
    except NotAllowedError as err:
        yield f"Not built: {err}.", "", None
        return
    if not dataset:
        yield "Choose a dataset.", "", None
        return
    settings = studio.settings
    config = RFTConfig(n_rft=int(n_rft), drop_too_easy=not keep_easy, hinted=hinted,
                       max_hinted=int(max_hinted))
    result: dict[str, Any] = {}

    def work(report: Callable[[str], None]) -> str:
        report(f"Loading the judge '{settings.model_shown}' …")
        info = export_rft(
            studio.engine, studio.judge(), dataset, name=name.strip() or f"{dataset}-rft",
            root=exports_dir(settings.data_dir), config=config, params=settings.sampling(),
            limit=int(limit or 0) or None, created_by=account.name,
            on_item=lambda done, total, build: report(
                f"Sampled {done} of {total} item(s): {build.counts['accepted']} accepted, "
                f"{build.counts['hinted']} hinted so far"),
        )
        result["info"] = info
        return f"Export {info.ref} written to {info.path} (sha256 {info.content_sha256[:12]})."

    for line in run_job(work):
        info = result.get("info")
        if info is None:
            yield line, "", None
        else:
            yield line, counts_markdown(info.counts), [str(info.path / f) for f in EXPORT_FILES]


def exports_table(studio: Studio) -> pd.DataFrame:
    return pd.DataFrame(
        [[r["id"], f"{r['name']}:v{r['version']}", r["dataset"], r["counts"].get("records_train", 0),
          r["counts"].get("records_validation", 0), r["counts"].get("records_hinted", 0),
          r["content_sha256"][:12], r["path"]] for r in reversed(list_exports(studio.engine))],
        columns=EXPORT_COLUMNS,
    )


def export_choices(studio: Studio) -> list[str]:
    return [f"{r['name']}:v{r['version']}" for r in reversed(list_exports(studio.engine))]


def start_training(
    studio: Studio, account: Account | None, export: str, lora: bool, epochs: float,
    max_steps: float, learning_rate: float | None, name: str,
    progress: Callable[..., Any] | None = None,
) -> Iterator[str]:
    """Train on `export` if `account` may, yielding the log (one line per logged
    step) as it grows."""
    try:
        account = require(account, Action.TRAIN)
    except NotAllowedError as err:
        yield f"Not trained: {err}."
        return
    if not export:
        yield "Choose an export."
        return
    settings = studio.settings
    try:
        config = RFTTrainConfig(name=name.strip() or None, lora=lora, epochs=epochs,
                                max_steps=int(max_steps or -1), learning_rate=learning_rate or None)
        found = find_export(studio.engine, export, exports_dir(settings.data_dir))
    except (GRMStudioError, ValueError) as err:
        yield f"Cannot train: {err}"
        return
    log: list[str] = []
    steps: dict[str, tuple[int, int]] = {}

    def work(report: Callable[[str], None]) -> str:
        report(f"Training {config.method} on {found.ref} …")

        def on_progress(step: int, total: int, logs: dict[str, float]) -> None:
            steps["done"] = (step, total)
            report(f"step {step}/{total}  " + "  ".join(f"{k} {v:.4g}" for k, v in logs.items()))

        trained = train_rft(studio.engine, found, config, settings, created_by=account.name,
                            on_progress=on_progress)
        return (f"Saved {trained.path}; registered as judge model {trained.judge_model_id} "
                f"'{trained.name}'. Choose it in the Judge tab's model picker.")

    for line in run_job(work):
        log.append(line)
        if progress is not None and "done" in steps:  # from this thread, as Gradio wants
            progress(steps["done"], desc="training steps")
        yield "\n".join(log[-200:])


def start_meta_training(
    studio: Studio, account: Account | None, dataset: str, name: str, max_steps: float,
    trainable_layers: float,
) -> Iterator[str]:
    """Train a meta reward model on the stored samples of `dataset` ('' or None: all)
    if `account` may, yielding the log as it grows; it is saved under
    `<data_dir>/meta-models/<name>` and registered for meta-guided voting."""
    try:
        account = require(account, Action.TRAIN)
    except NotAllowedError as err:
        yield f"Not trained: {err}."
        return
    from core.training.meta_rm import MetaTrainConfig, train_meta_rm

    title = name.strip() or f"meta-{dataset or 'all'}"
    out_dir = studio.settings.data_dir / "meta-models" / title
    if out_dir.exists():
        yield f"Cannot train: {out_dir} exists already; choose another name."
        return
    config = MetaTrainConfig(max_steps=int(max_steps) if max_steps and max_steps > 0 else None,
                             trainable_layers=int(trainable_layers) or None)
    log: list[str] = []

    def work(report: Callable[[str], None]) -> str:
        report(f"Training a meta reward model on the samples of '{dataset or 'every dataset'}' …")
        info = train_meta_rm(
            studio.engine, studio.settings, out_dir=out_dir, dataset=dataset or None,
            config=config, name=title, on_step=lambda step, loss: report(f"step {step}  loss {loss:.4g}"),
        )
        return (f"Saved {info.path}; registered for meta-guided voting "
                f"({info.positives} correct / {info.negatives} wrong samples). "
                "Pick it in the Judge tab's Meta RM list.")

    for line in run_job(work):
        log.append(line)
        yield "\n".join(log[-200:])


def models_table(studio: Studio) -> pd.DataFrame:
    rows = []
    for m in list_judge_models(studio.engine):
        metrics = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in (m.metrics or {}).items())
        rows.append([m.id, m.name, m.backend, m.method or "", m.parent or "", m.export or "",
                     metrics, m.source])
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def build_training_tab(studio: Studio) -> None:
    """Exports, training and the registered judges."""
    names = dataset_names(studio.engine)
    gr.Markdown("### 1. Build an RFT export\nThe judge samples trajectories for each labelled "
                "item; correct ones (best response strictly above the other) are kept, items "
                "it always gets right are dropped, items it never gets right get one hinted "
                "sample (the hint is never in the training prompt).")
    with gr.Row():
        dataset = gr.Dropdown(names, label="Dataset", elem_id="training-dataset")
        name = gr.Textbox(label="Export name", placeholder="default: DATASET-rft",
                          elem_id="training-export-name")
        limit = gr.Number(0, precision=0, minimum=0, label="First N items (0: all)",
                          elem_id="training-limit")
    with gr.Row():
        n_rft = gr.Slider(1, 8, value=3, step=1, label="Trajectories per item (N_RFT)",
                          elem_id="training-n-rft")
        max_hinted = gr.Number(64, precision=0, minimum=0, label="Max hinted samples",
                               elem_id="training-max-hinted")
        keep_easy = gr.Checkbox(False, label="Keep too-easy items", elem_id="training-keep-easy")
        hinted = gr.Checkbox(True, label="Hinted sampling", elem_id="training-hinted")
    with gr.Row():
        preview = gr.Button("Preview labels", elem_id="training-preview")
        build = gr.Button("Build export", variant="primary", elem_id="training-build")
        stop_build = gr.Button("Stop", elem_id="training-build-stop")
    preview_text = gr.Markdown(elem_id="training-preview-text")
    build_status = gr.Textbox(label="Progress", lines=2, interactive=False,
                              elem_id="training-build-status")
    counts = gr.Markdown(elem_id="training-counts")
    files = gr.File(label="Download", file_count="multiple", interactive=False,
                    elem_id="training-files")
    exports = gr.Dataframe(lambda: exports_table(studio), headers=EXPORT_COLUMNS,
                           interactive=False, elem_id="training-exports")

    gr.Markdown("### 2. Train the judge (rejective fine-tuning)")
    with gr.Row():
        export = gr.Dropdown(export_choices(studio), label="Export", elem_id="training-export")
        lora = gr.Checkbox(False, label="LoRA (merged at the end)", elem_id="training-lora")
        epochs = gr.Number(1.0, minimum=0.01, label="Epochs", elem_id="training-epochs")
        max_steps = gr.Number(-1, precision=0, minimum=-1, label="Max steps (-1: epochs)",
                              elem_id="training-max-steps")
        lr = gr.Number(None, label="Learning rate (empty: 1e-5, LoRA 2e-4)", elem_id="training-lr")
        judge_name = gr.Textbox(label="Judge name", placeholder="default from the export",
                                elem_id="training-judge-name")
    with gr.Row():
        train = gr.Button("Start training", variant="primary", elem_id="training-start")
        stop_train = gr.Button("Stop", elem_id="training-stop")
    train_log = gr.Textbox(label="Log", lines=10, interactive=False, elem_id="training-log")

    gr.Markdown("### 3. Train a meta reward model\nA classifier of the stored samples of "
                "labelled items (does this sample pick the labelled best?), for meta-guided "
                "voting in the Judge tab and `grm-studio eval --voting meta`.")
    with gr.Row():
        meta_dataset = gr.Dropdown([("every dataset", ""), *names], value="", label="Samples of",
                                   elem_id="training-meta-dataset")
        meta_name = gr.Textbox(label="Name", placeholder="default: meta-DATASET",
                               elem_id="training-meta-name")
        meta_steps = gr.Number(0, precision=0, minimum=0, label="Max steps (0: one epoch)",
                               elem_id="training-meta-steps")
        meta_layers = gr.Number(0, precision=0, minimum=0,
                                label="Train the last N blocks (0: all)",
                                elem_id="training-meta-layers")
    with gr.Row():
        meta_train = gr.Button("Train meta RM", variant="primary", elem_id="training-meta-start")
        stop_meta = gr.Button("Stop", elem_id="training-meta-stop")
    meta_log = gr.Textbox(label="Log", lines=6, interactive=False, elem_id="training-meta-log")

    gr.Markdown("### 4. Registered judge models\nChoose one for judging in the Judge tab.")
    refresh = gr.Button("↻ refresh", size="sm", elem_id="training-refresh")
    models = gr.Dataframe(lambda: models_table(studio), headers=MODEL_COLUMNS,
                          interactive=False, wrap=True, elem_id="training-models")

    def on_build(request: gr.Request, *values: Any) -> Iterator[tuple[Any, Any, Any]]:
        yield from build_export(studio, studio.account(request), *values)

    def on_train(exp: str, use_lora: bool, n_epochs: float, steps: float, rate: float | None,
                 title: str, request: gr.Request,
                 progress: gr.Progress = gr.Progress()) -> Iterator[str]:  # noqa: B008
        yield from start_training(studio, studio.account(request), exp, use_lora, n_epochs,
                                  steps, rate, title or "", progress)

    def on_meta(ds: str, title: str, steps: float, layers: float,
                request: gr.Request) -> Iterator[str]:
        yield from start_meta_training(studio, studio.account(request), ds or "", title or "",
                                       steps, layers)

    def refreshed() -> tuple[Any, Any, Any]:
        return (exports_table(studio), gr.update(choices=export_choices(studio)),
                models_table(studio))

    preview.click(lambda ds, n: preview_labels(studio, ds, n), [dataset, limit], preview_text)
    building = build.click(on_build, [dataset, name, n_rft, limit, keep_easy, hinted, max_hinted],
                           [build_status, counts, files])
    building.then(refreshed, None, [exports, export, models])
    stop_build.click(None, None, None, cancels=[building])
    training = train.click(on_train, [export, lora, epochs, max_steps, lr, judge_name], train_log)
    training.then(refreshed, None, [exports, export, models])
    stop_train.click(None, None, None, cancels=[training])
    refresh.click(refreshed, None, [exports, export, models])
    meta_running = meta_train.click(on_meta, [meta_dataset, meta_name, meta_steps, meta_layers],
                                    meta_log)
    stop_meta.click(None, None, None, cancels=[meta_running])

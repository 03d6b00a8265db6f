"""The Training tab: build an RFT export (preview of the labels, counts, download),
train the judge on it with live progress and log, train a meta reward model,
list the registered judges.

Handlers are module-level functions of the studio and plain values (tested
without a browser); they raise GRMStudioError on bad input or a role that may
not, and the wiring shows it (webapp.errors). The inputs start at the
trainers' config defaults (`field_default`), and an empty input is "not given":
the config's default applies. The slow work runs as a job
(core.jobs) in the studio's `Jobs`, and its Stop button stops the job: an
export then writes nothing, a training run saves and registers nothing.

Who sees what is `webapp.training_view.training_page`, shown when the page
loads and the tab opens: the forms for accounts that may train, the exports
and registered judges for everyone (server paths for admins only), and lists
read from the store then, so a dataset imported after the server started is
there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr
from pydantic import ValidationError

from core.errors import InputError
from core.jobs import Job, JobControl, Jobs, JobStatus, JobStopped
from core.service import export_rft
from core.store.accounts import Account, Action, require
from core.training import (
    ExportInfo,
    RFTBuild,
    RFTConfig,
    RFTTrainConfig,
    TrainedJudge,
    TrainingStopped,
    exports_dir,
    find_export,
    labelled_items,
    new_output_dir,
    train_rft,
)
from core.training.fields import field_default
from core.training.meta_rm import MetaTrainConfig, default_meta_name
from core.training.rft_trainer import FULL_LR, LORA_LR
from webapp.errors import shows_errors
from webapp.jobs import ProgressBar, follow, log_text, start_job, stop_job
from webapp.studio import Studio
from webapp.training_view import (
    EXPORT_COLUMNS,
    MODEL_COLUMNS,
    MODEL_WIDTHS,
    READ_ONLY_NOTE,
    column_widths,
    training_page,
)

EXPORT_FILES = ("train.jsonl", "validation.jsonl", "hinted.jsonl", "card.json", "README.md")
NOTHING_SAVED = "Stopped: nothing was saved or registered."
C = TypeVar("C")


def preview_labels(studio: Studio, dataset: str, limit: float | None) -> str:
    """How many items of `dataset` have a usable label, and why the others do not.
    Raises InputError."""
    if not dataset:
        raise InputError("choose a dataset")
    found = labelled_items(studio.engine, dataset, limit=int(limit or 0) or None)
    human = sum(i.label_source == "human" for i in found.items)
    corrected = sum(len(i.human) for i in found.items)
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items())) or "none"
    return (f"{len(found.items)} labelled item(s) ({human} by a human label, overriding the "
            f"dataset's; {corrected} human-corrected judgement(s)); left out: {skipped}.")


def _config(kind: Callable[..., C], **fields: Any) -> C:
    """A trainer's config from the page's fields that were given (not None);
    InputError naming each bad field."""
    try:
        return kind(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise InputError(f"cannot use these settings: {problems}") from None


def _int(number: float | None) -> int | None:
    """A whole number from a number box; None (not given) for an empty one."""
    return None if number is None else int(number)


def _shown(config: type[Any], field: str, none: Any = None) -> Any:
    """The initial value of an input for `config`'s `field`: its default, or `none`
    where that is None (0 for "no limit" boxes)."""
    default = field_default(config, field)
    return none if default is None else default


def counts_markdown(counts: dict[str, int]) -> str:
    rows = "".join(f"| {k} | {v} |\n" for k, v in sorted(counts.items()))
    return f"| count | n |\n|---|---|\n{rows}"


# --- 1. an RFT export ----------------------------------------------------------
def start_export(
    studio: Studio, account: Account | None, dataset: str, name: str, n_rft: float,
    limit: float | None, keep_easy: bool, hinted: bool, max_hinted: float,
    *, jobs: Jobs | None = None,
) -> Job:
    """Start building an export with the studio's judge if `account` may train.
    Raises NotAllowedError or InputError."""
    account = require(account, Action.TRAIN)
    if not dataset:
        raise InputError("choose a dataset")
    settings = studio.settings
    config = _config(RFTConfig, n_rft=_int(n_rft), drop_too_easy=not keep_easy, hinted=hinted,
                     max_hinted=_int(max_hinted))

    def work(control: JobControl) -> ExportInfo:
        control.log(f"Loading the judge '{settings.model_shown}' …")
        judge = studio.judge()
        control.raise_if_stopped()

        def on_item(done: int, total: int, build: RFTBuild) -> None:
            control.progress(done, total, "items sampled")
            control.log(f"Sampled {done} of {total} item(s): {build.counts['accepted']} "
                        f"accepted, {build.counts['hinted']} hinted so far")
            control.raise_if_stopped()

        return export_rft(
            studio.engine, judge, dataset, name=name.strip() or f"{dataset}-rft",
            root=exports_dir(settings.data_dir), config=config, params=settings.sampling(),
            limit=int(limit or 0) or None, created_by=account.name, on_item=on_item,
        )

    return start_job(jobs, f"rft-export-{dataset}", work)


def export_updates(
    job: Job, progress: ProgressBar | None = None
) -> Iterator[tuple[str, str, list[str] | None]]:
    """(progress line, counts, files to download) as the export job goes."""
    last = ""
    for line in follow(job, progress):
        last = line.text
        yield last, "", None
    state = job.state()
    if state.status is not JobStatus.FINISHED:
        yield f"{last}\nStopped: no export was written.", "", None
        return
    info: ExportInfo = state.result
    yield (f"Export {info.ref} written to {info.path} (sha256 {info.content_sha256[:12]}).",
           counts_markdown(info.counts), [str(info.path / f) for f in EXPORT_FILES])


def build_export(
    studio: Studio, account: Account | None, dataset: str, name: str, n_rft: float,
    limit: float | None, keep_easy: bool, hinted: bool, max_hinted: float,
    progress: ProgressBar | None = None, *, jobs: Jobs | None = None,
) -> Iterator[tuple[str, str, list[str] | None]]:
    """`start_export`, then its `export_updates`; closing this generator stops the job."""
    job = start_export(studio, account, dataset, name, n_rft, limit, keep_easy, hinted,
                       max_hinted, jobs=jobs)
    yield from export_updates(job, progress)


# --- 2. RFT training -------------------------------------------------------------
def start_rft_training(
    studio: Studio, account: Account | None, export: str, lora: bool, epochs: float,
    max_steps: float, learning_rate: float | None, name: str, *, jobs: Jobs | None = None,
) -> Job:
    """Start training on `export` if `account` may. Raises NotAllowedError or InputError."""
    account = require(account, Action.TRAIN)
    if not export:
        raise InputError("choose an export")
    settings = studio.settings
    config = _config(RFTTrainConfig, name=name.strip() or None, lora=lora, epochs=epochs,
                     max_steps=_int(max_steps or None), learning_rate=learning_rate or None)
    found = find_export(studio.engine, export, exports_dir(settings.data_dir))

    def work(control: JobControl) -> TrainedJudge:
        control.log(f"Training {config.method} on {found.ref} …")

        def on_progress(step: int, total: int, logs: dict[str, float]) -> None:
            control.progress(step, total, "training steps")
            control.log(f"step {step}/{total}  "
                        + "  ".join(f"{k} {v:.4g}" for k, v in logs.items()))

        try:
            return train_rft(studio.engine, found, config, settings, created_by=account.name,
                             on_progress=on_progress, should_stop=control.should_stop)
        except TrainingStopped:
            raise JobStopped from None

    return start_job(jobs, "rft-training", work)


def training_updates(job: Job, progress: ProgressBar | None = None) -> Iterator[str]:
    """The training log (its last lines) as it grows, then what was saved."""
    for _ in follow(job, progress):
        yield log_text(job.state())
    state = job.state()
    if state.status is not JobStatus.FINISHED:
        yield f"{log_text(state)}\n{NOTHING_SAVED}"
        return
    trained: TrainedJudge = state.result
    yield (f"{log_text(state)}\nSaved {trained.path}; registered as judge model "
           f"{trained.judge_model_id} '{trained.name}'. Choose it in the Judge tab's model "
           "picker.")


def start_training(
    studio: Studio, account: Account | None, export: str, lora: bool, epochs: float,
    max_steps: float, learning_rate: float | None, name: str,
    progress: ProgressBar | None = None, *, jobs: Jobs | None = None,
) -> Iterator[str]:
    """`start_rft_training`, then its `training_updates`; closing this generator
    stops the job."""
    job = start_rft_training(studio, account, export, lora, epochs, max_steps, learning_rate,
                             name, jobs=jobs)
    yield from training_updates(job, progress)


# --- 3. a meta reward model ------------------------------------------------------
def start_meta_job(
    studio: Studio, account: Account | None, dataset: str, name: str, max_steps: float,
    trainable_layers: float, *, jobs: Jobs | None = None,
) -> Job:
    """Start training a meta reward model on the stored samples of `dataset` ('' or
    None: all) if `account` may; it is saved under `<data_dir>/meta-models/<name>`
    and registered for meta-guided voting. 0 or empty steps or layers: the
    config's default. Raises NotAllowedError or InputError."""
    account = require(account, Action.TRAIN)
    from core.training.meta_rm import MetaModelInfo, train_meta_rm

    title = name.strip() or default_meta_name(dataset or None)
    new_output_dir(studio.settings, "meta-rm", title)  # free? (checked again when saving)
    config = _config(MetaTrainConfig,
                     max_steps=_int(max_steps) if max_steps and max_steps > 0 else None,
                     trainable_layers=_int(trainable_layers or None))

    def work(control: JobControl) -> MetaModelInfo:
        control.log(f"Training a meta reward model on the samples of "
                    f"'{dataset or 'every dataset'}' …")

        def on_step(step: int, loss: float) -> None:
            control.log(f"step {step}  loss {loss:.4g}")
            control.raise_if_stopped()

        return train_meta_rm(studio.engine, studio.settings, config, dataset=dataset or None,
                             name=title, on_step=on_step)

    return start_job(jobs, "meta-rm-training", work)


def meta_training_updates(job: Job) -> Iterator[str]:
    """The meta RM's training log as it grows, then what was saved."""
    for _ in follow(job):
        yield log_text(job.state())
    state = job.state()
    if state.status is not JobStatus.FINISHED:
        yield f"{log_text(state)}\n{NOTHING_SAVED}"
        return
    info = state.result
    yield (f"{log_text(state)}\nSaved {info.path}; registered for meta-guided voting "
           f"({info.positives} correct / {info.negatives} wrong samples). "
           "Pick it in the Judge tab's Meta RM list.")


def start_meta_training(
    studio: Studio, account: Account | None, dataset: str, name: str, max_steps: float,
    trainable_layers: float, *, jobs: Jobs | None = None,
) -> Iterator[str]:
    """`start_meta_job`, then its `meta_training_updates`; closing this generator
    stops the job."""
    job = start_meta_job(studio, account, dataset, name, max_steps, trainable_layers, jobs=jobs)
    yield from meta_training_updates(job)


def build_training_tab(studio: Studio, jobs: Jobs | None = None, tab: gr.Tab | None = None
                       ) -> None:
    """Exports, training and the registered judges; the slow work runs as jobs in
    the studio's `jobs`. The forms start hidden and the lists empty: the page's
    load (and opening `tab`, the gr.Tab this is built in) fills them for the
    account (`training_page`)."""
    jobs = jobs if jobs is not None else Jobs()
    export_job, training_job, meta_job = gr.State(None), gr.State(None), gr.State(None)
    note = gr.Markdown(READ_ONLY_NOTE, visible=False, elem_id="training-read-only")
    with gr.Column(visible=False, elem_id="training-export-form") as export_form:
        gr.Markdown("### 1. Build an RFT export\nThe judge samples trajectories for each "
                    "labelled item; correct ones (best response strictly above the other) are "
                    "kept, items it always gets right are dropped, items it never gets right "
                    "get one hinted sample (the hint is never in the training prompt).")
        with gr.Row():
            dataset = gr.Dropdown([], label="Dataset", elem_id="training-dataset")
            name = gr.Textbox(label="Export name", placeholder="default: DATASET-rft",
                              elem_id="training-export-name")
            limit = gr.Number(0, precision=0, minimum=0, label="First N items (0: all)",
                              elem_id="training-limit")
        with gr.Row():
            n_rft = gr.Slider(1, 8, value=_shown(RFTConfig, "n_rft"), step=1,
                              label="Trajectories per item (N_RFT)", elem_id="training-n-rft")
            max_hinted = gr.Number(_shown(RFTConfig, "max_hinted"), precision=0, minimum=0,
                                   label="Max hinted samples", elem_id="training-max-hinted")
            keep_easy = gr.Checkbox(not _shown(RFTConfig, "drop_too_easy"),
                                    label="Keep too-easy items", elem_id="training-keep-easy")
            hinted = gr.Checkbox(_shown(RFTConfig, "hinted"), label="Hinted sampling",
                                 elem_id="training-hinted")
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
    exports = gr.Dataframe(headers=EXPORT_COLUMNS, label="RFT exports", interactive=False,
                           elem_id="training-exports")

    with gr.Column(visible=False, elem_id="training-train-form") as train_form:
        gr.Markdown("### 2. Train the judge (rejective fine-tuning)")
        with gr.Row():
            export = gr.Dropdown([], label="Export", elem_id="training-export")
            lora = gr.Checkbox(_shown(RFTTrainConfig, "lora"), label="LoRA (merged at the end)",
                               elem_id="training-lora")
            epochs = gr.Number(_shown(RFTTrainConfig, "epochs"), minimum=0.01, label="Epochs",
                               elem_id="training-epochs")
            max_steps = gr.Number(_shown(RFTTrainConfig, "max_steps"), precision=0, minimum=-1,
                                  label="Max steps (-1: epochs)", elem_id="training-max-steps")
            lr = gr.Number(_shown(RFTTrainConfig, "learning_rate"),
                           label=f"Learning rate (empty: {FULL_LR:.0e}, LoRA {LORA_LR:.0e})",
                           elem_id="training-lr")
            judge_name = gr.Textbox(label="Judge name", placeholder="default from the export",
                                    elem_id="training-judge-name")
        with gr.Row():
            train = gr.Button("Start training", variant="primary", elem_id="training-start")
            stop_train = gr.Button("Stop", elem_id="training-stop")
        train_log = gr.Textbox(label="Log", lines=10, interactive=False, elem_id="training-log")

    with gr.Column(visible=False, elem_id="training-meta-form") as meta_form:
        gr.Markdown("### 3. Train a meta reward model\nA classifier of the stored samples of "
                    "labelled items (does this sample pick the labelled best?), for meta-guided "
                    "voting in the Judge tab and `grm-studio eval --voting meta`.")
        with gr.Row():
            meta_dataset = gr.Dropdown([("every dataset", "")], value="", label="Samples of",
                                       elem_id="training-meta-dataset")
            meta_name = gr.Textbox(label="Name", placeholder="default: meta-DATASET",
                                   elem_id="training-meta-name")
            meta_steps = gr.Number(_shown(MetaTrainConfig, "max_steps", none=0), precision=0,
                                   minimum=0, label="Max steps (0: all epochs)",
                                   elem_id="training-meta-steps")
            meta_layers = gr.Number(_shown(MetaTrainConfig, "trainable_layers", none=0),
                                    precision=0, minimum=0,
                                    label="Train the last N blocks (0: all)",
                                    elem_id="training-meta-layers")
        with gr.Row():
            meta_train = gr.Button("Train meta RM", variant="primary",
                                   elem_id="training-meta-start")
            stop_meta = gr.Button("Stop", elem_id="training-meta-stop")
        meta_log = gr.Textbox(label="Log", lines=6, interactive=False,
                              elem_id="training-meta-log")

    gr.Markdown("### 4. Registered judge models\nChoose one for judging in the Judge tab.")
    refresh = gr.Button("↻ refresh", size="sm", elem_id="training-refresh")
    models = gr.Dataframe(headers=MODEL_COLUMNS, interactive=False, wrap=True,
                          elem_id="training-models")

    @shows_errors
    def on_show(request: gr.Request) -> dict[Any, Any]:
        page = training_page(studio, studio.account(request))
        return {
            note: gr.update(visible=not page.may_train),
            export_form: gr.update(visible=page.may_train),
            train_form: gr.update(visible=page.may_train),
            meta_form: gr.update(visible=page.may_train),
            dataset: gr.update(choices=page.datasets),
            meta_dataset: gr.update(choices=[("every dataset", ""), *page.datasets]),
            export: gr.update(choices=page.exports),
            exports: page.exports_table,
            models: gr.update(value=page.models_table,
                              column_widths=column_widths(page.models_table, MODEL_WIDTHS)),
        }

    @shows_errors
    def on_preview(ds: str, first: float | None) -> str:
        return preview_labels(studio, ds, first)

    @shows_errors
    def on_build(ds: str, title: str, per_item: float, first: float | None, easy: bool,
                 hint: bool, most_hinted: float, request: gr.Request,
                 progress: gr.Progress = gr.Progress()  # noqa: B008
                 ) -> Iterator[tuple[Any, ...]]:
        job = start_export(studio, studio.account(request), ds, title or "", per_item, first,
                           easy, hint, most_hinted, jobs=jobs)
        for shown in export_updates(job, progress):
            yield *shown, job.id

    @shows_errors
    def on_train(exp: str, use_lora: bool, n_epochs: float, steps: float, rate: float | None,
                 title: str, request: gr.Request,
                 progress: gr.Progress = gr.Progress()  # noqa: B008
                 ) -> Iterator[tuple[str, int]]:
        job = start_rft_training(studio, studio.account(request), exp, use_lora, n_epochs,
                                 steps, rate, title or "", jobs=jobs)
        for log in training_updates(job, progress):
            yield log, job.id

    @shows_errors
    def on_meta(ds: str, title: str, steps: float, layers: float,
                request: gr.Request) -> Iterator[tuple[str, int]]:
        job = start_meta_job(studio, studio.account(request), ds or "", title or "", steps,
                             layers, jobs=jobs)
        for log in meta_training_updates(job):
            yield log, job.id

    def stopper(name: str) -> Callable[..., None]:
        def stop(started: int | None, request: gr.Request) -> None:
            stop_job(jobs, studio.account(request), Action.TRAIN, started)

        stop.__name__ = stop.__qualname__ = f"on_stop_{name}"  # the API name
        return shows_errors(stop)

    shown = [note, export_form, train_form, meta_form, dataset, meta_dataset, export, exports,
             models]
    gr.on(None, on_show, None, shown)  # page load: this account's view of the store now
    if tab is not None:
        tab.select(on_show, None, shown)  # e.g. a dataset imported in the Datasets tab
    preview.click(on_preview, [dataset, limit], preview_text)
    building = build.click(on_build, [dataset, name, n_rft, limit, keep_easy, hinted, max_hinted],
                           [build_status, counts, files, export_job])
    building.then(on_show, None, shown)
    stop_build.click(stopper("export"), export_job, None)
    training = train.click(on_train, [export, lora, epochs, max_steps, lr, judge_name],
                           [train_log, training_job])
    training.then(on_show, None, shown)
    stop_train.click(stopper("training"), training_job, None)
    refresh.click(on_show, None, shown)
    meta_train.click(on_meta, [meta_dataset, meta_name, meta_steps, meta_layers],
                     [meta_log, meta_job])
    stop_meta.click(stopper("meta"), meta_job, None)

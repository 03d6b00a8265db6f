"""The Datasets tab: import a preference-data file, browse and search its items,
open one, and judge a whole dataset with live progress (resumably; the batch
judging part is `webapp.batch_judging`).

The handlers are module-level functions of the studio and plain values, so
they are tested without a browser; `build_datasets_tab` only wires them to
components. They raise GRMStudioError on bad input or a role that may not, and
the wiring shows it (webapp.errors). Text from files and models is escaped or
shown in plain components. Batch judging is a background job (core.jobs).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.datasets import FORMAT_NAMES, FieldMap
from core.datasets.diverging import is_diverging
from core.datasets.sources import source_name
from core.errors import GRMStudioError, InputError
from core.jobs import Jobs
from core.labels import ItemLabel, NoLabel, value_short
from core.store.accounts import Account, Action, require
from core.store.browse import browse_items, dataset_names, view_item
from core.store.importing import ImportReport, import_file
from core.store.queues import QUEUE_HELP, ItemView, Queue
from webapp.batch_judging import build_batch_judging
from webapp.cards import injection_warnings_html, vote_panel_html
from webapp.errors import shows_errors
from webapp.import_mapping import build_mapping_panel, panel_mapping
from webapp.studio import Studio
from webapp.uploads import upload_folder, uploaded_file

ANY = ""  # a dropdown's "no filter" value
LABELLED = {"any": None, "yes": True, "no": False}
PAGE_SIZE = 50
SHOWN_SKIPS = 200  # skipped lines listed in an import report; the rest are counted
COLUMNS = ["item", "dataset", "category", "query", "responses", "labels", "verdict", "margin"]
# The browse table at 1400 px: one line per row (the query cut with "…", the whole
# item opens below), each column a share of the width so no header wraps or runs
# off to the right, and room for 21 rows before it scrolls (CARD_CSS keeps the
# headers on one line).
BROWSE_WIDTHS: list[str | int] = ["4.5%", "15%", "12%", "37.5%", "8%", "6%", "11%", "6%"]
BROWSE_HEIGHT = 820  # px: the header and 21 one-line rows (36 px each)
DATASET_NAME_CHARS = 200  # the width of dataset.name
DIVERGING_NOTE = (  # an item of conversations that differ before their last reply
    "The conversations differ before the last turn: each response is the rest of its own "
    "conversation (its model's earlier replies included), after the shared turns above."
)


def import_report_html(report: ImportReport) -> str:
    """The import report: counts, then every skipped line with its reason."""
    html = f'<div class="grm-import">{escape(report.summary())}</div>'
    if report.skipped:
        items = "".join(
            f'<li data-line="{s.line}">{escape(s.reason)}</li>'
            for s in report.skipped[:SHOWN_SKIPS]
        )
        more = report.skipped_count - SHOWN_SKIPS
        rest = f"<li>… and {more} more</li>" if more > 0 else ""
        html += f'<div class="grm-label">Skipped</div><ul class="grm-skipped">{items}{rest}</ul>'
    return html


def import_upload(
    studio: Studio, account: Account | None, file_path: str | None, dataset: str, shape: str,
    *, upload_root: Path | None = None, mapping: FieldMap | None = None,
) -> str:
    """Import an uploaded file (dataset name defaults to the file's) if `account` may,
    as `shape` (a shape or preset; "" to detect) and/or with `mapping`; the report
    as HTML. With `upload_root` (the page's handler gives Gradio's upload
    folder), the file must be a regular file inside it, not a symlink
    (`webapp.uploads.uploaded_file`). Raises NotAllowedError or InputError."""
    require(account, Action.IMPORT)
    if not file_path:
        raise InputError("choose a file to import first")
    path = Path(file_path) if upload_root is None else uploaded_file(file_path, upload_root)
    name = dataset.strip() or source_name(path)
    if len(name) > DATASET_NAME_CHARS:
        raise InputError(f"a dataset name has at most {DATASET_NAME_CHARS} characters")
    try:
        report = import_file(studio.engine, path, name, shape=shape or None,
                             limits=studio.settings.import_limits(), mapping=mapping)
    except GRMStudioError as err:  # the upload's server path means nothing to the user
        reason = str(err).replace(str(path), path.name)
        kind = InputError if isinstance(err, InputError) else GRMStudioError
        raise kind(f"could not import {path.name}: {reason}") from None
    return import_report_html(report)


def browse_table(
    studio: Studio, dataset: str, labelled: str, queue: str, search: str, page: int
) -> tuple[pd.DataFrame, str, int]:
    """(table, "items a–b of n", page shown) for the filters; a page past the
    end shows the last one. Raises InputError on a bad filter."""
    page = max(1, int(page or 1))
    filters: dict[str, Any] = {
        "dataset": dataset or None, "labelled": LABELLED.get(labelled), "queue": queue or None,
        "search": search or None, "limit": PAGE_SIZE,
    }
    found = browse_items(studio.engine, offset=(page - 1) * PAGE_SIZE, **filters)
    last = max(1, -(-found.total // PAGE_SIZE))
    if page > last:
        page = last
        found = browse_items(studio.engine, offset=(page - 1) * PAGE_SIZE, **filters)
    frame = pd.DataFrame(
        [
            [r.item_id, r.dataset, r.category or "", r.query, r.n_responses, r.labels,
             r.verdict, "" if r.margin is None else r.margin]
            for r in found.rows
        ],
        columns=COLUMNS,
    )
    if not found.total:
        return frame, "No items match these filters.", 1
    first = found.offset + 1
    shown = f"Items {first}–{found.offset + len(found.rows)} of {found.total}"
    return frame, f"{shown} · page {page} of {last}", page


def _block(title: str, text: str) -> str:
    return f'<div class="grm-label">{escape(title)}</div><div class="grm-text">{escape(text)}</div>'


def item_html(view: ItemView) -> str:
    """An item: earlier turns, query, responses, ground truth, labels, latest judgement."""
    parts = [f'<div class="grm-muted">Item {view.item_id} · dataset {escape(view.dataset)}</div>']
    parts += [_block(f"Earlier turn ({t.role})", t.content) for t in view.context]
    parts.append(_block("Query", view.query))
    if is_diverging(view.category):
        parts.append(f'<div class="grm-muted grm-diverging">{DIVERGING_NOTE}</div>')
    parts.append(injection_warnings_html(view.responses))  # as the annotators see them
    parts += [_block(f"Response R{i + 1}", r) for i, r in enumerate(view.responses)]
    truth = view.dataset_label
    if isinstance(truth, ItemLabel):
        truth_text = "a tie" if truth.best is None else value_short(truth.best)
    elif isinstance(truth, NoLabel) and truth.reason != "unlabelled":
        truth_text = truth.reason  # "dataset labels disagree"
    else:
        truth_text = "none in the dataset"
    parts.append(f'<div class="grm-label">Ground truth</div><div>{escape(truth_text)}</div>')
    rows = "".join(
        f"<tr><td>{escape(label.annotator)}</td>"
        f"<td>{'tie' if label.best is None else f'R{label.best + 1}'}</td>"
        f"<td>{escape(label.note or '')}</td></tr>"
        for label in view.labels
    )
    parts.append(
        '<div class="grm-label">Labels</div>'
        + (f'<table class="grm-table"><tr><th>annotator</th><th>best</th><th>note</th></tr>{rows}'
           "</table>" if rows else '<div class="grm-muted">none yet</div>')
    )
    if view.judgement is None:
        parts.append('<div class="grm-label">Judgement</div>'
                     '<div class="grm-muted">not judged yet</div>')
    else:
        link = f'<a href="?judgement={view.judgement_id}">judgement #{view.judgement_id}</a>'
        parts.append(f'<div class="grm-label">Latest judgement ({link})</div>')
        parts.append(vote_panel_html(view.judgement))
    return '<div class="grm-item">' + "".join(parts) + "</div>"


def open_item(studio: Studio, raw_id: float | str | None) -> str:
    """The item viewer's HTML for an id typed or picked; InputError when there is
    no such item."""
    try:
        item_id = int(float(raw_id)) if raw_id not in (None, "") else None
    except (ValueError, OverflowError):  # 'abc', 'inf'
        item_id = None
    if item_id is None or not 1 <= item_id < 2**63:
        raise InputError(f"'{raw_id}' is not an item id")
    return item_html(view_item(studio.engine, item_id))


def _dataset_updates(studio: Studio) -> tuple[Any, Any]:
    names = dataset_names(studio.engine)
    return gr.update(choices=[("all datasets", ANY), *names]), gr.update(choices=names)


def build_datasets_tab(studio: Studio, jobs: Jobs | None = None) -> None:
    """Import, browse (filters, table, item viewer) and batch judging (a job in
    the studio's `jobs`)."""
    jobs = jobs if jobs is not None else Jobs()
    names = dataset_names(studio.engine)
    with gr.Accordion("Import a file", open=not names,  # the read-only demo takes no uploads
                      visible=not studio.settings.read_only):
        with gr.Row():
            upload = gr.File(
                label="Preference data (.jsonl, .json, .csv, .tsv, optionally .gz; .parquet)",
                file_types=[".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".gz", ".parquet"],
                type="filepath", elem_id="datasets-upload",
            )
            with gr.Column():
                name = gr.Textbox(label="Dataset name", placeholder="default: the file's name",
                                  elem_id="datasets-name")
                shape = gr.Dropdown([("detect from the fields", ANY), *FORMAT_NAMES], value=ANY,
                                    label="Record shape or preset", elem_id="datasets-shape")
                do_import = gr.Button("Import", variant="primary", elem_id="datasets-import")
        mapping = build_mapping_panel(studio, upload, shape)
        report = gr.HTML(elem_id="datasets-import-report")
    gr.Markdown("### Browse")
    with gr.Row():
        dataset = gr.Dropdown([("all datasets", ANY), *names], value=ANY, label="Dataset",
                              elem_id="datasets-filter-dataset")
        labelled = gr.Radio(list(LABELLED), value="any", label="Labelled",
                            info="by this studio's annotators (imported labels are the dataset's)",
                            elem_id="datasets-filter-labelled")
        queue_choices = [(f"{q.value}: {QUEUE_HELP[q]}", q.value) for q in Queue]
        queue = gr.Dropdown([("any", ANY), *queue_choices],
                            value=ANY, label="Queue", elem_id="datasets-filter-queue")
        search = gr.Textbox(label="Search query and responses", elem_id="datasets-search")
    with gr.Row():
        previous = gr.Button("◀ previous", size="sm", elem_id="datasets-previous")
        page = gr.Number(1, precision=0, minimum=1, label="Page", elem_id="datasets-page")
        following = gr.Button("next ▶", size="sm", elem_id="datasets-next")
        show = gr.Button("Show items", variant="primary", elem_id="datasets-browse")
        refresh = gr.Button("↻ dataset list", size="sm", elem_id="datasets-refresh")

    @shows_errors
    def first_status() -> str:
        return browse_table(studio, ANY, "any", ANY, "", 1)[1]

    @shows_errors
    def first_rows() -> pd.DataFrame:
        return browse_table(studio, ANY, "any", ANY, "", 1)[0]

    status = gr.Markdown(first_status, elem_id="datasets-browse-status")
    table = gr.Dataframe(first_rows, headers=COLUMNS, interactive=False, wrap=False,
                         column_widths=BROWSE_WIDTHS, max_height=BROWSE_HEIGHT,
                         elem_id="datasets-table")
    with gr.Row():
        item_id = gr.Number(None, label="Item id (or click a row)", precision=0,
                            elem_id="datasets-item-id")
        show_item = gr.Button("Open item", elem_id="datasets-open-item")
    viewer = gr.HTML(elem_id="datasets-item")
    # the read-only demo judges no dataset: the section is not shown there
    with gr.Column(visible=not studio.settings.read_only, elem_id="datasets-judge-section"):
        gr.Markdown("### Judge a dataset\nEvery item's judgement is saved as it is done; a "
                    "rerun with the same settings skips finished items, so a stopped run "
                    "resumes.")
        with gr.Row():
            judge_set = gr.Dropdown(names, label="Dataset", elem_id="datasets-judge-dataset")
            limit = gr.Number(0, precision=0, minimum=0, label="First N items (0: all)",
                              elem_id="datasets-judge-limit")
            k = gr.Slider(1, 16, value=studio.settings.k, step=1, label="k (samples)",
                          elem_id="datasets-judge-k")
        build_batch_judging(studio, jobs, judge_set, limit, k)  # buttons, progress bar, log

    @shows_errors
    def on_import(
        path: str | None, ds_name: str, ds_shape: str, request: gr.Request
    ) -> tuple[Any, Any, Any]:
        account = studio.account(request)
        return (import_upload(studio, account, path, ds_name or "", ds_shape or ANY,
                              upload_root=upload_folder()),
                *_dataset_updates(studio))

    @shows_errors
    def on_import_mapped(
        path: str | None, ds_name: str, ds_shape: str, form: list[Any] | None,
        request: gr.Request,
    ) -> tuple[Any, Any, Any]:
        fmap = panel_mapping(form)
        if fmap is None:
            raise InputError("map at least one role, or use the Import button above")
        return (import_upload(studio, studio.account(request), path, ds_name or "",
                              ds_shape or ANY, upload_root=upload_folder(), mapping=fmap),
                *_dataset_updates(studio))

    @shows_errors
    def on_refresh() -> tuple[Any, Any]:
        return _dataset_updates(studio)

    gr.on(None, on_refresh, None, [dataset, judge_set])  # page load: the store's list now

    @shows_errors
    def on_browse(ds: str, lab: str, q: str, text: str, number: float) -> tuple[Any, Any, Any]:
        return browse_table(studio, ds or ANY, lab, q or ANY, text or "", int(number or 1))

    @shows_errors
    def on_filter(ds: str, lab: str, q: str, text: str) -> tuple[Any, Any, Any]:
        return on_browse(ds, lab, q, text, 1)  # a new filter starts at page 1

    def paged(step: int) -> Callable[..., tuple[Any, Any, Any]]:
        @shows_errors
        def turn(ds: str, lab: str, q: str, text: str, number: float) -> tuple[Any, Any, Any]:
            return on_browse(ds, lab, q, text, max(1, int(number or 1) + step))

        turn.__name__ = turn.__qualname__ = "on_previous" if step < 0 else "on_next"
        return turn

    @shows_errors
    def on_select(event: gr.SelectData) -> tuple[Any, str]:
        picked = (event.row_value or [None])[0]
        return picked, open_item(studio, picked)

    @shows_errors
    def on_open(raw: float | None) -> str:
        return open_item(studio, raw)

    filters = [dataset, labelled, queue, search]
    browsed = [table, status, page]
    do_import.click(on_import, [upload, name, shape], [report, dataset, judge_set])
    mapping.do_import.click(on_import_mapped, [upload, name, shape, mapping.form],
                            [report, dataset, judge_set])
    refresh.click(on_refresh, None, [dataset, judge_set])
    show.click(on_browse, [*filters, page], browsed)
    search.submit(on_filter, filters, browsed)
    for box in (dataset, labelled, queue):
        box.input(on_filter, filters, browsed)
    previous.click(paged(-1), [*filters, page], browsed)
    following.click(paged(+1), [*filters, page], browsed)
    table.select(on_select, None, [item_id, viewer])
    show_item.click(on_open, item_id, viewer)
    item_id.submit(on_open, item_id, viewer)

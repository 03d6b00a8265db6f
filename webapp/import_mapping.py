"""The Datasets tab's mapping panel: after an upload, the first records, the format
detected (or, for an unknown shape, the mapping suggested, filled in), a
drop-down per role, a preview of the first converted items
(`core.datasets.preview`) and an import with the mapping.

The roles left empty keep what the detected (or chosen) format reads; those set
change it, as `--map` does with `--preset`; for an unknown shape the roles are
the whole mapping. The handlers are plain functions (tested without a browser);
`build_mapping_panel` wires them. Nothing here decides how a record is read:
the form becomes a `FieldMap`, which `core.datasets` reads with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from core.datasets import FieldMap, LabelValues, Skipped, SourceItem
from core.datasets.preview import ImportPreview, preview_file
from core.labels import value_short
from core.store.accounts import Account, Action, require
from webapp.errors import shows_errors
from webapp.studio import Studio
from webapp.uploads import upload_folder, uploaded_file

ROLES = ("query", "context", "responses", "chosen", "rejected", "best", "category", "id")
NONE = ""  # a role left unmapped
SHOWN_CHARS = 300  # of each text in the preview


def form_mapping(values: Sequence[Any], label_values: str) -> FieldMap | None:
    """The map the form says (one value per ROLES entry), or None when no role is
    set; InputError when the label values cannot be read."""
    roles: dict[str, Any] = {}
    for role, value in zip(ROLES, values, strict=True):
        if role == "responses":
            if value:
                roles[role] = tuple(value)
        elif value:
            roles[role] = value
    if label_values.strip():
        roles["label_values"] = LabelValues.parse([label_values])
    return FieldMap(**roles) if roles else None


def form_values(fmap: FieldMap | None) -> dict[str, Any]:
    """role -> what its drop-down shows for `fmap` (NONE or [] when unmapped)."""
    values: dict[str, Any] = {role: getattr(fmap, role) if fmap else None for role in ROLES}
    values["responses"] = list(fmap.responses) if fmap else []
    return {role: NONE if value is None else value for role, value in values.items()}


def preview_upload(
    studio: Studio, account: Account | None, file_path: str | None, shape: str,
    mapping: FieldMap | None, *, upload_root: Path | None = None,
) -> ImportPreview | None:
    """The preview of importing the uploaded file (None before a file is chosen)."""
    require(account, Action.IMPORT)
    if not file_path:
        return None
    path = Path(file_path) if upload_root is None else uploaded_file(file_path, upload_root)
    return preview_file(path, shape or None, mapping, studio.settings.import_limits())


def preview_html(preview: ImportPreview | None, file_name: str = "") -> str:
    """The format or the problem, the first records, and the first converted items."""
    if preview is None:
        return ""
    if preview.problem:  # the upload's server path means nothing to the user
        problem = preview.problem.replace(file_name, Path(file_name).name) if file_name \
            else preview.problem
        head = f'<div class="grm-warning">{escape(problem)}</div>'
    else:
        head = f'<div class="grm-muted">Read as: {escape(preview.format or "")}</div>'
    records = "".join(
        f'<pre class="grm-text">{escape(_short(json.dumps(r, ensure_ascii=False, default=str)))}'
        "</pre>" for r in preview.records
    )
    items = "".join(_item_html(entry) for entry in preview.items)
    return (f'<div class="grm-preview">{head}<div class="grm-label">First records</div>{records}'
            f'<div class="grm-label">As items</div>{items or "<div>none</div>"}</div>')


def _item_html(entry: SourceItem | Skipped) -> str:
    if isinstance(entry, Skipped):
        return f'<div class="grm-warning">skipped {escape(entry.reason)}</div>'
    labels = ", ".join(
        value_short(lab.best)
        + (f" ({lab.labeller})" if lab.labeller else "")
        for lab in entry.labels
    ) or "none"
    turns = "".join(f"<div>{escape(t.role)}: {escape(_short(t.content))}</div>"
                    for t in entry.context)
    responses = "".join(f"<li>R{i + 1}: {escape(_short(r))}</li>"
                        for i, r in enumerate(entry.responses))
    return (f'<div class="grm-item">{turns}<div><b>Query</b>: {escape(_short(entry.query))}</div>'
            f"<ol>{responses}</ol><div>label: {escape(labels)}</div></div>")


def _short(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


@dataclass(frozen=True)
class MappingPanel:
    """The panel's components; `form` holds its inputs' values (the roles in ROLES
    order, then the label values), which `panel_mapping` reads."""

    roles: tuple[gr.Dropdown, ...]
    label_values: gr.Textbox
    form: gr.State
    do_import: gr.Button

    @property
    def inputs(self) -> list[Any]:
        return [*self.roles, self.label_values]


def panel_mapping(form: Sequence[Any] | None) -> FieldMap | None:
    """The map the panel's input values say; None when none is set."""
    if not form:
        return None
    *values, label_values = form
    return form_mapping(values, label_values or "")


def build_mapping_panel(studio: Studio, upload: gr.File, shape: gr.Dropdown) -> MappingPanel:
    """The panel under the upload control; see the module docstring. The caller
    wires `do_import` (it shares the import report with the Import button)."""
    with gr.Accordion("Map the fields: preview, change, import", open=False):
        gr.Markdown("Roles left empty keep what the detected or chosen format reads.")
        with gr.Row():
            roles = tuple(
                gr.Dropdown([], value=[] if role == "responses" else NONE, label=role,
                            multiselect=role == "responses", allow_custom_value=True,
                            elem_id=f"datasets-map-{role}")
                for role in ROLES
            )
        label_values = gr.Textbox(label="Label values (VALUE=INDEX from 0, or VALUE=tie)",
                                  placeholder="1=0,2=1,tie=tie", elem_id="datasets-map-labels")
        with gr.Row():
            show = gr.Button("Preview", elem_id="datasets-map-preview")
            do_import = gr.Button("Import with this mapping", variant="primary",
                                  elem_id="datasets-map-import")
        shown = gr.HTML(elem_id="datasets-map-shown")
    panel = MappingPanel(roles, label_values, gr.State(None), do_import)

    @shows_errors
    def on_upload(path: str | None, chosen: str, request: gr.Request) -> dict[Any, Any]:
        found = preview_upload(studio, studio.account(request), path, chosen, None,
                               upload_root=upload_folder())
        suggested = found.mapping if found is not None and found.format is None else None
        values = form_values(suggested)  # an unknown shape: the suggestion, filled in
        fields = [NONE, *(found.fields if found else ())]
        updates: dict[Any, Any] = {
            box: gr.update(choices=fields, value=values[role])
            for role, box in zip(ROLES, roles, strict=True)
        }
        spec = suggested.label_values if suggested else None
        updates[label_values] = spec.spec() if spec else ""
        updates[shown] = preview_html(found, path or "")
        return updates

    def on_form(*values: Any) -> list[Any]:
        return list(values)

    @shows_errors
    def on_preview(path: str | None, chosen: str, form: list[Any] | None,
                   request: gr.Request) -> str:
        found = preview_upload(studio, studio.account(request), path, chosen,
                               panel_mapping(form), upload_root=upload_folder())
        return preview_html(found, path or "")

    upload.change(on_upload, [upload, shape], [*roles, label_values, shown])
    for box in panel.inputs:
        box.change(on_form, panel.inputs, panel.form)
    show.click(on_preview, [upload, shape, panel.form], shown)
    return panel

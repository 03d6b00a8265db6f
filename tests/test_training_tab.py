"""The Training tab's handlers with a scripted judge: label preview, building an
export with progress, the download files, the exports and models tables,
stopping an export, refusals; the tab's Stop buttons stop the jobs its start
buttons started."""

from __future__ import annotations

import gradio as gr
import pytest

from core import ScriptedBackend, Settings
from core.errors import GRMStudioError, InputError, NotAllowedError
from core.jobs import Jobs, JobStatus
from core.store.accounts import Account, Action
from core.store.db import make_engine, upgrade
from core.training import RFTConfig, exports_dir
from tests.scripted_backends import GOOD, GatedBackend
from tests.scripted_rft import answer, import_pairs, orders
from webapp.jobs import stop_job
from webapp.studio import Studio
from webapp.training_tab import (
    build_export,
    build_training_tab,
    export_updates,
    preview_labels,
    start_export,
    start_meta_training,
    start_training,
)
from webapp.training_view import (
    MODEL_WIDTHS,
    column_widths,
    export_choices,
    exports_table,
    models_table,
    training_page,
)

ADMIN = Account("root", "admin")


@pytest.fixture
def studio(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    items = import_pairs(engine, tmp_path, 3)
    config = RFTConfig()
    script = [answer((9, 2), o) if n else answer((1, 9), o)
              for item in items for n, o in enumerate(orders(item.content_hash, config, 3))]
    script += [answer((9, 2), o) for item in items for o in orders(item.content_hash, config, 1, 1)]
    settings = Settings(data_dir=tmp_path / "data", model="scripted", rescue=False, prefill=False)
    yield Studio(settings, engine, backend=ScriptedBackend(script))
    engine.dispose()


def test_preview_build_and_list(studio):
    assert preview_labels(studio, "toy", 0).startswith("3 labelled item(s)")
    with pytest.raises(InputError, match="no dataset 'nope'"):
        preview_labels(studio, "nope", 0)

    bar: list[tuple] = []
    steps = list(build_export(studio, ADMIN, "toy", "", 3, 0, False, True, 64,
                              lambda *a, **kw: bar.append((*a, kw["desc"]))))
    lines = [line for line, _, _ in steps]
    assert lines[0].startswith("Loading the judge")
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "Sampled 1 of 3 item(s)", "Sampled 2 of 3 item(s)", "Sampled 3 of 3 item(s)"]
    assert bar == [((1, 3), "items sampled"), ((2, 3), "items sampled"), ((3, 3), "items sampled")]
    final_line, counts, files = steps[-1]
    assert "Export toy-rft:v1 written" in final_line
    assert "| accepted |" in counts and "| wrong |" in counts
    assert {f.rsplit("/", 1)[-1] for f in files} >= {"train.jsonl", "card.json"}
    assert export_choices(studio) == ["toy-rft:v1"]
    table = exports_table(studio, ADMIN)
    assert list(table["export"]) == ["toy-rft:v1"]
    assert table["train"][0] + table["validation"][0] + table["hinted"][0] > 0
    models = models_table(studio, ADMIN)  # the export's judge is registered, not trained
    assert list(models["name"]) == ["scripted"] and list(models["trained"]) == [""]


def test_bad_choices_are_input_errors_raised_before_any_work(studio):
    with pytest.raises(InputError, match="choose a dataset"):
        list(build_export(studio, ADMIN, "", "", 3, 0, False, True, 64))
    with pytest.raises(InputError, match="choose a dataset"):
        preview_labels(studio, "", 0)
    with pytest.raises(InputError, match="choose an export"):
        list(start_training(studio, ADMIN, "", False, 1, -1, None, ""))
    with pytest.raises(InputError, match="no RFT export"):
        list(start_training(studio, ADMIN, "missing", False, 1, -1, None, ""))
    with pytest.raises(InputError, match=r"^cannot use these settings: epochs: Input should be "
                       r"greater than 0$"):
        list(start_training(studio, ADMIN, "missing", False, -1, -1, None, ""))
    with pytest.raises(InputError, match=r"^cannot use these settings: n_rft: "):
        list(build_export(studio, ADMIN, "toy", "", 0, 0, False, True, 64))
    (studio.settings.data_dir / "meta-models" / "taken").mkdir(parents=True)
    with pytest.raises(InputError, match="taken exists already; choose another name"):
        list(start_meta_training(studio, ADMIN, "toy", "taken", 0, 0))
    assert studio.backend.prompts == []  # the judge was never asked


def test_the_tab_builds_and_its_stop_buttons_stop_the_jobs_its_buttons_start(studio):
    with gr.Blocks() as app:
        build_training_tab(studio, Jobs())
    by_id = {b.elem_id: b for b in app.blocks.values() if getattr(b, "elem_id", None)}
    assert {"training-dataset", "training-preview", "training-build", "training-build-stop",
            "training-build-status", "training-counts", "training-files", "training-exports",
            "training-export", "training-start", "training-stop", "training-log",
            "training-meta-start", "training-meta-stop", "training-meta-log",
            "training-models"} <= set(by_id)

    def clicked(elem_id: str):
        (fn,) = [f for f in app.fns.values() if (by_id[elem_id]._id, "click") in f.targets]
        return fn

    for start, stop, log in (("training-build", "training-build-stop", "training-build-status"),
                             ("training-start", "training-stop", "training-log"),
                             ("training-meta-start", "training-meta-stop", "training-meta-log")):
        started, stopping = clicked(start), clicked(stop)
        assert log in {getattr(c, "elem_id", None) for c in started.outputs}
        (job_state,) = stopping.inputs  # the id of the job this page started...
        assert isinstance(job_state, gr.State) and job_state in started.outputs
        assert stopping.fn.__name__.startswith("on_stop_") and not stopping.cancels
    assert clicked("training-build").tracks_progress and clicked("training-start").tracks_progress


def test_the_stop_button_ends_an_export_and_nothing_is_written(studio):
    studio.backend = GatedBackend([GOOD] * 50)
    jobs = Jobs()
    job = start_export(studio, ADMIN, "toy", "", 3, 0, False, True, 64, jobs=jobs)
    updates = export_updates(job)
    assert next(updates)[0].startswith("Loading the judge")
    with pytest.raises(NotAllowedError):  # stopping needs the role that starts it
        stop_job(jobs, Account("kim", "annotator"), Action.TRAIN, job.id)
    stop_job(jobs, ADMIN, Action.TRAIN, None)  # nothing started from this page: nothing to do
    assert not job.state().stop_requested
    stop_job(jobs, ADMIN, Action.TRAIN, job.id)
    studio.backend.permits.release(100)
    *_, (last, counts, files) = updates
    assert last.endswith("Stopped: no export was written.") and counts == "" and files is None
    assert job.state().status is JobStatus.STOPPED
    assert export_choices(studio) == []
    root = exports_dir(studio.settings.data_dir)
    assert not root.exists() or not any(p for p in root.rglob("*") if p.is_file())


def test_only_admins_build_exports_and_train(studio):
    for account in (Account("kim", "annotator"), Account("vic", "viewer"), None):
        with pytest.raises(NotAllowedError, match="train"):
            list(build_export(studio, account, "toy", "", 3, 0, False, True, 64))
        with pytest.raises(NotAllowedError, match="train"):
            list(start_training(studio, account, "toy-rft", False, 1, -1, None, ""))
    assert studio.backend.prompts == [] and export_choices(studio) == []


def test_meta_rm_training_from_the_tab_needs_an_admin_and_samples(studio):
    for account in (Account("kim", "annotator"), Account("vic", "viewer"), None):
        with pytest.raises(NotAllowedError, match="train"):
            list(start_meta_training(studio, account, "toy", "", 0, 0))
    # nothing judged yet: the store has no samples to learn from, and says so
    updates = start_meta_training(studio, ADMIN, "toy", "m1", 1, 1)
    assert next(updates).startswith("Training a meta reward model on the samples of 'toy'")
    with pytest.raises(GRMStudioError, match=r"^Stopped by an error: the meta RM needs correct "
                       r"and incorrect samples; the store has 0 correct"):
        next(updates)
    assert not (studio.settings.data_dir / "meta-models" / "m1").exists()


def test_the_inputs_start_at_the_trainers_config_defaults(studio):
    """No default is written in the tab: each input starts at its config's."""
    from core.training import RFTTrainConfig
    from core.training.meta_rm import MetaTrainConfig

    with gr.Blocks() as app:
        build_training_tab(studio, Jobs())
    value = {b.elem_id: getattr(b, "value", None) for b in app.blocks.values()
             if getattr(b, "elem_id", None)}
    rft, export, meta = RFTTrainConfig(), RFTConfig(), MetaTrainConfig()
    assert value["training-lora"] is rft.lora and value["training-epochs"] == rft.epochs
    assert value["training-max-steps"] == rft.max_steps
    assert value["training-lr"] == rft.learning_rate
    assert value["training-n-rft"] == export.n_rft
    assert value["training-max-hinted"] == export.max_hinted
    assert value["training-keep-easy"] is not export.drop_too_easy
    assert value["training-hinted"] is export.hinted
    assert meta.max_steps is None and value["training-meta-steps"] == 0  # 0: not given
    assert meta.trainable_layers is None and value["training-meta-layers"] == 0


def test_the_meta_rm_name_is_checked_by_the_output_rule(studio):
    with pytest.raises(InputError, match="cannot name a checkpoint"):
        list(start_meta_training(studio, ADMIN, "toy", "../escape", 0, 0))


NOT_ADMINS = (Account("kim", "annotator"), Account("vic", "viewer"), Account("demo", "demo"), None)


def test_only_admins_get_the_forms_and_the_server_paths(studio):
    list(build_export(studio, ADMIN, "toy", "", 3, 0, False, True, 64))
    admin = training_page(studio, ADMIN)
    assert admin.may_train and admin.datasets == ["toy"] and admin.exports == ["toy-rft:v1"]
    assert "path" in admin.exports_table.columns and "source" in admin.models_table.columns
    root = str(studio.settings.data_dir)
    assert admin.exports_table["path"][0].startswith(root)  # what the others must not see
    for account in NOT_ADMINS:
        page = training_page(studio, account)
        assert not page.may_train  # the forms stay hidden; the results are shown
        assert list(page.exports_table["export"]) == ["toy-rft:v1"]
        assert list(page.models_table["name"]) == ["scripted"]
        for table in (page.exports_table, page.models_table):
            assert not {"path", "source"} & set(table.columns)
            assert not any(root in str(cell) for cell in table.to_numpy().ravel())
    # the models table's columns fill its width, with or without the source column
    for table in (admin.models_table, training_page(studio, None).models_table):
        widths = column_widths(table, MODEL_WIDTHS)
        assert len(widths) == len(table.columns)
        assert abs(sum(float(str(w).rstrip("%")) for w in widths) - 100) < 0.5


def test_the_page_load_and_opening_the_tab_show_the_store_now_for_the_account(studio, tmp_path):
    """The lists are read when the page loads (or the tab opens), not when the server
    started: a dataset imported after the tab was built is offered; the forms are
    shown to an admin only."""
    with gr.Blocks() as app, gr.Tab("Training") as tab:
        build_training_tab(studio, Jobs(), tab)
    import_pairs(studio.engine, tmp_path, 2, dataset="later")
    by_id = {b.elem_id: b for b in app.blocks.values() if getattr(b, "elem_id", None)}
    loaded = [f for f in app.fns.values() if f.name == "on_show"]
    on_show = loaded[0].fn
    assert all(f.fn is on_show and not f.inputs for f in loaded)
    triggers = {event for f in loaded for _, event in f.targets}
    assert {"load", "select", "click"} <= triggers  # page load, the tab opening, refresh
    for account, may_train in ((ADMIN, True), (Account("kim", "annotator"), False)):
        studio.account = lambda request, who=account: who  # type: ignore[method-assign]
        shown = on_show(None)
        assert shown[by_id["training-export-form"]]["visible"] is may_train
        assert shown[by_id["training-meta-form"]]["visible"] is may_train
        assert shown[by_id["training-read-only"]]["visible"] is not may_train
        assert shown[by_id["training-dataset"]]["choices"] == ["later", "toy"]

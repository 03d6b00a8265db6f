"""Assemble the GRM Studio web app from its tabs, and serve it behind sign-in."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import gradio as gr

from core.config import Settings
from core.files import atomic_write
from core.store import open_store
from core.store.accounts import has_sign_in_account, set_account
from core.store.demo import (
    demo_judgements_path,
    ensure_demo_dataset,
    ensure_demo_judgements,
)
from core.training.registry import register_studio_judge
from webapp.annotate_tab import KEYBOARD_JS, build_annotate_tab
from webapp.auth import account_banner, server_app
from webapp.cards import CARD_CSS
from webapp.datasets_tab import build_datasets_tab
from webapp.errors import StudioBlocks, shows_errors
from webapp.insights_tab import build_insights_tab
from webapp.judge_tab import build_judge_tab, reopen_on_load
from webapp.rewards_tab import build_rewards_tab
from webapp.security import proxy_options
from webapp.studio import Studio
from webapp.tab_links import TAB_LINK_JS
from webapp.training_tab import build_training_tab

FIRST_ADMIN = "admin"
UPLOADS_KEPT = (3600, 24 * 3600)  # Gradio's delete_cache: (every s, files older than s)
# transformers 5 renamed these; the model backends and peft still use the old names,
# and the notice would fill the server log with one line per judgement
LIBRARY_NOTICES = (r"`past_key_values` is deprecated", r"`is_gradient_checkpointing` is deprecated")


def build_app(studio: Studio) -> gr.Blocks:
    """The whole studio; every tab gets the same `Studio` (settings, store, model, and
    `jobs`: the background work started from its pages)."""
    jobs = studio.jobs
    # input checks fail quietly (webapp.errors); uploads and other cached files are
    # deleted once they are a day old (checked hourly), not kept in /tmp for ever
    with StudioBlocks(title="GRM Studio", delete_cache=UPLOADS_KEPT) as app:
        with gr.Row():
            gr.Markdown(
                "# GRM Studio\nJudge responses with a generative reward model: "
                f"`{studio.settings.model_shown}`, k shuffled samples, then the vote."
            )
            banner = gr.HTML(elem_id="account")
        with gr.Tab("Judge", id="judge"):
            judge_outputs = build_judge_tab(studio)
        with gr.Tab("Datasets", id="datasets"):
            build_datasets_tab(studio, jobs)
        with gr.Tab("Annotate", id="annotate", visible=not studio.settings.read_only):
            resume_walk, walk_components = build_annotate_tab(studio)
        with gr.Tab("Insights", id="insights"):
            build_insights_tab(studio)
        with gr.Tab("Training", id="training") as training:
            build_training_tab(studio, jobs, training)  # its lists reload as it opens
        with gr.Tab("Rewards", id="rewards"):
            build_rewards_tab(studio)  # what a reward server told an RL run (core.store.rewards)
        on_load, components = reopen_on_load(studio, judge_outputs)
        app.load(on_load, inputs=None, outputs=components)
        app.load(resume_walk, inputs=None, outputs=walk_components)

        @shows_errors
        def who(request: gr.Request) -> str:
            return account_banner(studio, request)

        app.load(who, None, banner)
    return app


def first_admin(studio: Studio) -> Path | None:
    """On a store nobody can sign in to, an 'admin' account with a random password,
    written to a file only its owner can read (never printed or logged); the
    file's path, or None when an account already exists."""
    if has_sign_in_account(studio.engine):
        return None
    password = os.urandom(18).hex()
    set_account(studio.engine, FIRST_ADMIN, "admin", password)
    path = studio.settings.data_dir / "first-admin-password.txt"
    with atomic_write(path) as handle:  # mkstemp: readable by its owner only
        handle.write(f"{password}\n")
    return path


def quiet_library_notices() -> None:
    """Keep the library deprecation notices in LIBRARY_NOTICES out of the server's
    log (only those: other warnings still show)."""
    for message in LIBRARY_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    quiet_library_notices()
    studio = Studio(settings, open_store(settings))
    if settings.demo_file is not None:
        ensure_demo_dataset(studio.engine, settings.demo_file)
        ensure_demo_judgements(studio.engine, demo_judgements_path(settings.demo_file))
    if not settings.read_only:
        register_studio_judge(studio.engine)  # the shipped judge, with its provenance
    blocks = build_app(studio).queue()
    app = server_app(studio, blocks, css=CARD_CSS, head=KEYBOARD_JS + TAB_LINK_JS)
    if settings.read_only:
        print("Read-only demo: no sign-in; everything can be seen, nothing is saved.")
    elif (secret := first_admin(studio)) is not None:
        print(f"First start: sign in as '{FIRST_ADMIN}' with the password in {secret}; "
              f"add accounts with `grm-studio account NAME --role annotator`.")
    print(f"GRM Studio on http://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", **proxy_options(settings))

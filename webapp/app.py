"""Assemble the GRM Studio web app from its tabs, and serve it."""

from __future__ import annotations

import gradio as gr

from core.config import Settings
from core.store import open_store
from core.store.demo import ensure_demo_dataset
from webapp.cards import CARD_CSS
from webapp.annotate_tab import KEYBOARD_JS, build_annotate_tab
from webapp.datasets_tab import build_datasets_tab
from webapp.insights_tab import build_insights_tab
from webapp.judge_tab import build_judge_tab, reopen_on_load
from webapp.studio import Studio
from webapp.training_tab import build_training_tab


def build_app(studio: Studio) -> gr.Blocks:
    """The whole studio; every tab gets the same `Studio` (settings, store, model)."""
    with gr.Blocks(title="GRM Studio") as app:
        gr.Markdown(
            "# GRM Studio\nJudge responses with a generative reward model: "
            f"`{studio.settings.model}`, k shuffled samples, then the vote."
        )
        with gr.Tab("Judge", id="judge"):
            judge_outputs = build_judge_tab(studio)
        with gr.Tab("Datasets", id="datasets"):
            build_datasets_tab(studio)
        with gr.Tab("Annotate", id="annotate"):
            build_annotate_tab(studio)
        with gr.Tab("Insights", id="insights"):
            build_insights_tab(studio)
        with gr.Tab("Training", id="training"):
            build_training_tab(studio)
        on_load, components = reopen_on_load(studio, judge_outputs)
        app.load(on_load, inputs=None, outputs=components)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    studio = Studio(settings, open_store(settings))
    if settings.demo_file is not None:
        ensure_demo_dataset(studio.engine, settings.demo_file)
    build_app(studio).queue().launch(
        server_name=host, server_port=port, css=CARD_CSS, head=KEYBOARD_JS
    )

"""Assemble the GRM Studio web app from its tabs, and serve it."""

from __future__ import annotations

import gradio as gr

from core.config import Settings
from webapp.judge_tab import build_judge_tab
from webapp.studio import Studio


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="GRM Studio") as app:
        gr.Markdown(
            "# GRM Studio\nJudge responses with a generative reward model: "
            f"`{studio.settings.model}`, k shuffled samples, then the vote."
        )
        with gr.Tab("Judge"):
            build_judge_tab(studio)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    build_app(Studio(settings)).queue().launch(server_name=host, server_port=port)

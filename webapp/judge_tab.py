"""The Judge tab: a query and up to MAX_RESPONSES responses -> samples and vote."""

from __future__ import annotations

import gradio as gr

from core.report import render_judgement, render_vote
from core.errors import GRMStudioError
from core.types import JudgeInput, SamplingParams
from webapp.studio import Studio

MAX_RESPONSES = 4


def run_judgement(
    studio: Studio, query: str, responses: list[str], k: int, temperature: float
) -> tuple[str, str]:
    """(vote summary, full text of every sample); blank response boxes are unused."""
    given = tuple(r for r in responses if r.strip())
    settings = studio.settings
    try:
        params = SamplingParams(
            k=int(k),
            temperature=float(temperature),
            top_p=settings.top_p,
            max_new_tokens=settings.max_new_tokens,
            seed=settings.seed,
        )
        result = studio.judge().judge(JudgeInput(query=query, responses=given), params)
    except GRMStudioError as err:
        raise gr.Error(str(err)) from None
    return render_vote(result), render_judgement(result)


def build_judge_tab(studio: Studio) -> None:
    with gr.Row():
        with gr.Column():
            query = gr.Textbox(label="Query", lines=3, elem_id="query")
            boxes = [
                gr.Textbox(label=f"Response {i + 1}", lines=3, elem_id=f"response-{i + 1}")
                for i in range(MAX_RESPONSES)
            ]
            with gr.Row():
                k = gr.Slider(1, 16, value=studio.settings.k, step=1, label="k (samples)")
                temperature = gr.Slider(
                    0.0, 1.5, value=studio.settings.temperature, step=0.05, label="temperature"
                )
            run = gr.Button("Judge", variant="primary", elem_id="judge")
        with gr.Column():
            vote = gr.Textbox(label="Vote", lines=6, elem_id="vote")
            samples = gr.Textbox(label="Samples", lines=24, elem_id="samples")

    def on_run(query_text: str, *rest: object) -> tuple[str, str]:
        *texts, k_value, temp_value = rest
        return run_judgement(studio, query_text, [str(t) for t in texts], k_value, temp_value)

    run.click(on_run, inputs=[query, *boxes, k, temperature], outputs=[vote, samples])

"""The Judge tab: a query (and earlier turns, and optionally a reference answer
the judge checks the responses against), 1..n responses -> k sample cards and
the vote. Every judgement of an account that may judge is saved, and
`?judgement=ID` reopens it; a viewer (or the read-only demo) sees the
judgement but nothing is written."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.errors import GRMStudioError, InputError
from core.inputs import format_turns, parse_turns
from core.limits import judging_sampling
from core.progress import GenerationProgress, GenerationWatch, Watch
from core.service import judge_and_save
from core.service import meta_vote as service_meta_vote
from core.store.accounts import Account, Action
from core.store.demo import demo_example
from core.store.judgements import fetch_judgement
from core.training.meta_vote import MetaGuidedVote, stored_meta_guided
from core.types import JudgeInput, Judgement
from webapp.cards import meta_panel_html, sample_card_html, vote_panel_html
from webapp.charts import heatmap_figure, vote_figure
from webapp.errors import shows_errors
from webapp.studio import Studio

MAX_RESPONSES = 9


@dataclass(frozen=True)
class JudgeRequest:
    query: str
    turns: str
    responses: tuple[str, ...]
    k: int
    temperature: float
    model: str | None = None  # one of Studio.model_choices(); None: the configured model
    reference: str = ""  # a reference answer shown to the judge; blank: none


def run_judgement(
    studio: Studio, request: JudgeRequest, account: Account | None,
    watch: GenerationWatch | None = None,
) -> tuple[int | None, Judgement]:
    """Judge, and save when `account` may; returns (judgement id or None when not
    saved, judgement). The read-only demo's caps on k and tokens apply
    (`core.limits.judging_sampling`); `watch` hears the generation's progress.
    Raises GRMStudioError."""
    params = judging_sampling(studio.settings, k=request.k, temperature=request.temperature)
    item = JudgeInput(
        query=request.query, responses=request.responses, context=parse_turns(request.turns),
        reference=request.reference if request.reference.strip() else None,
    )
    return judge_and_save(studio.engine, studio.judge(request.model), item, params, account,
                          watch=watch)


def progress_watch(progress: Any) -> GenerationWatch:
    """A watch that moves Gradio's progress bar (`progress`) with the generation:
    the prompts read, then the samples written (and a score rescue, if any)."""

    def shown(event: GenerationProgress) -> None:
        progress(event.fraction, desc=event.describe())

    return Watch(on_progress=shown)


def meta_vote(
    studio: Studio, judgement_id: int | None, judgement: Judgement, meta_source: str | None,
    k_meta: int | None, account: Account | None,
) -> MetaGuidedVote | None:
    """Meta-guided voting with the registered meta RM `meta_source` (None: none);
    its rewards are stored with a saved judgement when `account` may judge."""
    if not meta_source:
        return None
    saved = account is not None and account.may(Action.JUDGE)
    return service_meta_vote(
        studio.meta(meta_source), judgement, k_meta=k_meta or None, meta_model=meta_source,
        engine=studio.engine, judgement_id=judgement_id if saved else None,
    )


def visitor_address(request: Any) -> str:
    """Who is asking, for the read-only demo's per-visitor limit (nobody signs in
    there): the client's address ("" when unknown)."""
    return getattr(getattr(request, "client", None), "host", None) or ""


def open_judgement(studio: Studio, raw_id: str) -> Judgement:
    try:
        judgement_id = int(raw_id)
    except ValueError:
        raise InputError(f"'{raw_id}' is not a judgement id") from None
    if not 1 <= judgement_id < 2**63:
        raise InputError(f"'{raw_id}' is not a judgement id")
    return fetch_judgement(studio.engine, judgement_id)


@dataclass(frozen=True)
class _Inputs:
    """The components a judgement's input is typed in."""

    query: gr.Textbox
    turns: gr.Textbox
    reference: gr.Textbox
    count: gr.State
    boxes: tuple[gr.Textbox, ...]
    k: gr.Slider
    temperature: gr.Slider

    @property
    def components(self) -> list[Any]:
        return [self.query, self.turns, self.reference, self.count, *self.boxes, self.k,
                self.temperature]

    def show(self, judgement: Judgement) -> dict[Any, Any]:
        """`judgement`'s input in the boxes (its first MAX_RESPONSES responses) and its
        k and temperature on the sliders (k within the slider's range), ready to judge
        again."""
        item = judgement.input
        n = min(len(item.responses), MAX_RESPONSES)
        k = min(judgement.params.k, int(self.k.maximum))
        shown: dict[Any, Any] = {self.query: item.query, self.turns: format_turns(item.context),
                                 self.reference: item.reference or "", self.count: n,
                                 self.k: k, self.temperature: judgement.params.temperature}
        for i, box in enumerate(self.boxes):
            shown[box] = gr.update(value=item.responses[i] if i < n else "", visible=i < n)
        return shown


@dataclass(frozen=True)
class _Outputs:
    """The components a judgement is shown in (and, to reopen one, its input's)."""

    status: gr.Markdown
    vote: gr.HTML
    vote_plot: gr.Plot
    heatmap: gr.Plot
    cards: gr.HTML
    meta: gr.HTML
    inputs: _Inputs

    @property
    def components(self) -> list[Any]:
        return [self.status, self.vote, self.meta, self.vote_plot, self.heatmap, self.cards]

    def show(
        self, judgement_id: int | None, judgement: Judgement, meta: MetaGuidedVote | None = None
    ) -> dict[Any, Any]:
        k = judgement.params.k
        saved = (
            f"Judgement **#{judgement_id}** · [link](?judgement={judgement_id})"
            if judgement_id is not None else "**Not saved** (read-only)"
        )
        reference = " · checked against a reference answer" if judgement.input.reference else ""
        return {
            self.status: f"{saved} · {html.escape(judgement.model.name)} · k={k} · "
            f"{judgement.seconds:.1f} s{reference}",
            self.vote: vote_panel_html(judgement),
            self.meta: meta_panel_html(meta),
            self.vote_plot: vote_figure(judgement),
            self.heatmap: heatmap_figure(judgement),
            self.cards: "".join(sample_card_html(s, k) for s in judgement.samples),
        }


def build_judge_tab(studio: Studio) -> _Outputs:
    settings = studio.settings
    with gr.Row():
        with gr.Column(scale=2):
            query = gr.Textbox(label="Query", lines=3, elem_id="query")
            with gr.Accordion("Earlier turns (optional)", open=False):
                turns = gr.Textbox(
                    label="One turn per 'User:' / 'Assistant:' line", lines=4, elem_id="turns"
                )
            with gr.Accordion("Reference answer (optional)", open=False):
                reference = gr.Textbox(
                    label="A correct answer to check the responses against (the judge uses "
                    "the template's -reference variant)", lines=3, elem_id="reference",
                )
            count = gr.State(2)
            boxes = [
                gr.Textbox(
                    label=f"Response {i + 1}", lines=3, visible=i < 2, elem_id=f"response-{i + 1}"
                )
                for i in range(MAX_RESPONSES)
            ]
            with gr.Row():
                add = gr.Button("+ response", size="sm", elem_id="add-response")
                remove = gr.Button("− response", size="sm", elem_id="remove-response")
            with gr.Row():
                max_k = min(16, settings.demo_max_k) if settings.read_only else 16
                k = gr.Slider(1, max_k, value=min(settings.k, max_k), step=1,
                              label="k (samples)", elem_id="k")
                temperature = gr.Slider(
                    0.0, 1.5, value=settings.temperature, step=0.05, label="temperature"
                )
            model = gr.Dropdown(
                studio.model_choices(), value=settings.model, label="Judge model",
                info="the configured model, or a registered (e.g. fine-tuned) judge",
                elem_id="judge-model",
            )
            with gr.Row():
                meta_model = gr.Dropdown(
                    [("none", ""), *studio.meta_model_choices()], value="",
                    label="Meta RM (optional)", info="meta-guided voting beside the plain vote",
                    elem_id="judge-meta-model", scale=3,
                )
                k_meta = gr.Number(0, precision=0, minimum=0, label="k_meta (0: k/2)", scale=1)
            run = gr.Button("Judge", variant="primary", elem_id="judge")
        with gr.Column(scale=3):
            outputs = _Outputs(
                # the one place the judgement's progress is drawn (show_progress_on)
            status=gr.Markdown(elem_id="judgement-status", min_height=48),
                vote=gr.HTML(elem_id="vote-panel"),
                meta=gr.HTML(elem_id="meta-panel"),
                vote_plot=gr.Plot(label="Summed score per response", elem_id="vote-plot"),
                heatmap=gr.Plot(label="Samples × responses", elem_id="score-heatmap"),
                cards=gr.HTML(elem_id="sample-cards"),
                inputs=_Inputs(query, turns, reference, count, tuple(boxes), k, temperature),
            )
    shown = outputs.components

    def resize(current: int, step: int) -> list[Any]:
        new = min(MAX_RESPONSES, max(1, current + step))
        return [new, *(gr.update(visible=i < new) for i in range(MAX_RESPONSES))]

    @shows_errors
    def on_add(current: int) -> list[Any]:
        return resize(current, +1)

    @shows_errors
    def on_remove(current: int) -> list[Any]:
        return resize(current, -1)

    add.click(on_add, inputs=count, outputs=[count, *boxes])
    remove.click(on_remove, inputs=count, outputs=[count, *boxes])

    @shows_errors
    def on_judge(
        query_text: str, turns_text: str, reference_text: str | None, current: int,
        k_value: float, temp: float,
        model_name: str | None, meta_source: str | None, k_meta_value: float | None,
        request: gr.Request, *texts: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio asks for progress)
    ) -> dict[Any, Any]:
        with studio.judging.hold(visitor_address(request)):  # the demo's limits
            progress(0.0, desc="loading the judge")
            judge_request = JudgeRequest(  # a textbox never shown (closed accordion) sends None
                query=query_text or "",
                turns=turns_text or "",
                responses=tuple(t or "" for t in texts[: int(current)]),
                k=int(k_value),
                temperature=float(temp),
                model=model_name or None,
                reference=reference_text or "",
            )
            account = studio.account(request)
            judgement_id, judgement = run_judgement(studio, judge_request, account,
                                                    progress_watch(progress))
            if meta_source:
                progress(1.0, desc="scoring the samples with the meta reward model")
            meta = meta_vote(studio, judgement_id, judgement, meta_source,
                             int(k_meta_value or 0), account)
        return outputs.show(judgement_id, judgement, meta)

    # the read-only demo refuses what is past its limits at once (studio.judging) rather
    # than letting Gradio queue it behind the judgement running
    run.click(on_judge, inputs=[query, turns, reference, count, k, temperature, model, meta_model,
                                k_meta, *boxes], outputs=shown, show_progress_on=outputs.status,
              concurrency_limit=None if settings.read_only else "default")
    # registered models change while the page is open (training adds some)
    @shows_errors
    def models_now() -> Any:
        return gr.update(choices=studio.model_choices())

    @shows_errors
    def meta_models_now() -> Any:
        return gr.update(choices=[("none", ""), *studio.meta_model_choices()])

    model.focus(models_now, None, model)
    meta_model.focus(meta_models_now, None, meta_model)
    return outputs


def reopen_on_load(studio: Studio, outputs: _Outputs) -> tuple[Any, list[Any]]:
    """The page-load handler that shows `?judgement=ID` (its result and its input, ready
    to judge again), and the components it fills. The read-only demo opens on a
    stored judgement of the demo dataset (`core.store.demo.demo_example`)."""
    components = [*outputs.components, *outputs.inputs.components]

    @shows_errors
    def on_load(request: gr.Request) -> dict[Any, Any]:
        raw = request.query_params.get("judgement")
        example = None
        if not raw and studio.settings.read_only:
            example = demo_example(studio.engine)
            raw = None if example is None else str(example)
        if not raw:
            return {component: gr.skip() for component in components}
        try:
            judgement = open_judgement(studio, raw)
        except GRMStudioError as err:  # a bad link: said where the judgement would be shown
            # The message quotes the link's text: keep it from rendering as Markdown/HTML.
            return {outputs.status: f"**Could not open judgement:** {html.escape(str(err))}"}
        shown = outputs.show(int(raw), judgement, stored_meta_guided(studio.engine, int(raw)))
        if example is not None:
            shown[outputs.status] = (
                "**An example:** the studio's own judge's stored judgement of a pair from the "
                "demo dataset (LLMBar-Natural). Edit the texts and press Judge, or browse the "
                "others in the Datasets and Insights tabs. · " + shown[outputs.status])
        return shown | outputs.inputs.show(judgement)

    return on_load, components

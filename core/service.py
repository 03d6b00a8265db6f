"""The application layer: what every front (the CLI, the web app, its JSON API)
calls to build a judge, judge and save one item or a whole dataset, meta-score and
vote, and run an evaluation, so that each of these is done one way. The store
(`core.store`) saves and loads; the engine (`core.engine`) judges; this module puts
them together. No front-end here.

    judge = build_judge(settings)                         # the configured model, loaded now
    judgement_id, judgement = judge_and_save(engine, judge, item, params, account)
    view = meta_vote(meta, judgement, engine=engine, judgement_id=judgement_id)
    report = judge_dataset(engine, judge, "llmbar", params)         # resumable
    evaluation = run_evaluation(engine, judge, "llmbar", params, ks=(1, 8))

torch and transformers are not imported here: a meta RM comes in already loaded.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from core import backends
from core.config import Settings
from core.engine import Judge
from core.errors import InputError
from core.evaluation.metrics import (
    VOTINGS,
    EvalItem,
    MetaScorer,
    Voting,
    accuracy_results,
    parse_ks,
    sample_position_bias,
)
from core.evaluation.records import Evaluation
from core.inputs import check_storable
from core.labels import Accepted
from core.progress import (
    BatchProgress,
    BatchTracker,
    BatchWatch,
    GenerationProgress,
    GenerationWatch,
)
from core.references import ReferenceMode
from core.store.accounts import Account, Action
from core.store.batch import JudgeSetup, has_references, items_to_judge, judge_inputs
from core.store.evals import close_eval_run, evaluation_items, load_evaluation, start_eval_run
from core.store.judgements import store_judgement
from core.store.meta_scores import save_meta_scores
from core.types import JudgeInput, Judgement, Sample, SamplingParams

if TYPE_CHECKING:
    from core.compare import JudgeComparison
    from core.training.meta_rm import MetaRewardModel
    from core.training.meta_vote import MetaGuidedVote
    from core.training.rft_data import RFTBuild, RFTConfig
    from core.training.rft_export import ExportInfo

META_MISSING = ("meta-guided voting needs a meta reward model: train one with "
                "`grm-studio meta train`")


def build_judge(settings: Settings, backend: backends.Backend | None = None) -> Judge:
    """A `Judge` with the settings' prompt template, score rescue and prefill, on
    `backend` (None: the configured model, loaded now by `load_backend`).

    Every front builds its judge here; only tests and benchmarks that choose
    rescue or prefill themselves build a `Judge` directly."""
    if backend is None:
        backend = backends.load_backend(settings)  # looked up now: tests swap the loader
    return Judge(
        backend,
        template=settings.template,
        rescue=settings.rescue_enabled,
        prefill=settings.prefill_enabled,
    )


def judge_and_save(
    engine: Engine, judge: Judge, item: JudgeInput, params: SamplingParams,
    account: Account | None, *, watch: GenerationWatch | None = None,
) -> tuple[int | None, Judgement]:
    """Judge `item`, and save the judgement when `account` may save judgements;
    returns (its id, or None when not saved, the judgement). `watch` hears the
    generation's progress and may stop it (JudgingStopped: nothing saved). Text no
    database stores (a NUL, a lone surrogate) is refused before judging."""
    judgement = judge.judge(check_storable(item), params, watch=watch)
    if account is None or not account.may(Action.JUDGE):
        return None, judgement
    return store_judgement(engine, judgement), judgement


def judge_setup(judge: Judge, references: ReferenceMode = "shown") -> JudgeSetup:
    """`judge` as the judgements it saves record it, to find those the store has;
    `references`: whether it is shown items' reference answers. InputError for
    'hidden' with a template that always shows one."""
    if references == "hidden" and judge.template_for(2).shows_reference:
        raise InputError(f"template '{judge.template_for(2).name}' always shows a reference "
                         "answer; to judge with references hidden, choose a plain template")
    return JudgeSetup(model=judge.backend.info, template_sha=lambda n: judge.template_for(n).sha256,
                      reference_sha=lambda n: _reference_sha(judge, n),
                      rescue=judge.rescue, reply_prefix=judge.prefill,
                      max_responses=judge.template_for(2).max_responses, references=references)


def _reference_sha(judge: Judge, n: int) -> str | None:
    """The sha256 of the reference variant of the template `judge` uses for `n`
    responses; None when it has none."""
    try:
        return judge.template_for(n, reference=True).sha256
    except InputError:  # a template without a reference variant
        return None


# --- a whole dataset -----------------------------------------------------------------

DEFAULT_BATCH_ITEMS = 4  # Settings.batch_items; fronts pass their setting


@dataclass
class BatchReport:
    """How far `judge_dataset` is, or how it ended."""

    dataset: str
    total: int  # items in the dataset considered (after --limit)
    already_done: int  # of them, judged before with the same judge and settings
    judged: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (item id, reason)


def judge_dataset(
    engine: Engine,
    judge: Judge,
    dataset: str,
    params: SamplingParams,
    *,
    limit: int | None = None,
    on_item: Callable[[BatchReport], None] | None = None,
    batch_items: int = DEFAULT_BATCH_ITEMS,
    watch: BatchWatch | None = None,
    references: ReferenceMode = "shown",
) -> BatchReport:
    """Judge the first `limit` items of `dataset` (all by default) that this judge
    has not judged with these settings yet; `on_item` is called after each (what
    it raises stops the run). Items' reference answers are shown to the judge, or
    with `references` 'hidden' left out (`core.references`).

    `batch_items` items are judged together (`Judge.judge_many`: their samples
    are decoded in one batch); each judgement is committed on its own as soon as
    it is done, so a run that is killed loses at most the items in flight and a
    rerun judges only what is missing. `watch` hears a `BatchProgress` at every
    generation step and item, and may stop the run between two steps
    (JudgingStopped): the items not saved yet are dropped, those saved stay."""
    if batch_items < 1:
        raise InputError(f"batch_items must be at least 1, not {batch_items}")
    items = items_to_judge(engine, dataset, judge_setup(judge, references), params, limit=limit)
    todo = items.todo
    report = BatchReport(dataset=dataset, total=len(items.considered),
                         already_done=len(items.considered) - len(todo))
    tracker = BatchTracker(len(todo))

    def progress(in_flight: int = 0, event: GenerationProgress | None = None) -> BatchProgress:
        return tracker.progress(report.judged + len(report.failed), in_flight, event)

    for start in range(0, len(todo), batch_items):
        chunk = todo[start : start + batch_items]
        chunk_watch = None
        if watch is not None:
            watch.report(progress())  # between two chunks: a stop ends the run here
            chunk_watch = watch.mapped(functools.partial(progress, len(chunk)))
        results = judge.judge_many(judge_inputs(engine, chunk, references=references), params,
                                   watch=chunk_watch)
        for item_id, result in zip(chunk, results, strict=True):
            if watch is not None:
                watch.check()  # a stop asked for now: not one more item saved
            if isinstance(result, InputError):
                report.failed.append((item_id, str(result)))
            else:
                store_judgement(engine, result, item_id=item_id)
                report.judged += 1
            if on_item:
                on_item(report)
    if watch is not None and watch.on_progress is not None:
        watch.on_progress(progress())  # the end: nothing left to stop
    return report


# --- an evaluation run ---------------------------------------------------------------


@dataclass(frozen=True)
class EvalProgress:
    """Where a run is: `phase` is 'sampled' (k_max samples) or 'greedy'."""

    phase: str
    report: BatchReport
    references: ReferenceMode = "shown"  # the run's: items' reference answers shown or not


def greedy_params(params: SamplingParams) -> SamplingParams:
    """The settings of an evaluation's greedy judgements: one sample at temperature 0."""
    return params.model_copy(update={"k": 1, "temperature": 0.0})


def run_evaluation(
    engine: Engine,
    judge: Judge,
    dataset: str,
    params: SamplingParams,
    *,
    ks: Sequence[int] = (1, 8),
    votings: Sequence[str] = ("sum",),
    limit: int | None = None,
    greedy: bool = True,
    meta_scorer: MetaScorer | None = None,
    on_item: Callable[[EvalProgress], None] | None = None,
    references: ReferenceMode = "shown",
) -> Evaluation:
    """Judge (what is missing), score and store one evaluation of `judge` on `dataset`.

    Every item is judged with k_max = max(ks) samples and, with `greedy`, once
    greedily, both through the resumable `judge_dataset`; then greedy, the single
    sample, voting@k and meta-guided@k are scored on the labelled items
    (`core.evaluation.metrics`) and the run and its results are stored.
    `params` gives the sampling settings; its k is replaced by max(ks). Without
    `meta_scorer`, meta-guided voting reads the meta scores stored with the samples.
    `references`: whether items' reference answers are shown to the judge (stored
    with the run's settings, with how many evaluated items have one).
    A run that fails or is interrupted is stored with that status and re-raised."""
    chosen_ks, chosen_votings = _check(ks, votings)
    setup = judge_setup(judge, references)  # refuses 'hidden' before the run is stored
    sampled = params.model_copy(update={"k": max(chosen_ks)})
    settings = {
        "ks": list(chosen_ks), "votings": list(chosen_votings), "k_max": sampled.k,
        "temperature": sampled.temperature, "top_p": sampled.top_p,
        "max_new_tokens": sampled.max_new_tokens, "seed": sampled.seed, "greedy": greedy,
        "limit": limit, "template": judge.template_for(2).name,
        "rescue": judge.rescue, "reply_prefix": judge.prefill,
        "meta_scorer": type(meta_scorer).__name__ if meta_scorer is not None else None,
        "references": references,
    }
    run_id = start_eval_run(engine, dataset, judge.backend.info, settings)
    try:
        for phase, phase_params in [("sampled", sampled)] + (
                [("greedy", greedy_params(params))] if greedy else []):
            judge_dataset(engine, judge, dataset, phase_params, limit=limit,
                          on_item=_in_phase(on_item, phase, references),
                          references=references)
        items, considered, excluded = evaluation_items(
            engine, setup, dataset, sampled, limit=limit,
            greedy=greedy_params(sampled) if greedy else None)
        stored_meta: dict[str, Any] = {}
        if "meta" in chosen_votings and meta_scorer is None:
            _require_stored_meta_scores(items)
            stored_meta["stored_meta_model_id"] = _one_meta_model(items)
        results = accuracy_results(items, chosen_ks, chosen_votings, meta_scorer=meta_scorer)
        bias = sample_position_bias([i.sampled for i in items if i.sampled is not None])
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        close_eval_run(engine, run_id, status, error=str(err) or type(err).__name__)
        raise
    labels = Counter(i.label_source for i in items)
    best_of_n = sum(isinstance(i.best, Accepted) for i in items)
    close_eval_run(engine, run_id, "finished", considered=considered, evaluated=len(items),
                   excluded=excluded, bias=bias, results=results,
                   params={"label_sources": dict(sorted(labels.items())),
                           "best_of_n_items": best_of_n,
                           "reference_items": sum(i.has_reference for i in items),
                           **stored_meta})
    return load_evaluation(engine, run_id)


def _in_phase(
    on_item: Callable[[EvalProgress], None] | None, phase: str, references: ReferenceMode
) -> Callable[[BatchReport], None] | None:
    """`on_item` for one phase's batch reports."""
    if on_item is None:
        return None
    return lambda report: on_item(EvalProgress(phase, report, references))


@dataclass(frozen=True)
class ReferenceEvaluation:
    """One judge evaluated on one dataset with items' reference answers shown and
    hidden, and the two runs compared item by item."""

    shown: Evaluation
    hidden: Evaluation
    comparison: JudgeComparison  # A: shown, B: hidden, on the items with a reference


def evaluate_references(
    engine: Engine, judge: Judge, dataset: str, params: SamplingParams, **options: Any
) -> ReferenceEvaluation:
    """`run_evaluation` twice on the same items, with reference answers shown and then
    hidden (`options` as `run_evaluation` takes them, but `references`), and the paired
    comparison of the two runs (`compare_judges`: shown - hidden, bootstrap 95% CI over
    the items both scored that have a reference; the others are left out, counted).
    Items without a reference are judged once, alike in both runs. InputError before
    anything is judged when none of the items considered has a reference."""
    if "references" in options:
        raise InputError("evaluate_references runs both reference modes itself")
    if not has_references(engine, dataset, limit=options.get("limit")):
        raise InputError(f"no item of dataset '{dataset}' has a reference answer (among those "
                         "considered): there is nothing to compare with references hidden")
    judge_setup(judge, "hidden")  # a template that always shows one: refused before judging
    shown = run_evaluation(engine, judge, dataset, params, references="shown", **options)
    hidden = run_evaluation(engine, judge, dataset, params, references="hidden", **options)
    comparison = compare_judges(engine, f"run:{shown.run.id}", f"run:{hidden.run.id}", dataset)
    return ReferenceEvaluation(shown, hidden, comparison)


def _check(ks: Sequence[int], votings: Sequence[str]) -> tuple[tuple[int, ...], tuple[Voting, ...]]:
    try:
        chosen_ks = parse_ks(ks)
    except ValueError as err:
        raise InputError(str(err)) from None
    unknown = [v for v in votings if v not in VOTINGS]
    if unknown or not votings:
        raise InputError(f"voting must be one or more of {', '.join(VOTINGS)}, got "
                         f"{', '.join(votings) or 'none'}")
    if max(chosen_ks) > 256:
        raise InputError(f"k can be at most 256, got {max(chosen_ks)}")
    return chosen_ks, tuple(v for v in VOTINGS if v in votings)


def _require_stored_meta_scores(items: Sequence[EvalItem]) -> None:
    if any(i.sampled is not None and None in i.meta_scores for i in items):
        raise InputError("meta-guided voting needs a meta reward model: train one with "
                         "`grm-studio meta train` (no meta scores are stored with these samples)")


def _one_meta_model(items: Sequence[EvalItem]) -> int | None:
    """The meta RM that wrote every stored meta score of `items` (None: not recorded,
    scores stored before runs kept it); InputError when they come from several."""
    models = {m for i in items if i.sampled is not None for m in i.meta_model_ids}
    if len(models) > 1:
        names = ", ".join(sorted(str(m) if m is not None else "unrecorded" for m in models))
        raise InputError(
            f"the stored meta scores come from different meta reward models ({names}); "
            "rescore every judgement with one (`grm-studio meta score`) or pass the meta "
            "reward model to use")
    return models.pop() if models else None


# --- meta-scoring --------------------------------------------------------------------


class StoredMetaScorer(Protocol):
    """A meta reward model as `meta_vote` needs it (`core.training.meta_rm.MetaRewardModel`
    is one): it rates samples, and it has a place in the store's registry."""

    path: Path

    def score(self, item: JudgeInput, samples: Sequence[Sample]) -> list[float]: ...

    def register(self, engine: Engine) -> int: ...


def meta_vote(
    meta: StoredMetaScorer,
    judgement: Judgement,
    *,
    k_meta: int | None = None,
    meta_model: str | None = None,
    engine: Engine | None = None,
    judgement_id: int | None = None,
) -> MetaGuidedVote:
    """Meta-score every sample of `judgement` with `meta`, store the rewards with
    stored judgement `judgement_id` (only when both `engine` and `judgement_id` are
    given; marked with `meta`'s registry id), and return the meta-guided vote
    beside the plain one. `k_meta` None: k/2; `meta_model` names the meta RM in
    the result (None: its directory)."""
    from core.training.meta_vote import meta_guided

    rewards = tuple(meta.score(judgement.input, judgement.samples))
    if engine is not None and judgement_id is not None:
        save_meta_scores(engine, judgement_id, rewards, meta_model_id=meta.register(engine))
    return meta_guided(
        judgement, rewards, k_meta=k_meta,
        meta_model=str(meta.path) if meta_model is None else meta_model,
    )


def load_meta_model(path: str | Path, settings: Settings) -> MetaRewardModel:
    """The meta reward model at `path`, on the settings' device: every front loads
    it here (InputError when there is none, or torch is missing)."""
    try:
        from core.training.meta_rm import MetaRewardModel
    except ImportError:
        raise InputError(META_MISSING) from None
    if not Path(path).exists():
        raise InputError(f"no meta reward model at {path}; {META_MISSING.split(': ', 1)[1]}")
    return MetaRewardModel.load(Path(path), device=settings.resolved_device())


def export_rft(
    engine: Engine,
    judge: Judge,
    dataset: str,
    *,
    name: str,
    root: Path,
    config: RFTConfig,
    params: SamplingParams,
    limit: int | None = None,
    created_by: str | None = None,
    on_item: Callable[[int, int, RFTBuild], None] | None = None,
) -> ExportInfo:
    """Judge `dataset`'s labelled items with `judge` into an RFT dataset (the strict
    rule, too-easy dropped, hinted sampling: `core.training.rft_data`) and write it as
    the next version of export `name` (`core.training.rft_export`)."""
    from core.training.labelled import labelled_items
    from core.training.rft_data import build_rft
    from core.training.rft_export import write_export

    labelled = labelled_items(engine, dataset, limit=limit)
    if not labelled.items:
        skipped = ", ".join(f"{n} {why}" for why, n in labelled.skipped.items()) or "no items"
        raise InputError(f"dataset '{dataset}' has no item with a usable label ({skipped})")
    build = build_rft(judge, labelled.items, config, params, on_item=on_item)
    return write_export(
        engine, build, name=name, root=root, config=config, params=params,
        judge=judge.backend.info, template=judge.template_for(2).name, dataset=dataset,
        created_by=created_by, skipped=dict(labelled.skipped),
    )


# --- judge against judge -------------------------------------------------------------


def compare_judges(
    engine: Engine, a: str, b: str, dataset: str | None = None, *, seed: int = 0
) -> JudgeComparison:
    """Judge against judge (`core.compare`): sides `a` and `b` as a user names them
    (`run:ID`, `judge:NAME`, either with `@K`) on `dataset`, by default the dataset
    of the run(s) named. InputError for a side that is not there, a run of another
    dataset, or no dataset to compare on."""
    from core.compare import compare, parse_side
    from core.store.verdicts import paired_verdicts, resolve_side

    side_a, side_b = (resolve_side(engine, parse_side(raw)) for raw in (a, b))
    evaluated = sorted({s.dataset for s in (side_a, side_b) if s.dataset is not None})
    if dataset is None and len(evaluated) != 1:
        raise InputError("name the dataset to compare on (--dataset NAME)" if not evaluated
                         else f"the runs evaluated different datasets ({', '.join(evaluated)})")
    chosen = dataset or evaluated[0]
    for side in (side_a, side_b):
        if side.dataset not in (None, chosen):
            raise InputError(f"{side.label} evaluated '{side.dataset}', not '{chosen}'")
    items, excluded = paired_verdicts(engine, chosen, side_a, side_b)
    return compare(chosen, side_a, side_b, items, excluded, seed=seed)

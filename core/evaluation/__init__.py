"""Evaluating the judge on labelled data: accuracy of greedy, one sample, voting@k
and meta-guided@k by the strict rule, with 95% CIs, rates and position bias.

    from core.service import run_evaluation        # judge, score, store a run
    evaluation = run_evaluation(engine, judge, "llmbar", SamplingParams(), ks=(1, 8))
    write_report(evaluation, Path("out"))          # report.md, results.csv, plot

`metrics` is the pure computation, `records` the shape of a stored run and
`report` its Markdown / CSV / plotly forms; running one is `core.service`'s, the
store side (saving and loading runs) `core.store.evals`.
"""

from core.evaluation.metrics import (
    NO_CATEGORY,
    VOTINGS,
    EvalItem,
    MetaScorer,
    MethodResult,
    Voting,
    accuracy_results,
    k_meta_for,
    method_plan,
    parse_ks,
    sample_position_bias,
)
from core.evaluation.records import EvalRun, Evaluation
from core.evaluation.report import accuracy_vs_k_figure, render_markdown, write_report

__all__ = [
    "NO_CATEGORY", "VOTINGS", "EvalItem", "EvalRun", "Evaluation", "MetaScorer",
    "MethodResult", "Voting", "accuracy_results", "accuracy_vs_k_figure", "k_meta_for",
    "method_plan", "parse_ks", "render_markdown", "sample_position_bias", "write_report",
]

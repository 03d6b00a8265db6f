"""How good is a judge on items it never trained on? Base model vs the studio's judge.

    .venv/bin/python bench/judge_quality.py --models embedded studio --per-source 6 --k 8

Held-out items (the recipe's rule, `core.training.recipe.held_out`) of the four
preference sets in ../shared/data/preferences: LLMBar (Natural and the four
Adversarial sets; the MT-Bench, FairEval and LLMEval2 files share questions with
the critique data and are left out), JudgeBench, HH-RLHF harmless, PandaLM
(label: the three annotators' majority by `core.labels`). Per source, the first N
held-out items in a fixed hash order whose prompt fits `--max-prompt-chars`.

Each model judges every item with k sampled judgements (temperature 0.5, the
responses shuffled per sample) and once greedily, WITHOUT score rescue. Printed
per model, per source and pooled: parse-valid rate of samples, strict accuracy
(the labelled best strictly above the other; a tie or no valid sample is wrong)
of greedy, one sample, voting@4 and voting@k, with Wilson 95% CIs over
items; the paired difference between the two models (bootstrap 95% CI); how often the response
shown first wins among decisive samples; and how many distinct principle texts
the k samples of one judgement write. `--out` keeps every figure and three
transcripts as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.agreement import strict_correct
from core.backends import load_backend
from core.config import Settings
from core.datasets import Skipped, read_dataset
from core.engine import Judge
from core.estimates import proportion
from core.labels import ItemLabel, LabelVotes, item_label
from core.store.importing import content_hash
from core.training.recipe import RecipeConfig, held_out
from core.training.recipe_rft import preference_files
from core.types import JudgeInput, Judgement, SamplingParams

FILES = preference_files(RecipeConfig().preferences_dir)
SOURCES = {  # LLMBar's Natural and adversarial sets are reported together
    "llmbar": FILES["llmbar-natural"] + FILES["llmbar-adversarial"],
    **{source: FILES[source] for source in ("judgebench", "hh-rlhf", "pandalm")},
}


@dataclass(frozen=True)
class HeldOutItem:
    source: str
    key: str
    input: JudgeInput
    best: int


def held_out_items(per_source: int, max_prompt_chars: int) -> list[HeldOutItem]:
    chosen: list[HeldOutItem] = []
    for source, files in SOURCES.items():
        found: list[HeldOutItem] = []
        for path in files:
            for record in read_dataset(path):
                if isinstance(record, Skipped) or len(record.responses) != 2:
                    continue
                context = [t.model_dump() for t in record.context]
                key = content_hash(record.query, context, record.responses)
                size = len(record.query) + sum(len(r) for r in record.responses) + sum(
                    len(t.content) for t in record.context)
                if not held_out(key) or size > max_prompt_chars:
                    continue
                label = item_label(LabelVotes(dataset=tuple(lab.best for lab in record.labels)))
                if not isinstance(label, ItemLabel) or label.best is None:
                    continue
                found.append(HeldOutItem(source, key, JudgeInput(
                    query=record.query, responses=record.responses, context=record.context),
                    label.best))
        found.sort(key=lambda i: hashlib.sha256(f"bench:{i.key}".encode()).hexdigest())
        chosen += found[:per_source]
    return chosen


def _voted_correct(judgement: Judgement, best: int, upto: int) -> bool:
    totals = [0, 0]
    valid = 0
    for sample in judgement.samples[:upto]:
        if sample.scores is not None:
            valid += 1
            totals = [a + b for a, b in zip(totals, sample.scores, strict=True)]
    return valid > 0 and strict_correct(totals, best)


def _ci(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    boots = rng.choice(data, size=(2000, len(data)), replace=True).mean(axis=1)
    return float(data.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def _fmt(values: Sequence[float]) -> str:
    """A share of items (values 0 or 1) with its Wilson 95% CI, as the studio shows it."""
    rate = proportion(int(sum(values)), len(values))
    if rate.value is None or rate.low is None or rate.high is None:
        return "   n/a"
    return f"{rate.value:6.1%} [{rate.low:5.1%}, {rate.high:5.1%}]"


def _meta_correct(meta: object, judgement: Judgement, best: int) -> bool:
    """Meta-guided voting (k_meta = k/2, the studio's default) is strictly right."""
    from core.training.meta_rm import MetaRewardModel, score_judgement
    from core.training.meta_vote import meta_guided

    assert isinstance(meta, MetaRewardModel)
    vote = meta_guided(judgement, score_judgement(meta, judgement)).vote
    return vote.valid_samples > 0 and strict_correct(list(vote.totals), best)


def run_model(model: str, items: list[HeldOutItem], k: int, max_new_tokens: int,
              batch: int, meta_dir: Path | None = None) -> dict[str, object]:
    settings = Settings(model=model)
    judge = Judge(load_backend(settings), rescue=False, prefill=settings.prefill_enabled)
    sampled = SamplingParams(k=k, temperature=0.5, max_new_tokens=max_new_tokens, seed=0)
    greedy = sampled.model_copy(update={"k": 1, "temperature": 0.0})
    started = time.perf_counter()
    judged: list[Judgement] = []
    greedy_judged: list[Judgement] = []
    for at in range(0, len(items), batch):
        chunk = [i.input for i in items[at: at + batch]]
        for params, out in ((sampled, judged), (greedy, greedy_judged)):
            for result in judge.judge_many(chunk, params):
                if not isinstance(result, Judgement):
                    raise SystemExit(f"{model}: an item could not be judged: {result}")
                out.append(result)
        print(f"  {model}: {min(at + batch, len(items))}/{len(items)} items, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    meta = None
    if meta_dir is not None:
        from core.training.meta_rm import MetaRewardModel

        meta = MetaRewardModel.load(meta_dir)
    rows = []
    for item, j, g in zip(items, judged, greedy_judged, strict=True):
        decisive_first = [s.scores[s.shown_order[0]] > s.scores[s.shown_order[1]]
                          for s in j.samples if s.scores is not None
                          and s.scores[0] != s.scores[1]]
        rows.append({
            "source": item.source,
            "key": item.key,
            "valid": [s.valid for s in j.samples],
            "greedy": _voted_correct(g, item.best, 1),
            "single": _voted_correct(j, item.best, 1),
            **{f"vote{n}": _voted_correct(j, item.best, n) for n in sorted({4, k}) if n <= k},
            **({f"meta{k}": _meta_correct(meta, j, item.best)} if meta is not None else {}),
            "first_wins": decisive_first,
            "distinct_principles": len({(s.parse.principles or "").strip() for s in j.samples}),
        })
    transcripts = [{"query": j.input.query[:500], "raw_text": j.samples[0].raw_text,
                    "scores": j.samples[0].scores, "best": it.best}
                   for it, j in list(zip(items, judged, strict=True))[:3]]
    return {"model": judge.backend.info.model_dump(), "seconds": time.perf_counter() - started,
            "rows": rows, "transcripts": transcripts}


def _methods(rows: list[dict[str, object]]) -> list[str]:
    return [m for m in rows[0]
            if m in ("greedy", "single") or m.startswith(("vote", "meta"))]


def report(results: dict[str, dict[str, object]], baseline: str | None = None) -> None:
    for model, result in results.items():
        rows = result["rows"]
        assert isinstance(rows, list)
        methods, k = _methods(rows), len(rows[0]["valid"])
        print(f"\n== {model} ({result['seconds']:.0f} s, k={k})")
        for source in [*SOURCES, "pooled"]:
            subset = [r for r in rows if source in ("pooled", r["source"])]
            if not subset:
                continue
            valid = [v for r in subset for v in r["valid"]]
            first = [f for r in subset for f in r["first_wins"]]
            cells = "  ".join(f"{m} {_fmt([float(r[m]) for r in subset])}" for m in methods)
            print(f"  {source:10} n={len(subset):3}  parse-valid {np.mean(valid):6.1%}  {cells}")
            if source == "pooled":
                print(f"  first shown wins {np.mean(first) if first else float('nan'):.1%} of "
                      f"{len(first)} decisive samples; distinct principles per judgement "
                      f"{np.mean([r['distinct_principles'] for r in subset]):.2f} of {k}")
    if len(results) < 2:
        return
    a = baseline if baseline in results else next(iter(results))
    ra = results[a]
    print(f"\n== paired differences against {a} (bootstrap over items)")
    for b, rb in results.items():
        if b == a:
            continue
        common = [m for m in _methods(ra["rows"]) if m in _methods(rb["rows"])]  # type: ignore[arg-type]
        for m in common:
            diff = [float(y[m]) - float(x[m])
                    for x, y in zip(ra["rows"], rb["rows"], strict=True)]  # type: ignore[call-overload]
            mean, lo, hi = _ci(diff)
            print(f"  {b} - {a} {m:7}: {mean:+.1%} paired 95% CI [{lo:+.1%}, {hi:+.1%}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["embedded", "studio"],
                        help="models to run (none: only report the --earlier runs)")
    parser.add_argument("--baseline", help="the model the others are compared with, paired "
                        "(default: the first)")
    parser.add_argument("--per-source", type=int, default=6)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--max-prompt-chars", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=2, help="items judged together")
    parser.add_argument("--out", type=Path, help="write every figure and transcript as JSON")
    parser.add_argument("--earlier", type=Path, nargs="*", default=[],
                        help="--out files of earlier runs on the same items, reported beside")
    parser.add_argument("--meta", type=Path, help="a meta RM (e.g. data/recipe/meta/model): "
                        "adds meta@k, meta-guided voting over the k/2 samples it rates highest")
    args = parser.parse_args()
    items = held_out_items(args.per_source, args.max_prompt_chars)
    print(f"{len(items)} held-out items: " + ", ".join(
        f"{s} {sum(i.source == s for i in items)}" for s in SOURCES), flush=True)
    results: dict[str, dict[str, object]] = {}
    for earlier in args.earlier:
        for model, result in json.loads(earlier.read_text()).items():
            if [r["key"] for r in result["rows"]] != [i.key for i in items]:
                raise SystemExit(f"{earlier}: {model} was run on other items")
            results[model] = result
    for model in args.models:
        results[model] = run_model(model, items, args.k, args.max_new_tokens, args.batch,
                                   args.meta)
    report(results, args.baseline)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()

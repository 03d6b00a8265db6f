"""Does rejective fine-tuning make the judge better? Base judge vs RFT-trained judge.

    /work/main/.venv/bin/python bench/rft_effect.py --train-items 24 --eval-items 40

1. Read LLMBar files from ../shared/data/preferences and split them BY ITEM
   (a hash of the query and responses): an evaluation split that training
   never sees, and a training pool.
2. Import the training pool into a fresh store, build an RFT export with the
   embedded judge (score rescue on while sampling, as the studio does).
3. Fine-tune the embedded model on the export (`train_rft`, CPU).
4. Judge the evaluation split with the base and the trained judge, WITHOUT
   score rescue, the same prompts, orders and seeds for both, and print strict
   accuracy (best response strictly above the other; no valid sample or a tie
   is wrong) and the parse-valid rate (samples whose own text has parseable
   scores), accuracy with a Wilson 95% CI, the rate with a bootstrap 95% CI over
   items, and the paired differences (bootstrap).

Evaluation prompts are generated in batches across items (the same template,
shuffles, parser and vote as `Judge`, without its per-judgement batching), to
keep the run within minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.agreement import strict_correct
from core.backends import Backend, load_backend
from core.config import Settings
from core.datasets import read_dataset
from core.datasets.records import SourceItem
from core.engine import Judge, shown_orders, to_original_order
from core.estimates import proportion
from core.parse import parse_output
from core.service import export_rft
from core.store import open_store
from core.store.importing import import_file
from core.templates import POINTWISE, PRINCIPLES_PREFIX
from core.training import (
    ExportError,
    RFTConfig,
    RFTTrainConfig,
    exports_dir,
    find_export,
    train_rft,
)
from core.types import JudgeInput, ParsedOutput, SamplingParams
from core.vote import vote

DATA = ROOT.parent / "shared" / "data" / "preferences" / "llmbar"
FILES = ("LLMBar_Natural.json", "LLMBar_Adversarial_Neighbor.json")


@dataclass(frozen=True)
class Pair:
    query: str
    responses: tuple[str, str]
    best: int
    key: str


def read_pairs(files: list[Path]) -> list[Pair]:
    pairs = []
    for file in files:
        for record in read_dataset(file):
            if not isinstance(record, SourceItem) or len(record.responses) != 2:
                continue
            best = record.labels[0].best if record.labels else None
            if best is None:
                continue
            key = hashlib.sha256(
                json.dumps([record.query, *record.responses]).encode()).hexdigest()
            pairs.append(Pair(record.query, record.responses, best, key))  # type: ignore[arg-type]
    return pairs


def split(pairs: list[Pair], eval_fraction: float) -> tuple[list[Pair], list[Pair]]:
    """(training pool, evaluation split), by a hash of each item: no item in both."""
    def held_out(p: Pair) -> bool:
        return int(hashlib.sha256(f"eval:{p.key}".encode()).hexdigest()[:8], 16) / 16**8 < eval_fraction

    evaluation = sorted((p for p in pairs if held_out(p)), key=lambda p: p.key)
    training = sorted((p for p in pairs if not held_out(p)), key=lambda p: p.key)
    return training, evaluation


@dataclass(frozen=True)
class EvalResult:
    correct: np.ndarray  # per item: 1 if the vote is strictly right
    valid: np.ndarray  # per item: fraction of samples that parsed without rescue
    seconds: float


def evaluate(backend: Backend, pairs: list[Pair], *, k: int, params: SamplingParams,
             batch: int, prefill: bool) -> EvalResult:
    """Judge every pair with k shuffled samples, no rescue; batched across items."""
    started = time.perf_counter()
    jobs = []  # (pair index, order, prompt)
    for i, pair in enumerate(pairs):
        item = _input(pair)
        jobs += [(i, order, POINTWISE.render(item, order))
                 for order in shown_orders(2, k, seed=params.seed + i)]
    prefix = PRINCIPLES_PREFIX if prefill else ""
    scores: list[list[tuple[int, ...] | None]] = [[] for _ in pairs]
    for start in range(0, len(jobs), batch):
        chunk = jobs[start : start + batch]
        completions = backend.generate([p for _, _, p in chunk], params, assistant_prefix=prefix)
        for (i, order, _), completion in zip(chunk, completions, strict=True):
            parsed = parse_output(prefix + completion.text, 2,
                                  truncated=completion.finish_reason == "length")
            ok = isinstance(parsed, ParsedOutput)
            scores[i].append(to_original_order(parsed.scores, order) if ok else None)
        print(f"    {min(start + batch, len(jobs))}/{len(jobs)} samples", flush=True)
    correct = np.array([
        float(strict_correct(vote(s, 2, seed=params.seed).totals, p.best))
        for s, p in zip(scores, pairs, strict=True)
    ])
    valid = np.array([sum(x is not None for x in s) / len(s) for s in scores])
    return EvalResult(correct, valid, time.perf_counter() - started)


def _input(pair: Pair) -> JudgeInput:
    return JudgeInput(query=pair.query, responses=pair.responses)


def bootstrap(values: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile 95% CI, resampling items."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def show(name: str, values: np.ndarray) -> str:
    mean, low, high = bootstrap(values)
    return f"{name:34} {mean:6.3f}  95% CI [{low:6.3f}, {high:6.3f}]"


def show_rate(name: str, correct: np.ndarray) -> str:
    """A share of items (`correct` is 0 or 1 per item) with its Wilson 95% CI."""
    rate = proportion(int(correct.sum()), len(correct))
    if rate.value is None or rate.low is None or rate.high is None:
        return f"{name:34}    n/a"
    return f"{name:34} {rate.value:6.3f}  95% CI [{rate.low:6.3f}, {rate.high:6.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-items", type=int, default=24)
    parser.add_argument("--eval-items", type=int, default=40)
    parser.add_argument("--eval-fraction", type=float, default=0.4)
    parser.add_argument("--n-rft", type=int, default=3)
    parser.add_argument("--rft-tokens", type=int, default=64, help="max new tokens while sampling")
    parser.add_argument("--eval-tokens", type=int, default=128)
    parser.add_argument("--k", type=int, default=1, help="samples per item at evaluation")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--batch", type=int, default=8, help="prompts per generate call")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="rft-bench-"))
    settings = Settings(data_dir=work, database_url=f"sqlite:///{work / 'bench.db'}",
                        demo_file=None)
    training, evaluation = split(read_pairs([DATA / f for f in FILES]), args.eval_fraction)
    training, evaluation = training[: args.train_items], evaluation[: args.eval_items]
    assert not {p.key for p in training} & {p.key for p in evaluation}
    print(f"data: {', '.join(FILES)} -> {len(training)} training items, "
          f"{len(evaluation)} held-out items (split by item hash; none shared)")

    t0 = time.perf_counter()
    engine = open_store(settings)
    pool = work / "train-pool.jsonl"
    pool.write_text("".join(json.dumps({"prompt": p.query, "responses": list(p.responses),
                                        "best": p.best}) + "\n" for p in training))
    import_file(engine, pool, "bench-train")  # a no-op when rerun
    base = load_backend(Settings())
    sampling = SamplingParams(k=args.n_rft, temperature=0.5, max_new_tokens=args.rft_tokens)
    config = RFTConfig(n_rft=args.n_rft, validation_fraction=0.0, max_hinted=len(training))

    def progress(done: int, total: int, _build: object) -> None:
        print(f"    export: {done}/{total} items", flush=True)

    try:  # a rerun in the same --workdir resumes after a finished export / training
        export = find_export(engine, "bench", exports_dir(work))
    except ExportError:
        export = export_rft(engine, Judge(base, rescue=True, prefill=True), "bench-train",
                            name="bench", root=exports_dir(work), config=config, params=sampling,
                            on_item=progress)
    t1 = time.perf_counter()
    print(f"export {export.ref}: {json.dumps(export.counts, sort_keys=True)} ({t1 - t0:.0f} s)")

    checkpoint = work / "judges" / "bench-rft"
    params = SamplingParams(k=1, temperature=0.5, max_new_tokens=args.eval_tokens, seed=0)
    trainable = sum(export.counts.get(f"records_{s}", 0) for s in ("train", "hinted"))
    if not trainable:
        print("no trajectory was accepted (correct by the strict rule), so there is nothing to "
              "train on; judging the held-out split with the base judge only, no rescue:")
        before = evaluate(base, evaluation, k=args.k, params=params, batch=args.batch,
                          prefill=True)
        print(show_rate("base    strict accuracy", before.correct))
        print(show("base    parse-valid rate", before.valid))
        print(f"time: export {t1 - t0:.0f} s, evaluation {before.seconds:.0f} s")
        return
    if not (checkpoint / "TRAINING.json").is_file():
        train_rft(engine, export, RFTTrainConfig(
            base_model="embedded", lora=args.lora, epochs=args.epochs, learning_rate=args.lr,
            grad_accum=4, max_length=1024, evaluate=False, name="bench-rft"), settings)
    metrics = json.loads((checkpoint / "TRAINING.json").read_text())["metrics"]
    t2 = time.perf_counter()
    print(f"trained: {metrics['steps']} steps on {metrics['train_records']} records, "
          f"train loss {metrics['train_loss']:.3f} ({t2 - t1:.0f} s) -> {checkpoint}")

    print("judging the held-out split, no rescue, prefill on for both:")
    before = evaluate(base, evaluation, k=args.k, params=params, batch=args.batch, prefill=True)
    tuned = load_backend(Settings(model=str(checkpoint)))
    after = evaluate(tuned, evaluation, k=args.k, params=params, batch=args.batch, prefill=True)
    print()
    print(f"held-out items: {len(evaluation)}, k={args.k}, temperature {params.temperature}, "
          f"max_new_tokens {params.max_new_tokens}")
    print(show_rate("base    strict accuracy", before.correct))
    print(show_rate("trained strict accuracy", after.correct))
    print(show("base    parse-valid rate", before.valid))
    print(show("trained parse-valid rate", after.valid))
    print(show("difference accuracy (paired)", after.correct - before.correct))
    print(show("difference parse-valid (paired)", after.valid - before.valid))
    print(f"time: export {t1 - t0:.0f} s, training {t2 - t1:.0f} s, evaluation "
          f"{before.seconds + after.seconds:.0f} s")


if __name__ == "__main__":
    main()

"""Do float32 and bfloat16 (or the int8 decode kernel) judge alike? Greedy judgements
of a few real pairs in both.

    .venv/bin/python bench/dtype_agreement.py --items 8 --max-new-tokens 96
    .venv/bin/python bench/dtype_agreement.py --against int8   # float32, int8 decode products

The first `--items` pairs of LLMBar-Natural (the demo set) are judged with the
embedded model's defaults (prefill, score rescue), k = 2 (both orders),
temperature 0, once in float32 and once in bfloat16 (or, with `--against
int8`, in float32 with `GRM_STUDIO_DECODE_KERNEL=int8`), through the ordinary
`Judge.judge_many` path. Printed per item: each dtype's scores per sample (in
the original response order, `r` marks a rescued sample), winners, and whether
the raw texts are identical; then how often samples, scores and winners agree.
bf16 rounds every activation to 8 bits of mantissa, so greedy texts diverge
after some tokens (int8 products, ~1.5% off each, sooner); the question is
whether the verdicts do.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def judge_all(settings: dict, items, params):
    from core import Judge
    from core.backends import load_backend
    from core.config import Settings

    backend = load_backend(Settings(**settings))
    started = time.perf_counter()
    results = Judge(backend, rescue=True, prefill=True).judge_many(items, params)
    return results, time.perf_counter() - started


def describe(judgement) -> str:
    samples = " ".join(
        ("-" if s.scores is None else ",".join(map(str, s.scores))) + ("r" if s.rescue else "")
        for s in judgement.samples
    )
    winner = "tie" if judgement.vote.tie else judgement.vote.winner
    return f"{samples:<14} winner {winner}"


def main() -> None:
    from core.datasets import read_dataset
    from core.datasets.records import SourceItem
    from core.types import JudgeInput, SamplingParams

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--against", choices=["bf16", "int8"], default="bf16",
                        help="what float32 (exact decode products) is compared with")
    args = parser.parse_args()
    other = ({"dtype": "bfloat16"} if args.against == "bf16"
             else {"dtype": "float32", "decode_kernel": "int8"})
    source = ROOT / "data" / "demo" / "llmbar-natural.json"
    records = [r for r in read_dataset(source) if isinstance(r, SourceItem)][: args.items]
    items = [JudgeInput(query=r.query, responses=tuple(r.responses)) for r in records]
    params = SamplingParams(k=2, temperature=0.0, max_new_tokens=args.max_new_tokens)
    fp32, fp32_s = judge_all({"dtype": "float32", "decode_kernel": "packed"}, items, params)
    compared, compared_s = judge_all(other, items, params)
    print(f"{len(items)} LLMBar-Natural pairs · k=2 greedy · {args.max_new_tokens} new tokens · "
          f"float32 {fp32_s:.0f} s, {args.against} {compared_s:.0f} s")
    same_text = same_scores = same_winner = samples = 0
    for i, (a, b) in enumerate(zip(fp32, compared, strict=True)):
        if isinstance(a, Exception) or isinstance(b, Exception):
            print(f"item {i}: not judged ({a if isinstance(a, Exception) else b})")
            continue
        texts = sum(x.raw_text == y.raw_text for x, y in zip(a.samples, b.samples, strict=True))
        scores = sum(x.scores == y.scores for x, y in zip(a.samples, b.samples, strict=True))
        same_text, same_scores, samples = same_text + texts, same_scores + scores, samples + 2
        winner = (a.vote.winner, a.vote.tie) == (b.vote.winner, b.vote.tie)
        same_winner += winner
        print(f"item {i}: fp32 {describe(a)} | {args.against} {describe(b)} | "
              f"identical texts {texts}/2 · same verdict {'yes' if winner else 'NO'}")
    judged = samples // 2
    print(f"agreement: identical texts {same_text}/{samples} samples, identical scores "
          f"{same_scores}/{samples} samples, "
          f"same verdict (winner or tie) {same_winner}/{judged} items")


if __name__ == "__main__":
    main()

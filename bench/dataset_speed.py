"""Does judging a dataset cost linearly in its size? Judge.judge_many on N items.

    .venv/bin/python bench/dataset_speed.py                    # N = 2, 4, 8; k = 4
    .venv/bin/python bench/dataset_speed.py --ns 4 16 --k 8 --max-new-tokens 128

The items are the first N JudgeBench pairs (a fixed order; each run's items
include the previous run's) whose judge prompt is at most `--max-prompt-tokens`
long. Each N is judged with the embedded model the way `grm-studio judge-dataset`
does it: `--batch-items` items per `judge_many` call (all their samples decoded
together), score rescue off, stopping at the end of each sample. It prints wall
time, seconds per item and the prompt and generated tokens, and for each N the
ratio of its time to the smallest N's beside the ratios of items and of tokens:
linear cost means the time ratio follows the token ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.backends import load_backend
from core.config import Settings
from core.engine import Judge
from core.types import JudgeInput, Judgement, SamplingParams

JUDGEBENCH = ROOT.parent / "shared" / "data" / "preferences" / "judgebench"


def read_items(limit: int, max_prompt_tokens: int, judge: Judge) -> list[JudgeInput]:
    items = []
    for path in sorted(JUDGEBENCH.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            item = JudgeInput(query=record["question"],
                              responses=(record["response_A"], record["response_B"]))
            prompt = judge.template_for(2).render(item, (0, 1), None)
            if (judge.backend.count_prompt_tokens(prompt) or 0) <= max_prompt_tokens:
                items.append(item)
            if len(items) == limit:
                return items
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-prompt-tokens", type=int, default=1200)
    parser.add_argument("--batch-items", type=int, default=4)
    args = parser.parse_args()

    judge = Judge(load_backend(Settings()), rescue=False, prefill=True)
    items = read_items(max(args.ns), args.max_prompt_tokens, judge)
    params = SamplingParams(k=args.k, temperature=0.5, max_new_tokens=args.max_new_tokens)
    print(f"JudgeBench pairs with judge prompts <= {args.max_prompt_tokens} tokens · k={args.k} · "
          f"<= {args.max_new_tokens} new tokens · {args.batch_items} items per batch · "
          f"{os.cpu_count()} CPU cores · load average {os.getloadavg()[0]:.1f}")
    print(f"{'N':>4} {'wall s':>8} {'s/item':>8} {'prompt tok':>11} {'new tok':>8}")
    rows = []
    for n in args.ns:
        chosen = items[:n]
        started = time.perf_counter()
        judged: list[Judgement] = []
        for start in range(0, n, args.batch_items):
            for result in judge.judge_many(chosen[start : start + args.batch_items], params):
                assert isinstance(result, Judgement), result
                judged.append(result)
        seconds = time.perf_counter() - started
        prompt = sum(s.prompt_tokens or 0 for j in judged for s in j.samples)
        new = sum(s.completion_tokens or 0 for j in judged for s in j.samples)
        rows.append((n, seconds, prompt, new))
        print(f"{n:>4} {seconds:>8.1f} {seconds / n:>8.1f} {prompt:>11} {new:>8}", flush=True)
    n0, s0, p0, g0 = rows[0]
    for n, seconds, prompt, new in rows[1:]:
        print(f"N={n} vs N={n0}: time x{seconds / s0:.2f}, items x{n / n0:.2f}, "
              f"prompt tokens x{prompt / p0:.2f}, new tokens x{new / g0:.2f}")


if __name__ == "__main__":
    main()

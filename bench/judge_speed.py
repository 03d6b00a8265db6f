"""How fast k samples of one judgement are drawn: naive transformers, ours, llama.cpp.

    .venv/bin/python bench/judge_speed.py                  # k = 1, 4, 8, 16; 256 new tokens
    .venv/bin/python bench/judge_speed.py --max-new-tokens 32 --ks 1 8   # a quick run
    .venv/bin/python bench/judge_speed.py --ks 8 --repeats 3   # medians on a noisy machine

The input is the JudgeBench pair whose judge prompt (grm-pointwise, the
embedded model's chat format) is nearest `--target-tokens` (1,500) tokens.
For each k the k prompts are those a judgement builds: the responses in the
seeded shuffled orders, the reply prefilled with 'Specific Criteria:'. Every
method samples (temperature 0.5) exactly `--max-new-tokens` tokens per
sample, the stop token ignored, so that all do the same work:

- naive: one `model.generate` over the k left-padded prompts (what the
  transformers backend did before; the prefill cost of
  `generate(num_return_sequences=k)`: every copy is prefilled);
- ours: `core.backends.shared_prefix.sample_shared` on the model as
  `TransformersBackend` loads it, the code path of its `generate` (shared
  prefixes prefilled once, all samples decoded together, each distinct
  prompt's cache read once per step, fused decode weights prepacked for
  oneDNN: `decode_kernel` 'packed', the default);
- ours-int8: the same with `decode_kernel` 'int8' (int8 weights, dynamically
  quantised activations: faster, not exact);
- llama.cpp: `llama_cpp.Llama` on the same GGUF file, the same token ids, the
  k samples one after another (it reuses the cached prefix it shares with the
  previous sample), skipped with a message where llama-cpp-python is missing.

Each measurement runs in a fresh subprocess, so that peak RSS (whole process,
the weights included) is that method's; model loading is not timed. Wall
time is what counts; the process's CPU time (user + system, all threads) is
printed beside it because on a shared machine wall time also measures the
neighbours. tok/s counts generated tokens (k x new tokens) per wall second.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JUDGEBENCH = Path("/work/shared/data/preferences/judgebench")
METHODS = ("naive", "ours", "ours-int8", "llama.cpp")
TEMPERATURE = 0.5
SEED = 0


def load_backend(dtype: str):
    from core.backends import load_backend as load
    from core.config import Settings

    return load(Settings(dtype=dtype))


def judge_rows(backend, item: dict, k: int) -> list[list[int]]:
    """Token ids of the k prompts a judgement of `item` sends to the model."""
    from core.engine import shown_orders
    from core.templates import PRINCIPLES_PREFIX, default_template
    from core.types import JudgeInput

    judge_input = JudgeInput(query=item["query"], responses=tuple(item["responses"]))
    template = default_template(2)
    return [
        backend._chat_ids(template.render(judge_input, order, None), PRINCIPLES_PREFIX)
        for order in shown_orders(2, k, SEED)
    ]


def pick_item(backend, target: int) -> dict:
    """The JudgeBench pair whose judge prompt is nearest `target` tokens."""
    best: tuple[int, dict] | None = None
    for path in sorted(JUDGEBENCH.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            item = {
                "source": f"{path.name}:{record['pair_id']}",
                "query": record["question"],
                "responses": [record["response_A"], record["response_B"]],
            }
            tokens = len(judge_rows(backend, item, 1)[0])
            if best is None or abs(tokens - target) < abs(best[0] - target):
                best = (tokens, {**item, "prompt_tokens": tokens})
    assert best is not None, f"no JudgeBench files under {JUDGEBENCH}"
    return best[1]


# -- one measurement (in its own process) -------------------------------------


def measure(method: str, item: dict, k: int, new_tokens: int, dtype: str) -> dict:
    if method == "llama.cpp":
        return _measure_llama_cpp(item, k, new_tokens)
    import torch

    backend = load_backend(dtype)
    rows = judge_rows(backend, item, k)
    kernel = "int8" if method == "ours-int8" else "packed"
    if method != "naive":  # built once per loaded model, like the weights (not timed)
        from core.backends.tree_decode import DecodeWeights, supports_tree_decode

        weights = (DecodeWeights.of(backend.model, kernel=kernel)
                   if supports_tree_decode(backend.model) else None)
    cpu, started = _cpu_seconds(), time.perf_counter()
    if method == "naive":
        generated = _naive(backend, rows, new_tokens)
    else:
        from core.backends.shared_prefix import Sampling, sample_shared

        sampling = Sampling(greedy=False, temperature=TEMPERATURE, seed=SEED)
        generated = sample_shared(
            backend.model, rows, max_new_tokens=new_tokens, stop_ids=(), sampling=sampling,
            decode_weights=weights,
        )
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    assert all(len(g) == new_tokens for g in generated), [len(g) for g in generated]
    return {"seconds": seconds, "cpu_seconds": cpu, "tokens": k * new_tokens,
            "dtype": str(backend.model.dtype).removeprefix("torch.")
            + ("" if method == "naive" else f" {kernel}"),
            "threads": torch.get_num_threads()}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _naive(backend, rows: list[list[int]], new_tokens: int) -> list[list[int]]:
    import torch

    width = max(map(len, rows))
    pad = backend.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    torch.manual_seed(SEED)
    with torch.inference_mode():
        output = backend.model.generate(
            input_ids=ids, attention_mask=mask, do_sample=True, temperature=TEMPERATURE,
            top_k=None, top_p=1.0, min_new_tokens=new_tokens, max_new_tokens=new_tokens,
            pad_token_id=pad,
        )
    return output[:, width:].tolist()


def _measure_llama_cpp(item: dict, k: int, new_tokens: int) -> dict:
    import llama_cpp

    from core.backends.embedded import embedded_gguf_path

    tokenizer_backend = load_backend("float32")  # the same token ids as the others
    rows = judge_rows(tokenizer_backend, item, k)
    del tokenizer_backend
    llm = llama_cpp.Llama(
        model_path=str(embedded_gguf_path()), n_ctx=max(map(len, rows)) + new_tokens + 16,
        n_threads=os.cpu_count(), n_batch=512, seed=SEED, verbose=False,
    )
    cpu, started = _cpu_seconds(), time.perf_counter()
    for row in sorted(rows):  # same prompts next to each other: llama.cpp reuses its cache
        tokens = llm.generate(
            row, temp=TEMPERATURE, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0
        )
        for produced, _token in enumerate(tokens, start=1):
            if produced == new_tokens:
                break
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "tokens": k * new_tokens,
            "dtype": "gguf Q4_1",
            "threads": os.cpu_count()}


def worker(args: argparse.Namespace) -> None:
    item = json.loads(Path(args.item).read_text())
    result = measure(args.worker, item, args.k, args.max_new_tokens, args.dtype)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


# -- the driver -----------------------------------------------------------------


def run_one(method: str, item_file: Path, k: int, args: argparse.Namespace) -> dict | str:
    command = [
        sys.executable, __file__, "--worker", method, "--item", str(item_file), "--k", str(k),
        "--max-new-tokens", str(args.max_new_tokens), "--dtype", args.dtype,
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"


def llama_cpp_missing() -> str | None:
    probe = subprocess.run(
        [sys.executable, "-c", "import llama_cpp"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return None
    return "llama.cpp skipped: llama-cpp-python is not installed (pip install llama-cpp-python)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--target-tokens", type=int, default=1500)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--dtype", default="auto", help="torch dtype for naive and ours")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each method and k, taking turns; ratios of the medians")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--item", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.worker:
        worker(args)
        return

    item = pick_item(load_backend("float32"), args.target_tokens)
    print(f"input: {item['source']} · judge prompt {item['prompt_tokens']} tokens · "
          f"{args.max_new_tokens} new tokens per sample · temperature {TEMPERATURE} · "
          f"{os.cpu_count()} CPU cores · load average {os.getloadavg()[0]:.1f}")
    methods = list(args.methods)
    if "llama.cpp" in methods and (why := llama_cpp_missing()):
        print(why)
        methods.remove("llama.cpp")
    runs: dict[tuple[str, int], list[dict]] = {}
    results: dict[tuple[str, int], dict | str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        item_file = Path(scratch) / "item.json"
        item_file.write_text(json.dumps(item))
        print(f"{'method':<10} {'k':>3} {'wall s':>8} {'CPU s':>8} {'tok/s':>7} "
              f"{'peak RSS MB':>12}  dtype")
        for k in args.ks:
            for repeat in range(args.repeats):  # the methods take turns: drift hits all alike
                for method in methods:
                    if isinstance(results.get((method, k)), str):
                        continue  # it failed once: it will again
                    result = run_one(method, item_file, k, args)
                    if isinstance(result, str):
                        results[method, k] = result
                        print(f"{method:<10} {k:>3}  {result}")
                        continue
                    runs.setdefault((method, k), []).append(result)
                    results[method, k] = median_run(runs[method, k])
                    print(f"{method:<10} {k:>3} {result['seconds']:>8.1f} "
                          f"{result['cpu_seconds']:>8.1f} "
                          f"{result['tokens'] / result['seconds']:>7.1f} "
                          f"{result['peak_rss_mb']:>12.0f}  {result['dtype']}"
                          + (f"  (run {repeat + 1} of {args.repeats})" if args.repeats > 1 else ""),
                          flush=True)
    if args.repeats > 1:
        print(f"medians of {args.repeats} runs (wall s, min-max):")
        for (method, k), done in runs.items():
            walls = sorted(r["seconds"] for r in done)
            print(f"{method:<10} {k:>3} {results[method, k]['seconds']:>8.1f}"  # type: ignore[index]
                  f"  {walls[0]:.1f}-{walls[-1]:.1f}")
    print_ratios(results, args.ks)


def median_run(done: list[dict]) -> dict:
    """One method's runs as one: the median wall and CPU seconds (each its own)."""
    return {**done[0], "seconds": statistics.median(r["seconds"] for r in done),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in done)}


def print_ratios(results: dict, ks: list[int]) -> None:
    """The issue's targets as ratios of this run (wall time; CPU time in brackets;
    with --repeats, of the medians)."""

    def ratio(slow: tuple[str, int], fast: tuple[str, int]) -> str | None:
        a, b = results.get(slow), results.get(fast)
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return None
        return (f"{a['seconds'] / b['seconds']:.2f} "
                f"(CPU {a['cpu_seconds'] / b['cpu_seconds']:.2f})")

    lines = []
    for ours in ("ours", "ours-int8"):
        for k in ks:
            if found := ratio(("naive", k), (ours, k)):
                lines.append(f"k={k}: naive / {ours} = {found}  (target at k=8: >= 3)")
            if found := ratio(("llama.cpp", k), (ours, k)):
                lines.append(f"k={k}: llama.cpp / {ours} = {found}  (target at k=8: >= 1.3)")
        lines += [f"{ours} k={k} / {ours} k=1 = {found}  (target at k=8: <= 2)"
                  for k in ks if k > 1 and (found := ratio((ours, k), (ours, 1)))]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

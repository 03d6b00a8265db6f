"""Import fuzzing: thousands of malformed dataset files, each imported into a store.

    .venv/bin/python bench/fuzz_import.py                      # 10,000 files, seed 0
    .venv/bin/python bench/fuzz_import.py --files 500 --seed 7

Each file is made by one of the generators in `KINDS` (random bytes, truncated
or corrupt gzip, gzip bombs, lines past the line limit, wrong shapes, wrong
field types, invalid UTF-8, NUL bytes, lone surrogates, deep nesting, huge
numbers, ragged CSV, random mutations of a valid file...) and imported with
`import_file` into one SQLite store, each into a new dataset, under low read
limits (so that a bomb of a few MiB is past them). What must hold:

- no crash: an import either returns a report or raises InputError (the
  family of errors a front shows as a message); anything else is a crash;
- no partial import: a refused file leaves no row in any table, and an
  accepted one adds exactly the items its report counts;
- bounded memory: the process's peak RSS is printed (and checked against
  `--max-rss-mb`).

It prints files, outcomes by kind, crashes, partial imports, peak RSS and
seconds, and exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, select

from core.datasets import SHAPE_NAMES, ReadLimits
from core.errors import InputError
from core.store.db import make_engine, upgrade
from core.store.importing import import_file
from core.store.schema import Annotation, Dataset, GroundTruth, ImportRun, Item

LIMITS = ReadLimits(max_bytes=256 * 1024, max_line_bytes=32 * 1024)  # low, so bombs are cheap
TABLES = (Dataset, ImportRun, Item, GroundTruth, Annotation)
WORDS = ("the", "answer", "is", "42", "Sydney", "Canberra", "naïve", "日本語", "🙂", "عربى",
         "a\tb", "line\nbreak", '"quoted"', "back\\slash", "<b>x</b>", "'; DROP TABLE item; --",
         "\u200b", "Ω", "\U0001f600\U0001f600")


@dataclass(frozen=True)
class FuzzCase:
    """One generated file: the generator's kind, its name, bytes and forced shape."""

    kind: str
    name: str
    data: bytes
    shape: str | None = None


# -- valid material, to be broken ---------------------------------------------


def text(rng: random.Random, words: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, words))) + str(rng.random())


def record(rng: random.Random, shape: str) -> dict[str, Any]:
    """A valid record of `shape` with random text."""
    q, a, b = text(rng), text(rng), text(rng)
    if shape == "responses_best":
        return {"prompt": q, "responses": [a, b, text(rng)], "best": rng.choice([0, 1, 2, None])}
    if shape == "hh_rlhf":
        return {"chosen": f"\n\nHuman: {q}\n\nAssistant: {a}",
                "rejected": f"\n\nHuman: {q}\n\nAssistant: {b}"}
    if shape == "llmbar":
        return {"input": q, "output_1": a, "output_2": b, "label": rng.choice([1, 2])}
    if shape == "judgebench":
        return {"pair_id": str(rng.random()), "question": q, "response_A": a, "response_B": b,
                "label": rng.choice(["A>B", "B>A", "A=B"])}
    if shape == "pandalm":
        return {"idx": rng.randint(0, 10**6), "instruction": q, "input": "", "response1": a,
                "response2": b, "annotator1": 1, "annotator2": 2, "annotator3": 0}
    return {"prompt": q, "chosen": a, "rejected": b}


def records(rng: random.Random, n: int | None = None) -> list[dict[str, Any]]:
    shape = rng.choice(SHAPE_NAMES)
    return [record(rng, shape) for _ in range(n or rng.randint(1, 12))]


def serialise(rng: random.Random, rows: list[Any], fmt: str | None = None) -> tuple[bytes, str]:
    """(bytes, suffix) of `rows` as JSONL, a JSON array or CSV/TSV."""
    fmt = fmt or rng.choice(["jsonl", "json", "csv", "tsv"])
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=rng.random() < 0.5) + "\n" for r in rows).encode(), ".jsonl"
    if fmt == "json":
        return json.dumps(rows, indent=rng.choice([None, 2])).encode(), ".json"
    return _table(rows, "\t" if fmt == "tsv" else ","), f".{fmt}"


def _table(rows: list[Any], sep: str) -> bytes:
    columns = list(dict.fromkeys(k for r in rows if isinstance(r, dict) for k in r))

    def cell(value: Any) -> str:
        shown = value if isinstance(value, str) else json.dumps(value)
        return '"' + shown.replace('"', '""') + '"'

    lines = [sep.join(columns)]
    for r in rows:
        values = r if isinstance(r, dict) else {}
        lines.append(sep.join(cell(values.get(c, "")) for c in columns))
    return ("\n".join(lines) + "\n").encode()


def valid_file(rng: random.Random) -> tuple[bytes, str]:
    return serialise(rng, records(rng))


# -- the generators of malformed files -----------------------------------------


def random_bytes(rng: random.Random) -> FuzzCase:
    suffix = rng.choice([".jsonl", ".json", ".csv", ".tsv", ".jsonl.gz", ".txt", ""])
    return FuzzCase("random_bytes", f"r{suffix}", rng.randbytes(rng.randint(0, 4096)))


def empty(rng: random.Random) -> FuzzCase:
    data = rng.choice([b"", b" ", b"\n\n\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n", b"[]", b"{}",
                       b"null", b"prompt,chosen,rejected\n", b"\r\n\t "])
    suffix = rng.choice([".jsonl", ".json", ".csv", ".jsonl.gz"])
    return FuzzCase("empty", f"e{suffix}", gzip.compress(data) if suffix.endswith(".gz") else data)


def truncated_gzip(rng: random.Random) -> FuzzCase:
    data, suffix = valid_file(rng)
    packed = gzip.compress(data)
    return FuzzCase("truncated_gzip", f"t{suffix}.gz", packed[: rng.randint(0, len(packed) - 1)])


def corrupt_gzip(rng: random.Random) -> FuzzCase:
    data, suffix = valid_file(rng)
    packed = bytearray(gzip.compress(data))
    choice = rng.randrange(3)
    if choice == 0:  # flipped bytes in the deflate stream or the trailer
        for _ in range(rng.randint(1, 4)):
            packed[rng.randrange(10, len(packed))] ^= 1 << rng.randrange(8)
    elif choice == 1:  # trailing garbage after the member
        packed += rng.randbytes(rng.randint(1, 64))
    else:  # a gzip header and nothing sensible after it
        packed = bytearray(b"\x1f\x8b" + rng.randbytes(rng.randint(0, 200)))
    return FuzzCase("corrupt_gzip", f"c{suffix}.gz", bytes(packed))


def gzip_bomb(rng: random.Random) -> FuzzCase:
    """A few KiB that expand to 1-4 MiB, past LIMITS.max_bytes."""
    size = rng.randint(1, 4) << 20
    unit = rng.choice([b" ", b"x", b"\n", b"[", b"{", b"0", b"a,"])
    if rng.random() < 0.4:
        one, _ = serialise(rng, records(rng, 1), "jsonl")
        unit = one
    payload = unit * (size // len(unit))
    suffix = rng.choice([".jsonl", ".json", ".csv"])
    return FuzzCase("gzip_bomb", f"b{suffix}.gz", gzip.compress(payload, compresslevel=9))


def huge_line(rng: random.Random) -> FuzzCase:
    long = "y" * rng.randint(LIMITS.max_line_bytes + 1, 3 * LIMITS.max_line_bytes)
    rows = records(rng, rng.randint(1, 4))
    key = rng.choice(list(rows[-1]))
    rows[-1][key] = long
    fmt = rng.choice(["jsonl", "json", "csv"])
    data, suffix = serialise(rng, rows, fmt)
    if rng.random() < 0.3:  # no line end at all
        data = data.rstrip(b"\n") + b"z" * LIMITS.max_line_bytes
    return FuzzCase("huge_line", f"h{suffix}", data)


def wrong_shape(rng: random.Random) -> FuzzCase:
    choice = rng.randrange(4)
    if choice == 0:  # keys of no shape
        rows: list[Any] = [{text(rng, 1): text(rng) for _ in range(rng.randint(0, 4))}
                           for _ in range(rng.randint(1, 6))]
        data, suffix = serialise(rng, rows)
        return FuzzCase("wrong_shape", f"w{suffix}", data)
    if choice == 1:  # records that are not objects
        rows = [rng.choice([1, "s", None, True, [1, 2], 2.5]) for _ in range(rng.randint(1, 6))]
        data, suffix = serialise(rng, rows, rng.choice(["jsonl", "json"]))
        return FuzzCase("wrong_shape", f"w{suffix}", data)
    data, suffix = valid_file(rng)
    shape = rng.choice([*SHAPE_NAMES, "nonsense", "", "chosen_rejected "])  # forced, often wrong
    return FuzzCase("wrong_shape", f"w{suffix}", data, shape=shape or None)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    simple: list[Any] = [None, True, rng.randint(-10**6, 10**6), rng.random() * 1e300, "",
                         text(rng)]
    if choice < 6:
        return simple[choice]
    if choice < 8:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {text(rng, 1): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def wrong_types(rng: random.Random) -> FuzzCase:
    rows = records(rng)
    for row in rows:
        for key in rng.sample(list(row), rng.randint(1, len(row))):
            row[key] = _random_value(rng)
    data, suffix = serialise(rng, rows)
    return FuzzCase("wrong_types", f"y{suffix}", data)


def _inserted(rng: random.Random, data: bytes, pieces: list[bytes], n: int) -> bytes:
    buffer = bytearray(data)
    for _ in range(n):
        at = rng.randint(0, len(buffer))
        buffer[at:at] = rng.choice(pieces)
    return bytes(buffer)


def invalid_utf8(rng: random.Random) -> FuzzCase:
    data, suffix = valid_file(rng)
    bad = [b"\xff", b"\xc3", b"\xe9", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80"]
    return FuzzCase("invalid_utf8", f"u{suffix}", _inserted(rng, data, bad, rng.randint(1, 3)))


def nul(rng: random.Random) -> FuzzCase:
    rows = records(rng)
    if rng.random() < 0.5:  # an escaped NUL inside a field: valid JSON, unstorable text
        row = rng.choice(rows)
        key = rng.choice([k for k, v in row.items() if isinstance(v, str)] or list(row))
        row[key] = f"{row[key]}\x00end"
        data, suffix = serialise(rng, rows)
    else:  # raw NUL bytes anywhere
        data, suffix = serialise(rng, rows)
        data = _inserted(rng, data, [b"\x00", b"\x00\x00\x00"], rng.randint(1, 4))
    return FuzzCase("nul", f"n{suffix}", data)


def lone_surrogate(rng: random.Random) -> FuzzCase:
    data, suffix = serialise(rng, records(rng), rng.choice(["jsonl", "json", "csv"]))
    escapes = [b"\\ud800", b"\\udfff", b"\\ud83d", b"\\udc00x"]
    if suffix == ".csv":  # a JSON list cell with an escaped surrogate
        data = b'prompt,responses,best\nq,"[""a"", ""b' + rng.choice(escapes) + b'""]",0\n'
    else:  # inside a string: after the first quote that opens a value
        at = data.find(b'": "')
        if at >= 0:
            data = data[: at + 4] + rng.choice(escapes) + data[at + 4 :]
    return FuzzCase("lone_surrogate", f"s{suffix}", data)


def deep_nesting(rng: random.Random) -> FuzzCase:
    depth = rng.choice([50, 99, 101, 500, 5000, 30000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    deep = opener * depth + b"1" + closer * depth
    good, _ = serialise(rng, records(rng, 1), "jsonl")
    choice = rng.randrange(4)
    if choice == 0:
        data, suffix = good + deep + b"\n" + good, ".jsonl"
    elif choice == 1:
        data, suffix = b"[" + good.strip() + b"," + deep + b"," + good.strip() + b"]", ".json"
    elif choice == 2:
        one = good.strip()[:-1] + b', "context": ' + deep + b"}"
        data, suffix = good + one + b"\n", ".jsonl"
    else:  # a JSON list cell in CSV
        cell = b"[" * min(depth, 10_000) + b'""a""' + b"]" * min(depth, 10_000)
        data, suffix = b'prompt,responses,best\nq,"' + cell + b'",0\n', ".csv"
    return FuzzCase("deep_nesting", f"d{suffix}", data)


def huge_numbers(rng: random.Random) -> FuzzCase:
    if rng.random() < 0.3:  # integers written as text in CSV cells
        cell = rng.choice(["9" * 5000, "²", "١٢٣", "-0", "1_000", " 7 ", "0x1", "1e3", "-" * 3])
        table = rng.choice([f'prompt,responses,best\nq,"[""a"", ""b""]",{cell}\n',
                            f"input,output_1,output_2,label\nq,a,b,{cell}\n"])
        return FuzzCase("huge_numbers", "m.csv", table.encode())
    good, suffix = serialise(rng, records(rng, 1), rng.choice(["jsonl", "json"]))
    number = rng.choice([b"9" * 5000, b"1e999", b"-1e400", b"NaN", b"-Infinity", b"1" * 4301,
                         b"0.0000000000000000000000001", b"1E+99999999999"])
    odd = b'{"prompt": "q", "responses": ["a", "b"], "best": ' + number + b"}"
    if suffix == ".json":
        data = b"[" + good.strip()[1:-1] + b"," + odd + b"]"
    else:
        data = good + odd + b"\n"
    return FuzzCase("huge_numbers", f"m{suffix}", data)


def csv_malformed(rng: random.Random) -> FuzzCase:
    data, suffix = serialise(rng, records(rng), rng.choice(["csv", "tsv"]))
    lines = data.split(b"\n")
    choice = rng.randrange(6)
    if choice == 0:  # ragged rows
        for i in rng.sample(range(1, len(lines)), min(2, len(lines) - 1)):
            if rng.random() < 0.5:
                lines[i] += b',"extra"' * rng.randint(1, 3)
            else:
                lines[i] = lines[i][: len(lines[i]) // 2]
    elif choice == 1:  # an unclosed quote
        lines.insert(rng.randint(1, len(lines)), b'"never closed,' + text(rng).encode())
    elif choice == 2:  # old Mac line ends
        return FuzzCase("csv_malformed", f"v{suffix}", data.replace(b"\n", b"\r"))
    elif choice == 3:  # a blank or duplicated header
        lines[0] = rng.choice([b"", b",,", lines[0] + b"," + lines[0]])
    elif choice == 4:  # one cell past csv's own field limit, over many short lines
        lines.insert(1, b'"' + b"z" * 1000 + b"\n" * 200 + b"z" * 140_000 + b'",a,b')
    else:  # a quoted field with line ends and NUL inside
        lines.insert(1, b'"multi\nline\x00cell",b,c')
    return FuzzCase("csv_malformed", f"v{suffix}", b"\n".join(lines))


def truncated_json(rng: random.Random) -> FuzzCase:
    data, suffix = serialise(rng, records(rng), rng.choice(["jsonl", "json"]))
    return FuzzCase("truncated_json", f"j{suffix}", data[: rng.randint(1, max(1, len(data) - 1))])


def mutated(rng: random.Random) -> FuzzCase:
    """A valid file with random byte edits: insert, delete, flip, duplicate."""
    data, suffix = valid_file(rng)
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buffer:
            break
        at = rng.randrange(len(buffer))
        edit = rng.randrange(4)
        if edit == 0:
            buffer[at:at] = rng.randbytes(rng.randint(1, 4))
        elif edit == 1:
            del buffer[at : at + rng.randint(1, 8)]
        elif edit == 2:
            buffer[at] ^= 1 << rng.randrange(8)
        else:
            buffer[at:at] = buffer[at : at + rng.randint(1, 64)]
    if rng.random() < 0.2:
        return FuzzCase("mutated", f"x{suffix}.gz", gzip.compress(bytes(buffer)))
    return FuzzCase("mutated", f"x{suffix}", bytes(buffer))


def wrong_extension(rng: random.Random) -> FuzzCase:
    data, _ = valid_file(rng)
    suffix = rng.choice([".txt", ".csv", ".json", ".jsonl", ".tsv", "", ".gz", ".JSONL"])
    return FuzzCase("wrong_extension", f"k{suffix}", data)


def duplicates(rng: random.Random) -> FuzzCase:
    """The same record many times, or responses identical to each other."""
    rows = records(rng, 1) * rng.randint(2, 50)
    if rng.random() < 0.5:
        rows = [{"prompt": "q", "chosen": "same", "rejected": rng.choice(["same", " same "])}]
    data, suffix = serialise(rng, rows)
    return FuzzCase("duplicates", f"p{suffix}", data)


KINDS: dict[str, Callable[[random.Random], FuzzCase]] = {
    f.__name__: f
    for f in (random_bytes, empty, truncated_gzip, corrupt_gzip, gzip_bomb, huge_line,
              wrong_shape, wrong_types, invalid_utf8, nul, lone_surrogate, deep_nesting,
              huge_numbers, csv_malformed, truncated_json, mutated, wrong_extension, duplicates)
}


def cases(n: int, seed: int) -> list[Callable[[], FuzzCase]]:
    """`n` file makers, the kinds in turn, each with its own seeded generator
    (files are made one at a time, when called)."""
    kinds = list(KINDS.values())
    return [partial(_made, kinds[i % len(kinds)], f"{seed}:{i}") for i in range(n)]


def _made(kind: Callable[[random.Random], FuzzCase], seed: str) -> FuzzCase:
    return kind(random.Random(seed))


# -- running them ----------------------------------------------------------------


@dataclass
class FuzzResult:
    files: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, outcome)
    crashes: list[str] = field(default_factory=list)
    partials: list[str] = field(default_factory=list)
    start_rss_mib: float = 0.0  # the peak before the first file: Python, SQLAlchemy, the store
    peak_rss_mib: float = 0.0
    seconds: float = 0.0


def row_counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as connection:
        return tuple(connection.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES)


def run_one(engine: Engine, folder: Path, index: int, case: FuzzCase, result: FuzzResult) -> None:
    path = folder / case.name
    path.write_bytes(case.data)
    before = row_counts(engine)
    where = f"file {index} ({case.kind}, {case.name}, shape={case.shape!r})"
    try:
        report = import_file(engine, path, f"fuzz-{index}", shape=case.shape, limits=LIMITS)
    except InputError:
        outcome, added = "refused", 0
    except Exception:  # noqa: BLE001 - any other error is what the fuzzer looks for
        result.crashes.append(f"{where}: {traceback.format_exc(limit=-3)}")
        outcome, added = "crash", 0
    else:
        outcome, added = "imported", report.imported
    finally:
        path.unlink()
    after = row_counts(engine)
    new_dataset = 0 if outcome != "imported" else 1
    if outcome != "imported" and after != before:
        result.partials.append(f"{where}: {outcome}, but rows changed {before} -> {after}")
    elif outcome == "imported" and (after[0] - before[0], after[2] - before[2]) != (new_dataset, added):
        result.partials.append(f"{where}: reported {added} items, rows changed {before} -> {after}")
    result.outcomes[case.kind, outcome] += 1
    result.files += 1


def run_fuzz(n_files: int, seed: int, folder: Path) -> FuzzResult:
    """Import `n_files` generated files into a fresh SQLite store under `folder`."""
    engine = make_engine(f"sqlite:///{folder / 'fuzz.db'}")
    upgrade(engine)
    result = FuzzResult(start_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    started = time.perf_counter()
    try:
        for index, make in enumerate(cases(n_files, seed)):
            run_one(engine, folder, index, make(), result)
    finally:
        engine.dispose()
    result.seconds = time.perf_counter() - started
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def print_result(result: FuzzResult, seed: int) -> None:
    print(f"files: {result.files:,} (seed {seed}; limits {LIMITS.max_bytes:,} bytes, "
          f"{LIMITS.max_line_bytes:,} bytes a line)")
    print(f"{'kind':18} {'imported':>9} {'refused':>8} {'crash':>6}")
    for kind in KINDS:
        counts = [result.outcomes[kind, o] for o in ("imported", "refused", "crash")]
        print(f"{kind:18} {counts[0]:>9} {counts[1]:>8} {counts[2]:>6}")
    total: Counter[str] = Counter()
    for (_, outcome), n in result.outcomes.items():
        total[outcome] += n
    print(f"{'all':18} {total['imported']:>9} {total['refused']:>8} {total['crash']:>6}")
    print(f"crashes: {len(result.crashes)}")
    for crash in result.crashes[:5]:
        print("  " + crash.replace("\n", "\n  "))
    print(f"partial imports: {len(result.partials)}")
    for leftover in result.partials[:5]:
        print("  " + leftover)
    print(f"peak RSS: {result.peak_rss_mib:.0f} MiB ({result.start_rss_mib:.0f} MiB before "
          "the first file)")
    print(f"seconds: {result.seconds:.1f} ({result.files / max(result.seconds, 1e-9):.0f} files/s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="files to generate and import")
    parser.add_argument("--seed", type=int, default=0, help="the same seed makes the same files")
    parser.add_argument("--max-rss-mb", type=float, default=1024.0,
                        help="fail when the process's peak RSS is above this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-import-") as folder:
        result = run_fuzz(args.files, args.seed, Path(folder))
    print_result(result, args.seed)
    failed = result.crashes or result.partials or result.peak_rss_mib > args.max_rss_mb
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

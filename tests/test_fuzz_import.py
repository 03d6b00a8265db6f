"""The import fuzzer of issue 16 (`bench/fuzz_import.py`) on a small run, so that
the suite guards what its 10,000-file run showed: every malformed file is
either imported or refused with InputError (no crash), and a refused file
leaves no row behind (no partial import)."""

from __future__ import annotations

import gzip
import random

from bench.fuzz_import import KINDS, LIMITS, cases, run_fuzz


def test_two_hundred_malformed_files_import_or_are_refused_cleanly(tmp_path):
    result = run_fuzz(216, seed=16, folder=tmp_path)  # every kind 12 times
    assert result.crashes == []
    assert result.partials == []
    assert result.files == 216
    kinds = {kind for kind, _ in result.outcomes}
    assert kinds == set(KINDS)
    outcomes = {outcome for _, outcome in result.outcomes}
    assert outcomes == {"imported", "refused"}  # both paths are exercised
    left = [p.name for p in tmp_path.iterdir() if not p.name.startswith("fuzz.db")]
    assert left == []  # every generated file was removed after its import


def test_the_same_seed_makes_the_same_files():
    first = [make() for make in cases(36, seed=5)]
    again = [make() for make in cases(36, seed=5)]
    other = [make() for make in cases(36, seed=6)]
    assert first == again and first != other


def test_the_bombs_are_past_the_fuzzing_limit_and_small_on_disk():
    bombs = [KINDS["gzip_bomb"](random.Random(i)) for i in range(5)]
    for bomb in bombs:
        assert len(bomb.data) < LIMITS.max_bytes < len(gzip.decompress(bomb.data))

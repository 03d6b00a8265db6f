"""Benchmark scripts: run them as modules, e.g. `python -m bench.load`."""

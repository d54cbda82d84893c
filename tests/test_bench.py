"""Smoke test of the benchmark suite (bench/): it imports, and its quick mode runs.

The benchmarks themselves are not part of the test run (``python -m bench``); nothing here
asserts on a timing.
"""

import importlib

import pytest

from bench.__main__ import BENCH_DIR, PARTS, main

BENCH_MODULES = ["bench._common", "bench.__main__"] + [
    module.__name__ for module, _ in PARTS.values()
]


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_bench_module_imports_and_parts_expose_run_and_report(name):
    module = importlib.import_module(name)
    if module in [m for m, _ in PARTS.values()]:
        assert callable(module.run) and callable(module.report)


def test_quick_training_part_prints_its_table_and_writes_nothing(capsys):
    # The cheapest part: one N = 20 problem, a few ms of L-BFGS and 1000 Adam steps.
    published = {p: p.read_bytes() for p in BENCH_DIR.iterdir() if p.is_file()}
    assert main(["--quick", "--only", "training"]) == 0
    out = capsys.readouterr().out
    assert "capopt.solve against gradient training" in out
    assert "L-BFGS exact loss" in out and "Adam minibatch" in out
    # A partial run must leave the published results of the last full run untouched.
    assert {p: p.read_bytes() for p in BENCH_DIR.iterdir() if p.is_file()} == published

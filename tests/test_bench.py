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


def test_the_numpy_batch_baseline_is_an_exact_water_filling():
    # The sweep's baseline must solve the same problems right for its rate to mean anything:
    # against the mpmath closed form, including a budget met by whole features up to
    # rounding (the first two full before the third starts, the total's plateau at d = 2:
    # the segment holds no affine feature, which once gave 0/0).
    import numpy as np

    from bench.bench_sweep import numpy_batch_waterfill, problems
    from references import closed_form

    v, _, K, d = problems(4, seed=1)
    rows = [*v, np.array([0.66, 0.31, 0.09, 0.07])]
    for row, k, budget in zip(rows, [*K, 3.18], [*d, 2.0]):
        C = numpy_batch_waterfill(row[None, :], np.array([k]), np.array([budget]))[0]
        np.testing.assert_allclose(C, closed_form(row, k, budget)[0], rtol=0, atol=1e-12)

"""Tables of the gradient-trained cross-checks (issue 5): does training land where the solver says?

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 python bench/crosscheck_tables.py [--steps 10000] [--checkpoint-dir DIR]

1. Quadratic model, exact-loss multi-start L-BFGS against ``capopt.solve`` for the standard
   problems (convex, concave, kurtosis straddling 3, linear autoencoder), plus the
   sampled-minibatch Adam route on three of them: max |dC| and the loss gap.
2. Toy Models of Superposition ReLU autoencoder in the published settings: 5 -> 2 with
   importance 0.9^i and 200 -> 20 with uniform importance, 20 densities log-spaced from 1 to
   1/20, Adam lr 1e-3, batch 1024, batched over the densities: the feature dimensionalities
   found and how often they sit within 0.02 of 1, 3/4, 2/3, 1/2, 2/5, 3/8, 0.
3. Polysemantic fraction and block sizes against sparsity for the other architectures.

One BLAS thread is faster on a shared 2-core machine (the step's products are small).
The TMS runs checkpoint every 500 steps (under the system temporary directory by
default) and resume if interrupted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from capopt.training import (
    PUBLISHED_DIMENSIONALITIES,
    STANDARD_PROBLEMS,
    crosscheck,
    crosscheck_table,
    sparsity_sweep,
)

DENSITIES = np.geomspace(1.0, 1.0 / 20.0, 20)
PUBLISHED_NAMES = ("1", "3/4", "2/3", "1/2", "2/5", "3/8", "0")


def quadratic_tables() -> None:
    print("## Quadratic model and linear autoencoder: solver vs exact-loss L-BFGS (8 starts)\n")
    t0 = time.perf_counter()
    reports = [crosscheck(p.curves, p.budget, starts=8, seed=0) for p in STANDARD_PROBLEMS]
    print(crosscheck_table(reports, [p.label for p in STANDARD_PROBLEMS]))
    print(f"\n({time.perf_counter() - t0:.1f} s for {len(reports)} problems)\n")

    print("## Sampled-minibatch Adam (fresh inputs every step, batch 1024, 8000 steps, "
          "lr 1e-2 cosine, 4 seeds, best exact loss kept)\n")
    chosen = [STANDARD_PROBLEMS[i] for i in (0, 1, 3)]
    t0 = time.perf_counter()
    reports = [crosscheck(p.curves, p.budget, route="sampled", seed=0, n_seeds=4, steps=8000)
               for p in chosen]
    print(crosscheck_table(reports, [p.label for p in chosen]))
    print(f"\n({time.perf_counter() - t0:.1f} s)\n")


def published_table(sweep, title: str) -> None:
    counts = sweep.at_published()
    total = sweep.capacities.size
    print(f"### {title}: {total} feature dimensionalities "
          f"({sweep.densities.size} densities x {sweep.capacities.shape[1]} seeds x "
          f"{sweep.importance.size} features), {sweep.fit.steps} steps, "
          f"{sweep.fit.seconds:.0f} s of training\n")
    print("| value | " + " | ".join(PUBLISHED_NAMES) + " | elsewhere |")
    print("|---" * (len(PUBLISHED_NAMES) + 2) + "|")
    row = [counts[float(v)] for v in PUBLISHED_DIMENSIONALITIES] + [counts["other"]]
    print("| count | " + " | ".join(str(c) for c in row) + " |")
    print("| share | " + " | ".join(f"{c / total:.1%}" for c in row) + " |\n")


def per_density(sweep) -> None:
    """Distinct dimensionalities per density (rounded), with multiplicities."""
    print(f"{'density':>8}  {'d/|W|^2':>7}  dimensionalities (value x count), seed 0")
    for s, p in enumerate(sweep.densities):
        C = np.round(sweep.capacities[s, 0], 2)
        values, counts = np.unique(C, return_counts=True)
        terms = ", ".join(f"{v:.2f}x{c}" for v, c in zip(values[::-1], counts[::-1]))
        print(f"{p:>8.4f}  {sweep.dimensions_per_feature[s, 0]:>7.3f}  {terms}")
    print()


def tms_tables(steps: int, checkpoint_dir: Path) -> None:
    print("## Toy Models of Superposition ReLU autoencoder (published settings)\n")
    small = sparsity_sweep("tms-relu", 0.9 ** np.arange(5), 2, DENSITIES, n_seeds=5,
                           steps=steps, seed=0, checkpoint=checkpoint_dir / "tms_5_2.npz",
                           checkpoint_every=500)
    published_table(small, "5 -> 2, importance 0.9^i")
    print(small.table(), "\n")
    large = sparsity_sweep("tms-relu", np.ones(200), 20, DENSITIES, steps=steps, seed=0,
                           dtype=np.float32, checkpoint=checkpoint_dir / "tms_200_20.npz",
                           checkpoint_every=500, progress=True, desc="tms 200->20")
    published_table(large, "200 -> 20, uniform importance (float32)")
    per_density(large)


def architecture_tables(steps: int) -> None:
    print("## Polysemantic fraction and blocks against density, other architectures "
          f"(N = 20, d = 5, importance 0.9^i, {steps} steps, lr 1e-3, 2 seeds)\n")
    densities = np.geomspace(1.0, 1.0 / 20.0, 6)
    header = "| architecture | " + " | ".join(f"p={p:.3f}" for p in densities) + " |"
    print(header)
    print("|---" * (densities.size + 1) + "|")
    blocks_rows = []
    for name in ("tms-relu", "tms-gelu", "square", "relu", "gelu", "abs"):
        sweep = sparsity_sweep(name, 0.9 ** np.arange(20), 5, densities, n_seeds=2,
                               steps=steps, seed=1)
        poly = sweep.polysemantic_fraction.mean(axis=1)
        print(f"| {name} | " + " | ".join(f"{f:.2f}" for f in poly) + " |")
        sizes = [sorted({n for n, _ in sweep.block_sizes[s][0]} - {1}) for s in range(densities.size)]
        blocks_rows.append(f"| {name} | " + " | ".join(str(x or "-") for x in sizes) + " |")
    print("\nDistinct numbers of features per block (seed 0; 1-feature blocks omitted):\n")
    print(header)
    print("|---" * (densities.size + 1) + "|")
    print("\n".join(blocks_rows), "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="Adam steps of the TMS runs")
    parser.add_argument("--arch-steps", type=int, default=4000,
                        help="Adam steps of the other architectures' sweeps")
    parser.add_argument("--checkpoint-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "capopt-bench")
    parser.add_argument("--skip", nargs="*", default=(), choices=("quadratic", "tms", "arch"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    if "quadratic" not in args.skip:
        quadratic_tables()
    if "tms" not in args.skip:
        tms_tables(args.steps, args.checkpoint_dir)
    if "arch" not in args.skip:
        architecture_tables(args.arch_steps)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

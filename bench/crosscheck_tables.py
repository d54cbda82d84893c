"""Part ``crosscheck`` (opt-in): does gradient training land where the solver says? (issue 5)

Run with ``python -m bench --only crosscheck`` (not in the default suite: it measures
training's accuracy rather than its cost, and the TMS runs take tens of minutes; ``--quick``
runs the L-BFGS table only). Best with ``OPENBLAS_NUM_THREADS=1``: the training step's
products are small and one BLAS thread is faster on a shared 2-core machine.

1. Quadratic model, exact-loss multi-start L-BFGS against ``capopt.solve`` for the standard
   problems (convex, concave, kurtosis straddling 3, linear autoencoder), plus the
   sampled-minibatch Adam route on three of them: max |dC| and the loss gap.
2. Toy Models of Superposition ReLU autoencoder in the published settings: 5 -> 2 with
   importance 0.9^i and 200 -> 20 with uniform importance, 20 densities log-spaced from 1 to
   1/20, Adam lr 1e-3, batch 1024, batched over the densities: the feature dimensionalities
   found and how often they sit within 0.02 of 1, 3/4, 2/3, 1/2, 2/5, 3/8, 0.
3. Polysemantic fraction and block sizes against sparsity for the other architectures.

The TMS runs checkpoint every 500 steps under :data:`CHECKPOINT_DIR` and resume if
interrupted.
"""

from __future__ import annotations

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
#: Adam steps of the TMS runs and of the other architectures' sweeps.
TMS_STEPS = 10_000
ARCH_STEPS = 4000
CHECKPOINT_DIR = Path(tempfile.gettempdir()) / "capopt-bench"


def quadratic_tables(sampled: bool = True) -> str:
    out = ["## Quadratic model and linear autoencoder: solver vs exact-loss L-BFGS (8 starts)\n"]
    t0 = time.perf_counter()
    reports = [crosscheck(p.curves, p.budget, starts=8, seed=0) for p in STANDARD_PROBLEMS]
    out.append(crosscheck_table(reports, [p.label for p in STANDARD_PROBLEMS]))
    out.append(f"\n({time.perf_counter() - t0:.1f} s for {len(reports)} problems)\n")
    if not sampled:
        return "\n".join(out)

    out.append("## Sampled-minibatch Adam (fresh inputs every step, batch 1024, 8000 steps, "
               "lr 1e-2 cosine, 4 seeds, best exact loss kept)\n")
    chosen = [STANDARD_PROBLEMS[i] for i in (0, 1, 3)]
    t0 = time.perf_counter()
    reports = [crosscheck(p.curves, p.budget, route="sampled", seed=0, n_seeds=4, steps=8000)
               for p in chosen]
    out.append(crosscheck_table(reports, [p.label for p in chosen]))
    out.append(f"\n({time.perf_counter() - t0:.1f} s)\n")
    return "\n".join(out)


def published_table(sweep, title: str) -> str:
    counts = sweep.at_published()
    total = sweep.capacities.size
    row = [counts[float(v)] for v in PUBLISHED_DIMENSIONALITIES] + [counts["other"]]
    return "\n".join([
        f"### {title}: {total} feature dimensionalities "
        f"({sweep.densities.size} densities x {sweep.capacities.shape[1]} seeds x "
        f"{sweep.importance.size} features), {sweep.fit.steps} steps, "
        f"{sweep.fit.seconds:.0f} s of training\n",
        "| value | " + " | ".join(PUBLISHED_NAMES) + " | elsewhere |",
        "|---" * (len(PUBLISHED_NAMES) + 2) + "|",
        "| count | " + " | ".join(str(c) for c in row) + " |",
        "| share | " + " | ".join(f"{c / total:.1%}" for c in row) + " |\n",
    ])


def per_density(sweep) -> str:
    """Distinct dimensionalities per density (rounded), with multiplicities."""
    lines = [f"{'density':>8}  {'d/|W|^2':>7}  dimensionalities (value x count), seed 0"]
    for s, p in enumerate(sweep.densities):
        C = np.round(sweep.capacities[s, 0], 2)
        values, counts = np.unique(C, return_counts=True)
        terms = ", ".join(f"{v:.2f}x{c}" for v, c in zip(values[::-1], counts[::-1]))
        lines.append(f"{p:>8.4f}  {sweep.dimensions_per_feature[s, 0]:>7.3f}  {terms}")
    return "\n".join(lines) + "\n"


def tms_tables(steps: int, checkpoint_dir: Path) -> str:
    out = ["## Toy Models of Superposition ReLU autoencoder (published settings)\n"]
    small = sparsity_sweep("tms-relu", 0.9 ** np.arange(5), 2, DENSITIES, n_seeds=5,
                           steps=steps, seed=0, checkpoint=checkpoint_dir / "tms_5_2.npz",
                           checkpoint_every=500)
    out += [published_table(small, "5 -> 2, importance 0.9^i"), small.table() + "\n"]
    large = sparsity_sweep("tms-relu", np.ones(200), 20, DENSITIES, steps=steps, seed=0,
                           dtype=np.float32, checkpoint=checkpoint_dir / "tms_200_20.npz",
                           checkpoint_every=500, progress=True, desc="tms 200->20")
    out += [published_table(large, "200 -> 20, uniform importance (float32)"),
            per_density(large)]
    return "\n".join(out)


def architecture_tables(steps: int) -> str:
    out = ["## Polysemantic fraction and blocks against density, other architectures "
           f"(N = 20, d = 5, importance 0.9^i, {steps} steps, lr 1e-3, 2 seeds)\n"]
    densities = np.geomspace(1.0, 1.0 / 20.0, 6)
    header = "| architecture | " + " | ".join(f"p={p:.3f}" for p in densities) + " |"
    rule = "|---" * (densities.size + 1) + "|"
    out += [header, rule]
    blocks_rows = []
    for name in ("tms-relu", "tms-gelu", "square", "relu", "gelu", "abs"):
        sweep = sparsity_sweep(name, 0.9 ** np.arange(20), 5, densities, n_seeds=2,
                               steps=steps, seed=1)
        poly = sweep.polysemantic_fraction.mean(axis=1)
        out.append(f"| {name} | " + " | ".join(f"{f:.2f}" for f in poly) + " |")
        sizes = [sorted({n for n, _ in sweep.block_sizes[s][0]} - {1})
                 for s in range(densities.size)]
        blocks_rows.append(f"| {name} | " + " | ".join(str(x or "-") for x in sizes) + " |")
    out += ["\nDistinct numbers of features per block (seed 0; 1-feature blocks omitted):\n",
            header, rule] + blocks_rows
    return "\n".join(out) + "\n"


def run(quick: bool = False) -> dict:
    sections = [quadratic_tables(sampled=not quick)]
    if not quick:
        sections += [tms_tables(TMS_STEPS, CHECKPOINT_DIR), architecture_tables(ARCH_STEPS)]
    return {"text": "\n".join(sections)}


def report(results: dict) -> str:
    return results["text"]

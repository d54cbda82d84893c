"""Part ``tms``: the training-free TMS prediction against trained autoencoders.

Run alone (``python -m bench --only tms``; tens of minutes at full strength, not in the
default suite) or, for one setting, ``python -m bench.tms_validation SETTING [SEEDS] [STEPS]``.

Settings (issue 22's validation), each trained with capopt's TMS trainer in the published
recipe (Adam lr 1e-3, batch 1024, the notebook's initialisation, 10 000 steps; fewer with
``--quick``), every density and seed an instance of one batched run:

* ``labels``: N = 20, d = 5, importance 0.9^i at densities 1 ... 0.05 -- each feature's
  regime (monosemantic, polysemantic, ignored at the trained tolerance 0.02) predicted
  against trained, by feature;
* ``200-20``: N = 200, d = 20, equal importance, densities 20^-linspace(0, 1, 20) -- the
  dimensions per feature d/|W|_F^2 and the represented count;
* ``400-30``: N = 400, d = 30, equal importance, densities 0.30 ... 0.19 and 0.10, 0.05 --
  the count of features at each sticky value (1, 3/4, 2/3, 1/2, 2/5, 3/8, other).

For every instance the realised prediction and the trained model are also scored on the
same random draws (common random numbers, 2^16 samples), so that "the prediction's loss is
at or below training's" needs no reading of geometry. Times: the prediction per density and
the training per step, in the same run.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from capopt.regimes import classify
from capopt.tms import predict_tms
from capopt.training import train_autoencoder
from capopt.training.results import TRAINED_REGIME_ATOL, TRAINED_ZERO_TOL

from ._common import markdown_table, progress

SETTINGS = {
    "labels": dict(n=20, d=5, decay=0.9, densities=(1.0, 0.7, 0.5, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05)),
    "200-20": dict(n=200, d=20, decay=1.0, densities=tuple(float(p) for p in 20.0 ** -np.linspace(0, 1, 20))),
    "400-30": dict(n=400, d=30, decay=1.0, densities=(0.30, 0.27, 0.25, 0.23, 0.215, 0.21, 0.20, 0.19, 0.10, 0.05)),
}
#: Draws of the common-random-number comparison of losses.
SAMPLES = 1 << 16
#: Capacities within this of a sticky value count as it (the trained tolerance).
STICKY = {"1": 1.0, "3/4": 0.75, "2/3": 2 / 3, "1/2": 0.5, "2/5": 0.4, "3/8": 0.375}


def _loss(W: np.ndarray, b: np.ndarray, importance: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the TMS loss (mean over features) on draws ``x``."""
    out = np.maximum(x @ W.T @ W + b, 0.0)
    per = ((x - out) ** 2 * importance).mean(axis=1)
    return float(per.mean()), float(per.std() / np.sqrt(per.size))


def _counts(C: np.ndarray, norms: np.ndarray) -> dict[str, int]:
    represented = C[norms > TRAINED_ZERO_TOL * norms.max()] if norms.max() > 0 else C[:0]
    out = {k: 0 for k in STICKY} | {"other": 0}
    for c in represented:
        name = next((k for k, v in STICKY.items() if abs(c - v) <= TRAINED_REGIME_ATOL), "other")
        out[name] += 1
    return out


def run_setting(name: str, seeds: int = 3, steps: int = 10_000) -> dict:
    s = SETTINGS[name]
    n, d, p = s["n"], s["d"], np.asarray(s["densities"])
    importance = s["decay"] ** np.arange(n, dtype=np.float64)
    started = time.perf_counter()
    predictions = predict_tms(importance, d, p, progress=False)
    predict_seconds = time.perf_counter() - started
    progress(f"  tms {name}: predicted {p.size} densities in {predict_seconds:.1f} s; training "
             f"{p.size * seeds} instances, {steps} steps")
    densities = np.repeat(p, seeds)
    started = time.perf_counter()
    fit = train_autoencoder(np.tile(importance, (densities.size, 1)), d, density=densities,
                            steps=steps, seed=list(range(densities.size)), progress=True, desc=name)
    train_seconds = time.perf_counter() - started
    rng = np.random.default_rng(12345)
    rows = []
    for r, q in enumerate(densities):
        pred = predictions[r // seeds]
        W, b = fit.weights[r], fit.bias[r]
        C = fit.capacities[r]
        norms = np.linalg.norm(W, axis=0)
        x = (rng.random((SAMPLES, n)) < q) * rng.random((SAMPLES, n))
        trained_loss, trained_se = _loss(W, b, importance, x)
        Wp, bp = pred.realize()
        predicted_loss, predicted_se = _loss(Wp, bp, importance, x)
        represented = int(np.count_nonzero(norms > TRAINED_ZERO_TOL * norms.max()))
        labels_trained = classify(np.where(norms > TRAINED_ZERO_TOL * norms.max(), C, 0.0), atol=TRAINED_REGIME_ATOL)
        labels_predicted = classify(pred.capacities, atol=TRAINED_REGIME_ATOL)
        rows.append(dict(
            density=float(q), seed=r % seeds,
            represented=(pred.represented, represented),
            dims_per_feature=(pred.dims_per_feature, float(d / np.sum(W**2))),
            counts=(pred.counts, _counts(C, norms)),
            label_agreement=float(np.mean([a is t for a, t in zip(labels_predicted, labels_trained)])),
            loss=(predicted_loss, trained_loss, float(np.hypot(predicted_se, trained_se))),
            near_ties=[t[0] for t in pred.near_ties],
        ))
    return dict(name=name, seeds=seeds, steps=steps, predict_seconds=predict_seconds,
                train_seconds=train_seconds, rows=rows)


def report_setting(result: dict) -> str:
    table = []
    for row in result["rows"]:
        pc, tc = row["counts"]
        sticky = " ".join(f"{k}:{pc[k]}/{tc[k]}" for k in pc if pc[k] or tc[k])
        lp, lt, se = row["loss"]
        table.append([f"{row['density']:.4g}", str(row["seed"]),
                      f"{row['represented'][0]}/{row['represented'][1]}",
                      f"{row['dims_per_feature'][0]:.3f}/{row['dims_per_feature'][1]:.3f}",
                      sticky, f"{row['label_agreement']:.2f}", f"{lp:.5g}", f"{lt:.5g}",
                      f"{(lp - lt) / se:+.1f}", ",".join(row["near_ties"])])
    return (f"{result['name']}: {result['seeds']} seeds x {len(result['rows']) // result['seeds']} "
            f"densities, {result['steps']} steps; predicted in {result['predict_seconds']:.1f} s, "
            f"trained in {result['train_seconds']:.0f} s\n\n"
            + markdown_table(["density", "seed", "represented pred/trained", "d/|W|^2 pred/trained",
                              "counts pred/trained", "labels agree", "loss pred", "loss trained",
                              "(pred-trained)/se", "near ties"], table, "llllllrrrl"))


def run(quick: bool = False) -> dict:
    steps = 2000 if quick else 10_000
    return {name: run_setting(name, seeds=1 if quick else 3, steps=steps) for name in SETTINGS}


def report(results: dict) -> str:
    return "\n\n".join(report_setting(r) for r in results.values())


if __name__ == "__main__":
    name = sys.argv[1]
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    result = run_setting(name, seeds, steps)
    print(report_setting(result))
    with open(f"tms-validation-{name}.json", "w") as fh:
        json.dump(result, fh, default=str)

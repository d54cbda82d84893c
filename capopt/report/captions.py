r"""What the report says under each figure: its caption and its table, as plain text.

Each caption function takes the settings and what the figure's computation produced
(:class:`~capopt.report.computations.Computed`) and returns plain text (no markup); every
number in it is formatted by :func:`fmt`, as are the cells of the tables, so a reader (and
the test suite) can find each number of ``numbers.json`` in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..training.results import TRAINED_BLOCK_TOL, TRAINED_REGIME_ATOL, TRAINED_ZERO_TOL

__all__ = ["fmt", "Table", "table", "HEADERS"]


def fmt(value) -> str:
    """How every number is printed in captions and tables: integers whole, floats to 3 digits.

    Examples
    --------
    >>> fmt(5 / 6), fmt(3), fmt(1.2e-9), fmt("17/5")
    ('0.833', '3', '1.2e-09', '17/5')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return format(float(value), ".3g")


@dataclass(frozen=True)
class Table:
    """A small table printed under a figure: a header and rows of formatted cells."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def table(header, rows) -> Table:
    """A :class:`Table` of ``rows`` of values (numbers or text), each cell through :func:`fmt`."""
    return Table(tuple(header), tuple(tuple(fmt(cell) for cell in row) for row in rows))


def _sparsity_header(c) -> tuple[str, ...]:
    sparsest = fmt(c.data["densities"][-1])
    return ("architecture", "poly at p = 1", "seed range", f"poly at p = {sparsest}", "seed range",
            "poly at p = 1 by C alone", "max change over thresholds", "Adam steps", "converged")


#: The header of each figure's table (slug -> header, or a function of the computation).
HEADERS = {
    "allocation": ("K", "returns", "method", "monosemantic", "polysemantic", "ignored",
                   "in importance order", "lambda", "loss"),
    "marginal-benefit": ("case", "a/b", "K", "returns", "C_a", "C_b", "lambda", "loss", "regime"),
    "sparsity-sweep": _sparsity_header,
    "gram-blocks": ("embedding", "how", "blocks (features/dims)"),
    "block-sizes": ("architecture", "density", "blocks by size (features:count, all seeds)",
                    "largest block", "seed range", "residual (max)"),
    "tms-published": ("experiment", "density", "d/|W|_F^2", "represented features at each value",
                      "loss per feature"),
    "crosscheck": ("problem", "N", "d", "method", "max |dC|", "loss gap", "blocks predicted",
                   "blocks trained"),
    "budget": ("family", "method", "max |sum C - min(d, N)|", "max |lambda - FD| (rel.)",
               "lambda at d = 2.5"),
}


def allocation(s, c) -> str:
    Ks = c.data["kurtosis"]
    return (
        f"Quadratic model with N = {s.allocation_features} features of importance v_i = 0.9^i and "
        f"d = {s.allocation_budget} dimensions, solved by capopt.solve at kurtosis K = "
        f"{', '.join(fmt(K) for K in Ks)}. Each point is one feature, coloured by regime. At K <= 3 "
        "(increasing or constant returns) the most important features take whole dimensions and the "
        "rest are ignored; at K > 3 a band of features of middling importance is polysemantic, and "
        "the band widens as K grows. The black line is the closed form C(v) = "
        "clip(((K-1) v s - 2)/(K-3), 0, 1) with s = sqrt(2/lambda) from the solver's multiplier; the "
        f"solver's capacities lie on it to max |C - closed form| = {fmt(c.numbers['max |C - closed form|'])}."
    )


def marginal_benefit(s, c) -> str:
    numbers = c.numbers
    return (
        "Two features of importances a >= b (b = 1) sharing one neuron (d = 1) of the quadratic model. "
        "Blue: marginal benefit -l_a'(C_a) of giving feature a more capacity; black: -l_b'(1 - C_a), that "
        "of feature b, which gets what a leaves. With increasing returns (A, B: K < 3) or constant returns "
        "(C: K = 3) the optimum is an end point: one feature owns the neuron (a tie, as in A, goes to the "
        "first feature). With diminishing returns (K > 3) the curves cross, and the optimum is the "
        "crossing, where both marginals equal lambda, unless feature a's marginal at C_a = 1 still "
        "exceeds b's at 0, which happens for K < 1 + 2a/b (D). The dashed line is capopt.solve's "
        f"allocation at budget 1; case E is the worked example of theory §3, C = ({fmt(numbers['E C_a'])}, "
        f"{fmt(numbers['E C_b'])}), loss {fmt(numbers['E loss'])}. The same letters mark the "
        "two-feature phase diagram (next figure)."
    )


def two_feature(s, c) -> str:
    numbers = c.numbers
    return (
        f"Capacity C_b of the less important of two features on one neuron, solved exactly on a "
        f"{s.two_feature_ratios} x {s.two_feature_kurtoses} grid of importance ratio a/b in [1, 4] "
        f"and kurtosis K in [1, 16] (capopt.sweeps.two_feature_phase). The features share the neuron "
        f"(polysemantic) at {numbers['polysemantic points']} of {numbers['grid points']} grid points. "
        f"The closed-form boundary K = 1 + 2a/b (dashed) predicts which, with "
        f"{numbers['disagreements with K > 1 + 2a/b']} "
        f"disagreements off the boundary ({numbers['points on the boundary']} grid points lie on it, "
        "where C_b = 0). The solid line is the boundary traced from the grid "
        "(capopt.sweeps.phase_boundaries: each crossing refined along K to 1e-10 by a root of the "
        f"KKT margin, re-solving the problem); its {numbers['traced crossings']} points lie within "
        f"{fmt(numbers['max relative distance of traced K from 1 + 2a/b'])} (relative) of 1 + 2a/b. "
        "The solid line along the bottom edge is the other change of regime the tracer finds: at "
        "K = 1 every curve is flat and nothing is represented, just above it feature a owns the neuron. "
        "Sparse inputs (large K) and similar importances (a/b near 1) make sharing "
        "optimal. The lettered points are the cases A-F of the previous figure."
    )


def phase_diagram(s, c) -> str:
    numbers = c.numbers
    return (
        f"Fraction of N = {s.phase_features} features that are polysemantic at the optimum with "
        f"d = {s.phase_budget}, importances v_i = r^i and sparse Gaussian inputs of density p "
        f"(kurtosis K = 3/p), on a {s.phase_densities} x {s.phase_decays} grid (capopt.sweeps."
        f"polysemantic_phase, numba kernels). {numbers['points with some polysemantic feature']} of "
        f"{numbers['grid points']} points have a polysemantic feature, up to a fraction of "
        f"{fmt(numbers['max polysemantic fraction'])}. The boundary p* = 3/(1 + 2/r) (dashed), where "
        "features d-1 and d start to share, predicts which points have one with "
        f"{numbers['disagreements with p < p*(r)']} disagreements. The thin lines are traced "
        "(capopt.sweeps.phase_boundaries): where each feature changes regime, every crossing of the "
        f"grid refined along p to 1e-10 ({numbers['traced crossings']} points); the outermost lies "
        f"within {fmt(numbers['max relative distance of the traced outer boundary from p*(r)'])} "
        "(relative) of p*. Sparser inputs and flatter importance profiles mean more polysemanticity."
    )


def _training(s) -> str:
    """How the sweeps were trained, for the captions of the trained figures."""
    return (f"N = {s.train_features} features of importance 0.9^i, d = {s.train_budget}, Adam at "
            f"learning rate {fmt(s.train_lr)}, batch {s.train_batch}, {s.train_seeds} seed(s) per "
            f"density; training stops when the mean loss over {s.train_window * 100} steps changes "
            f"by less than {fmt(s.train_tol)} (relative) from the {s.train_window * 100} steps before, "
            f"for every instance, or at {s.train_steps} steps")


def sparsity(s, c) -> str:
    p = c.data["densities"]
    numbers = c.numbers
    grows = numbers["architectures where it grows"]
    gap = numbers["square vs solver max |difference|"]
    return (
        f"Fraction of features that are polysemantic in models trained with Adam "
        f"(capopt.training.sparsity_sweep: {_training(s)}) at {p.size} densities from 1 to "
        f"{fmt(p[-1])}; line: mean over seeds, band: range over seeds. A feature is polysemantic "
        f"when it is represented, its column norm above {fmt(TRAINED_ZERO_TOL)} of the longest "
        f"column (capopt.geometry.represented), and {fmt(TRAINED_REGIME_ATOL)} < C < "
        f"{fmt(1 - TRAINED_REGIME_ATOL)}; the residual columns a trained model leaves on features "
        "it does not use have capacities anywhere in [0, 1], and counting them by capacity alone "
        "gives the column 'by C alone'. Over the thresholds atol in "
        f"{{{', '.join(fmt(a) for a in s.regime_atols)}}} and norm fraction in "
        f"{{{', '.join(fmt(z) for z in s.zero_tols)}}} the seed-mean fraction at any density moves by "
        f"at most {fmt(numbers['max change over thresholds, all architectures'])} (per architecture "
        f"in the table). Polysemanticity grows from the densest to the sparsest inputs in {grows} of "
        f"{len(c.data['sweeps'])} architectures. The broad grey line is capopt.solve's prediction for "
        "the quadratic model on the same inputs, which the trained 'square' network implements: "
        f"they differ by at most {fmt(gap)} in fraction."
    )


def block_sizes(s, c) -> str:
    return (
        f"Blocks (capopt.blocks: features whose cosine exceeds {fmt(TRAINED_BLOCK_TOL)} share a "
        f"block; columns shorter than {fmt(TRAINED_ZERO_TOL)} of the longest are ignored) of every "
        f"embedding of the previous figure ({_training(s)}). Left: features in the largest block; "
        "right: the semi-orthogonality residual (rank W - sum C)/rank W, zero exactly when the "
        "embedding is block-semi-orthogonal (theory §1). The table gives, per architecture and "
        "density, the sizes of all blocks pooled over seeds (features:count), the largest block "
        "(mean and range over seeds) and the largest residual."
    )


def tms_published(s, c) -> str:
    panels = c.data["panels"]
    parts = []
    for name, spec, sw, _ in panels:
        n = c.numbers
        head = (f"{name} ({spec.source}): ReLU autoencoder, N = {spec.n_features}, d = {spec.budget}, "
                f"constant importance, {len(spec.densities)} densities from {fmt(max(spec.densities))} "
                f"to {fmt(min(spec.densities))}, {s.tms_seeds} seed(s), Adam lr {fmt(spec.lr)} constant, "
                f"batch {spec.batch_size}, {sw.fit.steps} steps, W drawn as the notebook's xavier_normal_ "
                "on its batched tensor. ")
        if spec.measure == "dimensions per feature":
            counts = ", ".join(
                f"{n[f'{name} densities with d/|W|_F^2 within {fmt(TRAINED_REGIME_ATOL)} of {fmt(v)}']} "
                f"near {fmt(v)}" for v in spec.published)
            parts.append(
                head + f"Published: d/|W|_F^2 sticks at {' and '.join(fmt(v) for v in spec.published)}. "
                f"Measured, of {len(spec.densities)} densities: {counts}, "
                f"{n[f'{name} densities elsewhere']} elsewhere. Loss per feature at density 1: "
                f"{fmt(n[f'{name} loss per feature at p = 1'])} from this initialisation, "
                f"{fmt(n[f'{name} loss per feature at p = 1, glorot init'])} from a per-instance "
                f"Glorot draw; the PCA-like embedding (d features whole, the rest at their mean) has "
                f"{fmt(n[f'{name} PCA-like loss per feature'])}.")
        else:
            counts = ", ".join(f"{n[f'{name} represented features at C = {fmt(v)}']} at {fmt(v)}"
                               for v in spec.published)
            parts.append(
                head + f"Published: per-feature capacities stick at "
                f"{', '.join(fmt(v) for v in spec.published)} in this window. Measured, of "
                f"{n[f'{name} represented features']} represented features (all densities and seeds), "
                f"within {fmt(TRAINED_REGIME_ATOL)}: {counts}, "
                f"{n[f'{name} represented features elsewhere']} elsewhere.")
    return " ".join(parts)


def gram_blocks(s, c) -> str:
    numbers = c.numbers
    agree = "agree" if numbers["quadratic optimal blocks"] == numbers["quadratic L-BFGS blocks"] else "differ"
    return (
        f"Gram matrices G = W^T W (scaled by max |G|) of embeddings with N = {s.train_features} "
        f"features of importance 0.9^i in d = {s.train_budget} dimensions at input density p = "
        f"{fmt(numbers['density'])}, features grouped by the blocks capopt.blocks finds (boxes; ignored features "
        "last). The quadratic model's optimal embedding (from the solver's allocation) and its "
        f"exact-loss L-BFGS training have blocks {numbers['quadratic optimal blocks']} and "
        f"{numbers['quadratic L-BFGS blocks']} (features/dims; they {agree}) and capacities within "
        f"max |dC| = {fmt(numbers['quadratic L-BFGS max |dC|'])}; in the quadratic model all polysemantic features share "
        "one block. The other architectures, trained with Adam on sampled inputs "
        "(the sparsity sweep), form blocks of their own sizes at this one density; the table lists "
        "them, and the block-size figure quantifies them at every density."
    )


def crosscheck(s, c) -> str:
    numbers = c.numbers
    return (
        f"The {len(c.data['reports'])} standard cross-check problems (capopt.training.STANDARD_PROBLEMS: convex, "
        "concave and mixed quadratic families, per-feature kurtosis straddling 3, and the linear "
        "autoencoder), each solved by capopt.solve and trained independently by L-BFGS on the model's "
        f"exact expected loss from {s.crosscheck_starts} random starts (capopt.crosscheck). "
        "Left: every feature's trained capacity against the predicted one (the diagonal is "
        "agreement). Middle: the largest capacity disagreement per problem. Right: the loss gap, "
        "trained minus predicted, with its sign (below zero training would have beaten the solver; "
        "grey marks the rounding of the loss). Over all problems "
        f"max |dC| = {fmt(numbers['max |dC| over all problems'])} and max |loss gap| = "
        f"{fmt(numbers['max |loss gap| over all problems'])} (trained minus predicted "
        "loss)."
    )


def budget_response(s, c) -> str:
    d = c.data["budgets"]
    return (
        f"Three quadratic families of N = {c.data['n_features']} features with importances 0.85^i, solved by capopt.solve "
        f"at {d.size} budgets d from 0 to {fmt(d[-1])}. Stacked panels: each feature's capacity, "
        "coloured by its importance rank (colourbar); the "
        "top edge is the capacity used, sum C = min(d, N) (the budget binds while lambda > 0). With "
        "diminishing returns features enter gradually and share; with increasing returns they enter "
        "one whole dimension at a time; the mixed family takes dense features whole and shares the "
        "sparse ones. Last panel: the multiplier lambda, the marginal value of one more dimension, "
        "checked against the finite difference -(L*(d+h) - L*(d-h))/2h, h = "
        f"{fmt(c.data['step'])}, at budgets away from whole numbers (crosses, every third shown); the table gives "
        "the largest disagreement (relative to max(lambda, 1)) and the capacity used."
    )

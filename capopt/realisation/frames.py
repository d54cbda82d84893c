r"""Tight frames with prescribed squared norms: the blocks of a realised allocation.

A frame here is a k x n matrix X with :math:`X X^\top = \mathrm{diag}(\text{spectrum})`
(a tight frame when the spectrum is all ones) whose columns have given squared norms
``targets``. Such a frame exists iff the spectrum, padded with zeros, majorises the targets
(Schur–Horn). :func:`schur_horn_frame` builds one by plane rotations, dense;
:func:`tetris_frame` builds a sparse tight frame in the spirit of spectral tetris, and
:func:`sparse_frame` picks the sparsest of several candidates.

Glossary: ``k`` dimension of the block, ``n`` number of its features, ``targets`` their
squared norms (capacities, in a tight frame).
"""

from __future__ import annotations

import numpy as np

from ..geometry import features_per_neuron

__all__ = ["FRAME_BUILDERS", "schur_horn_frame", "tetris_frame", "quartimax", "sparse_frame"]

#: Rounding slack of the sparse construction's bookkeeping of how full a neuron is.
_FIT_EPS = 1e-12

#: Iteration cap of the quartimax rotation; it stops earlier once a step gains < 1e-12.
_QUARTIMAX_MAX_ITER = 500


def schur_horn_frame(spectrum: np.ndarray, targets: np.ndarray) -> np.ndarray:
    r"""Matrix X (m x n) with :math:`X X^\top = \mathrm{diag}(\text{spectrum})` and column
    squared norms ``targets``, by plane rotations of columns (Dhillon et al. 2005).

    Requires n >= m and that ``spectrum`` (padded with zeros to n) majorises ``targets``.

    Start from :math:`X = [\mathrm{diag}(\sqrt{\text{spectrum}}), 0]`: mutually orthogonal
    "slot" columns with squared norms c. Each step takes the smallest remaining target a and
    the two slots whose norms bracket it in sorted order, :math:`c_j \ge a \ge c_{j+1}`,
    rotates them so that one has squared norm a (that column is final) and the other
    :math:`c_j + c_{j+1} - a`, still orthogonal to the other slots. The new norms, sorted,
    replace :math:`(c_j, c_{j+1})` by a value between them and drop a; every partial sum of
    the top p norms becomes :math:`\sum_{i \le p+1} c_i - a \ge \sum_{i \le p+1} a_i - a_{\min}
    \ge \sum_{i \le p} a_i`, so majorisation is kept and the next step exists. Rotations act
    on the right, so :math:`X X^\top` never changes. Cost :math:`O(n(m + n \log n))`.
    """
    m, n = spectrum.size, targets.size
    slots = np.zeros((m, n))
    slots[np.arange(m), np.arange(m)] = np.sqrt(spectrum)
    norms = np.concatenate([spectrum, np.zeros(n - m)])
    alive = list(range(n))
    X = np.zeros((m, n))
    order = np.argsort(targets, kind="stable")
    for feature in order[:-1]:
        a = targets[feature]
        alive.sort(key=lambda s: -norms[s])
        c = norms[alive]
        # Last slot at or above a, kept off the end so that a slot below exists; rounding
        # may leave a a hair outside [c_min, c_max], which the clip absorbs.
        j = min(int(np.sum(c >= a)) - 1, len(alive) - 2)
        j = max(j, 0)
        hi, lo = alive[j], alive[j + 1]
        gap = norms[hi] - norms[lo]
        cos2 = 1.0 if gap <= 0 else float(np.clip((a - norms[lo]) / gap, 0.0, 1.0))
        cos, sin = np.sqrt(cos2), np.sqrt(1.0 - cos2)
        X[:, feature] = cos * slots[:, hi] + sin * slots[:, lo]
        slots[:, lo] = -sin * slots[:, hi] + cos * slots[:, lo]
        norms[lo] = slots[:, lo] @ slots[:, lo]
        alive.remove(hi)
    X[:, order[-1]] = slots[:, alive[0]]
    return X


def tetris_frame(targets: np.ndarray, k: int) -> np.ndarray:
    r"""Sparse tight frame X (k x n), :math:`X X^\top = I_k`, column squared norms ``targets``
    (summing to k, each in (0, 1)), in the spirit of spectral tetris (Casazza et al. 2011).

    Rows (neurons) are filled one at a time with the features in decreasing order of
    capacity. A feature that fits in the current row's remaining room r goes there whole
    (the largest that fits first). When none fits, the two smallest remaining features
    t, u (both > r) straddle this row and the next through a 2 x 2 block
    :math:`\mathrm{diag}(\sqrt r, \sqrt q) \begin{pmatrix} c & s \\ s & -c \end{pmatrix}`,
    :math:`q = C_t + C_u - r`, whose rows are orthogonal with squared norms r and q and whose
    columns have squared norms :math:`r c^2 + q s^2 = C_t` and :math:`C_u`; it exists when
    :math:`q \le 1`. Such a frame has features on one neuron or two, and each neuron
    carries the features that fit plus at most two straddling pairs.

    If :math:`C_t + C_u > 1 + r` no 2 x 2 block fits, and the remaining features are laid on
    the remaining rows (squared norms r, 1, ..., 1, which majorise any capacities in [0, 1]
    with that sum) by :func:`schur_horn_frame`, which is denser. Equal capacities above
    1/2 (e.g. the tetrahedron, 3/4) take that route, as spectral tetris itself needs
    redundancy n/k >= 2.
    """
    n = targets.size
    X = np.zeros((k, n))
    remaining = sorted(range(n), key=lambda i: -targets[i])
    row, room = 0, 1.0
    while remaining:
        if row == k - 1:
            # The last row's room equals the sum of what is left, up to rounding.
            X[row, remaining] = np.sqrt(targets[remaining])
            break
        fitting = [i for i in remaining if targets[i] <= room + _FIT_EPS]
        if fitting:
            i = fitting[0]
            X[row, i] = np.sqrt(targets[i])
            remaining.remove(i)
            room -= targets[i]
        else:
            t, u = remaining[-2], remaining[-1]
            q = targets[t] + targets[u] - room
            if q > 1 + _FIT_EPS:
                spectrum = np.concatenate([[room], np.ones(k - row - 1)])
                X[row:, remaining] = schur_horn_frame(spectrum, targets[remaining])
                break
            q = min(q, 1.0)
            cos2 = (targets[t] - q) / (room - q)
            cos, sin = np.sqrt(cos2), np.sqrt(1.0 - cos2)
            X[row, [t, u]] = np.sqrt(room) * cos, np.sqrt(room) * sin
            X[row + 1, [t, u]] = np.sqrt(q) * sin, -np.sqrt(q) * cos
            remaining = remaining[:-2]
            row, room = row + 1, 1.0 - q
        if room <= _FIT_EPS:
            row, room = row + 1, 1.0
    return X


def quartimax(X: np.ndarray) -> np.ndarray:
    r"""Rotate the rows (neurons) of a frame X to maximise :math:`\sum_{k,i} X_{ki}^4`.

    With unit row norms, a neuron's participation ratio is :math:`1/\sum_i X_{ki}^4`, so
    this concentrates each neuron on few features (the quartimax criterion of factor
    analysis). Each step maximises the criterion's linearisation over rotations,
    :math:`R = U V^\top` from the SVD of :math:`X (X^\top R)^{\circ 3}`; the criterion is
    convex, so the steps never decrease it. Rotating rows keeps :math:`X X^\top` and the Gram
    matrix, hence the capacities.
    """
    L, R = X.T, np.eye(X.shape[0])
    value = np.sum(L**4)
    for _ in range(_QUARTIMAX_MAX_ITER):
        U, _, Vt = np.linalg.svd(L.T @ (L @ R) ** 3)
        R = U @ Vt
        new = np.sum((L @ R) ** 4)
        if new - value <= 1e-12 * value:
            break
        value = new
    return R.T @ X


def sparse_frame(targets: np.ndarray, k: int) -> np.ndarray:
    """The candidate frame with the fewest features per neuron (smallest summed
    participation ratio): spectral tetris, the Givens construction, or either after a
    quartimax rotation. Tetris comes first and wins ties, keeping its exact zeros."""
    tetris, givens = tetris_frame(targets, k), schur_horn_frame(np.ones(k), targets)
    candidates = [tetris, quartimax(tetris), givens, quartimax(givens)]
    return min(candidates, key=lambda X: float(np.sum(features_per_neuron(X))))


FRAME_BUILDERS = {
    "dense": lambda targets, k: schur_horn_frame(np.ones(k), targets),
    "sparse": sparse_frame,
}

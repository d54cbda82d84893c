r"""The local structure of the KKT system at an optimum, and the Jacobian's products.

The sensitivities of an optimum (:func:`capopt.sensitivity`, :mod:`capopt.perturbation`)
and of every problem of a sweep (:mod:`capopt._kernels.grid_sensitivities`) read where
each feature sits in the KKT system (:func:`kkt_structure`), apply the Jacobian's
diagonal-plus-border operator (:func:`apply_border`), and take each quadratic-model
feature's marginal, curvature and partials in one pass (:func:`quadratic_partials`).
Private: the wrappers validate once; ``tests/test_sensitivity.py`` checks the sensitivities
built on them against central finite differences of certified solves, and the operators
against their dense form.

Glossary: ``C`` capacities, ``lam`` multiplier, ``right``/``left`` one-sided marginals,
``h`` curvatures, ``g`` their inverses on the active set, ``w`` the border,
``place`` each feature's place in the system.
"""

from __future__ import annotations

from .._jit import jit
from . import quadratic

__all__ = ["ACTIVE", "AT_ZERO", "AT_ONE", "AT_KNOT", "TIGHT", "KINK_RTOL", "kkt_structure", "apply_border",
           "PARTIAL_ROWS", "quadratic_partials"]

#: Where :func:`kkt_structure` places a feature; ``TIGHT`` is added for a kink.
ACTIVE, AT_ZERO, AT_ONE, AT_KNOT, TIGHT = 0, 1, 2, 3, 4
#: A feature at a bound (or knot) whose one-sided marginal is within this distance of lam,
#: relative to the largest marginal, is at a kink: a small change may move it.
KINK_RTOL = 1e-9


@jit
def kkt_structure(C, right, left, h, linear, lam, atol, kink_rtol, place, g):
    r"""Place every feature in the KKT system at (C, lam) and invert the active curvatures.

    Writes ``place[i]``: ``ACTIVE`` (inside a smooth piece, :math:`m_i = \lambda`),
    ``AT_ZERO``, ``AT_ONE`` (within ``atol`` of a bound) or ``AT_KNOT`` (a knot of a
    table: the one-sided marginals differ), plus ``TIGHT`` when a one-sided marginal on
    the side where it can move is within ``kink_rtol`` of lam, relative to the largest
    marginal (a kink; a marginal of 0 at lam = 0 never moves). Writes ``g[i]``
    :math:`= 1 / \ell_i''` for an active feature whose piece is curved, else 0 (``g``
    may be ``h`` itself).

    Returns
    -------
    S : float
        :math:`\sum g_i`.
    pins : int
        Active features on a linear piece (``linear[i]`` or :math:`\ell_i'' = 0`).
    first_pin : int
        The first of them, or -1.
    active : int
        Active features.
    """
    scale = abs(lam)
    for i in range(C.size):
        scale = max(scale, abs(right[i]), abs(left[i]))
    tol = kink_rtol * scale
    S = 0.0
    pins = 0
    first_pin = -1
    active = 0
    for i in range(C.size):
        # Read before writing: g may be h itself (the curvature turned into its inverse).
        hi = h[i]
        g[i] = 0.0
        gives = right[i] != 0.0 or lam != 0.0
        near_right = gives and abs(right[i] - lam) <= tol
        near_left = gives and abs(left[i] - lam) <= tol
        if C[i] <= atol:
            place[i] = AT_ZERO + TIGHT * near_right
        elif C[i] >= 1.0 - atol:
            place[i] = AT_ONE + TIGHT * near_left
        elif right[i] != left[i]:
            place[i] = AT_KNOT + TIGHT * (near_right or near_left)
        else:
            place[i] = ACTIVE
            active += 1
            if linear[i] or hi == 0.0:
                pins += 1
                first_pin = i if first_pin < 0 else first_pin
            else:
                g[i] = 1.0 / hi
                S += g[i]
    return S, pins, first_pin, active


@jit
def apply_border(g, w, Y, out):
    r""":math:`Q^\top \operatorname{diag}(g) Q y` with :math:`Q = I - \mathbf 1 w^\top`, for each row y of Y.

    ``Y`` and ``out`` have shape (k, N): k changes of the marginals at once, in three passes
    over the features, O(k N). ``g`` and ``w`` are zero outside the active set, so the
    result is too: the changes of the capacities (:mod:`capopt.perturbation.jacobian`).
    """
    k, n = Y.shape
    for j in range(k):
        wy = 0.0
        for i in range(n):
            wy += w[i] * Y[j, i]
        total = 0.0
        for i in range(n):
            out[j, i] = g[i] * (Y[j, i] - wy)
            total += out[j, i]
        for i in range(n):
            out[j, i] -= w[i] * total


#: The rows :func:`quadratic_partials` writes, in order.
PARTIAL_ROWS = ("marginal", "curvature", "marginal_d_importance", "marginal_d_kurtosis",
                "loss_d_importance", "loss_d_kurtosis")


@jit
def quadratic_partials(C, v, K, out):
    r"""Each feature's marginal, curvature and partials in v and K at C, in one pass.

    Writes ``out[r, i]`` for the first ``out.shape[0]`` rows of :data:`PARTIAL_ROWS`:
    :math:`m_i`, :math:`\ell_i''`, :math:`\partial m_i / \partial v_i`,
    :math:`\partial m_i / \partial K_i`, :math:`\partial \ell_i / \partial v_i`,
    :math:`\partial \ell_i / \partial K_i` (the sensitivities' terms; the sweeps need
    only the first four, the KKT structure the first two; ``out`` has 2, 4 or 6 rows).
    ``K`` has one entry (shared) or N. A flat curve has zero
    marginal and curvature; its loss partials are those of its constant
    :math:`(K - 1) v^2`, which the formulas give at C = 0, where it sits.
    """
    shared = K.size == 1
    rows = out.shape[0]
    with_partials = rows > 2
    with_loss = rows > 4
    for i in range(C.size):
        c, x, k = C[i], v[i], K[0] if shared else K[i]
        flat = quadratic.flat(x, k)
        out[0, i] = quadratic.feature_marginal(c, x, k)
        out[1, i] = 0.0 if flat else quadratic.curvature(c, x, k)
        if with_partials:
            out[2, i] = quadratic.marginal_d_importance(c, x, k)
            out[3, i] = quadratic.marginal_d_kurtosis(c, x, k)
        if with_loss:
            out[4, i] = quadratic.loss_d_importance(c, x, k)
            out[5, i] = quadratic.loss_d_kurtosis(c, x, k)

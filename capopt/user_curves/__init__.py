r"""Loss curves supplied by the user: Python functions or tabulated values.

Two factories turn a user's own curves into a :class:`~capopt.curves.LossCurves` family that
every solver accepts:

- :func:`from_functions` -- one callable :math:`\ell_i(C)` per feature, with the marginal
  :math:`-\ell_i'` and the curvature :math:`\ell_i''` either supplied or obtained by finite
  differences;
- :func:`from_table` -- values :math:`\ell_i(x_k)` on a grid :math:`0 = x_0 < \dots < x_{M-1} = 1`,
  interpolated piecewise-linearly (e.g. losses measured by training at a few capacities).

The solvers need each curve's shape (convex, linear, concave or irregular), which decides
which methods are exact. It is read off the slopes of the curve on a grid: the table's own
grid, or a fine uniform sample of a callable (see :func:`shapes_from_slopes`). A sample
cannot prove convexity between its points; pass ``shapes=`` to :func:`from_functions` when
the shapes are known analytically.

Glossary: ``C`` capacity in [0, 1], ``l`` loss, ``m = -l'`` marginal benefit, ``s = l'``
slope, ``h`` step, ``M`` grid size, ``N`` number of features.

Modules: :mod:`~capopt.user_curves.functions` (callables), :mod:`~capopt.user_curves.tables`
(tables), :mod:`~capopt.user_curves.differences` (the finite-difference stencils),
:mod:`~capopt.user_curves.chords` (what a convex callable's values prove: its one-sided
slopes at kinks, and lower bounds) and :mod:`~capopt.user_curves.shapes` (shape detection
from slopes).
"""

from .functions import DEFAULT_SAMPLES, FunctionCurves, from_functions
from .shapes import DEFAULT_SHAPE_RTOL, shapes_from_slopes
from .tables import TabulatedCurves, from_table

__all__ = [
    "FunctionCurves",
    "TabulatedCurves",
    "from_functions",
    "from_table",
    "shapes_from_slopes",
    "DEFAULT_SHAPE_RTOL",
    "DEFAULT_SAMPLES",
]

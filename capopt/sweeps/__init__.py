"""Fast parameter sweeps, phase diagrams and sensitivities of the quadratic model.

:func:`sweep` solves grids of problems with numba kernels (exact, in parallel, resumable
from a checkpoint, on any :class:`concurrent.futures.Executor`) into an
:class:`xarray.Dataset`; :func:`sensitivity` differentiates one optimum through its KKT
system; :func:`two_feature_phase` and :func:`polysemantic_phase` compute phase diagrams,
which :mod:`capopt.plotting` draws.
"""

from .phase import polysemantic_fraction, polysemantic_phase, two_feature_phase
from .sensitivity import Sensitivity, sensitivity
from .grid import load_sweep, save_sweep, sweep

__all__ = [
    "sweep",
    "save_sweep",
    "load_sweep",
    "sensitivity",
    "Sensitivity",
    "two_feature_phase",
    "polysemantic_phase",
    "polysemantic_fraction",
]

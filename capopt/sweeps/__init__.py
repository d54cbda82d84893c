"""Fast parameter sweeps, phase diagrams and sensitivities of the quadratic model.

:func:`sweep` solves grids of problems with numba kernels (exact, in parallel, resumable
from a checkpoint, on any :class:`concurrent.futures.Executor`) into an
:class:`xarray.Dataset`; :func:`sensitivity` differentiates one optimum through its KKT
system; :func:`two_feature_phase` and :func:`polysemantic_phase` compute phase diagrams,
:func:`phase_boundaries` traces their boundaries exactly, and :mod:`capopt.plotting` draws
them.
"""


import importlib

# Light (numpy only), and named like its module: imported here, so that the attribute
# ``sensitivity`` is the function, not the submodule a first import would bind.
from .sensitivity import Sensitivity, sensitivity

#: Each other public name and the submodule it lives in, imported on first use: the grid and
#: the phase diagrams need xarray, which ``import capopt`` and ``capopt --help`` do not load.
_HOMES = {
    "sweep": "grid",
    "save_sweep": "dataset",
    "load_sweep": "dataset",
    "two_feature_phase": "phase",
    "polysemantic_phase": "phase",
    "polysemantic_fraction": "phase",
    "phase_boundaries": "boundaries",
}

__all__ = [
    "sweep",
    "save_sweep",
    "load_sweep",
    "sensitivity",
    "Sensitivity",
    "two_feature_phase",
    "polysemantic_phase",
    "polysemantic_fraction",
    "phase_boundaries",
]


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

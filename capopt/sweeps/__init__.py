"""Fast parameter sweeps and phase diagrams of the quadratic model.

:func:`sweep` solves grids of problems with numba kernels (exact, in parallel, resumable
from a checkpoint, on any :class:`concurrent.futures.Executor`) into an
:class:`xarray.Dataset`, with the sensitivities of every optimum if asked;
:func:`two_feature_phase` and :func:`polysemantic_phase` compute phase diagrams,
:func:`phase_boundaries` traces their boundaries exactly, and :mod:`capopt.plotting` draws
them. One optimum is differentiated by :func:`capopt.sensitivity`.
"""


import importlib
from typing import Any

#: Each public name and the submodule it lives in, imported on first use: the grid and
#: the phase diagrams need xarray, which ``import capopt`` and ``capopt --help`` do not load.
_HOMES = {
    "sweep": "grid",
    "save_sweep": "dataset",
    "load_sweep": "dataset",
    "two_feature_phase": "phase",
    "polysemantic_phase": "phase",
    "polysemantic_fraction": "phase",
    "CheckpointWarning": "chunk_store",
    "phase_boundaries": "boundaries",
}

__all__ = [
    "sweep",
    "save_sweep",
    "load_sweep",
    "two_feature_phase",
    "polysemantic_phase",
    "polysemantic_fraction",
    "CheckpointWarning",
    "phase_boundaries",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

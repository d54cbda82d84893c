"""capopt: capacity allocation in neural-network toy models, solved directly.

Each feature i of a model's input gets a capacity C_i in [0, 1], the fraction of an
embedding dimension it owns; the capacities share the budget sum_i C_i <= d. capopt
measures capacities of any embedding, derives each architecture's loss-vs-capacity curves,
and solves for the loss-optimal allocation with a certificate of optimality.

Examples
--------
>>> import capopt
>>> curves = capopt.quadratic(importance=[2.0, 1.0], kurtosis=7.0)
>>> result = capopt.solve(curves, budget=1)
>>> [r.value for r in result.regimes]
['polysemantic', 'polysemantic']
"""


from .capacity import CapacitySummary, capacity, capacity_summary, leverage_scores
from .curves import (
    LinearAutoencoderCurves,
    LossCurves,
    QuadraticCurves,
    Shape,
    gated_kurtosis,
    linear_autoencoder,
    quadratic,
)
from .geometry import Block, BlockStructure, blocks, features_per_neuron
from .models import linear_autoencoder_model_loss, quadratic_model_bias, quadratic_model_loss
from .realisation import QuadraticModel, optimal_quadratic_model, realize
from .regimes import Regime, classify
from .user_curves import from_functions, from_table
from .solvers import METHODS, AllocationError, AllocationResult, Certificate, Status, solve
from .comparison import Comparison, compare
from .weights import load_weights
from ._folder_lock import FolderInUseError


# Sweeps pull in xarray, training numba: they are imported on first use, so that
# `import capopt` loads none of numba, llvmlite, xarray, matplotlib, cvxpy, sympy, pandas,
# dask or scipy.sparse.csgraph (bench part "imports" measures it).
_LAZY = {name: "capopt.sweeps" for name in ("sweep", "load_sweep", "save_sweep")}
# scipy.sparse.linalg, for the sensitivities' operators, loads on first use too.
_LAZY |= {name: "capopt.perturbation" for name in ("sensitivity", "Sensitivity")}
_LAZY["crosscheck"] = "capopt.training"
_LAZY |= {name: "capopt.tms" for name in ("predict_tms", "TMSPrediction")}


def _version() -> str:
    """The installed package's version (pyproject.toml, through its metadata): one source."""
    from importlib import metadata  # with its email parsers, a third of `import capopt`

    try:
        return metadata.version("capopt")
    except metadata.PackageNotFoundError:  # a source tree on the path, never installed
        return "0+unknown"


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "__version__":
        globals()["__version__"] = version = _version()
        return version
    raise AttributeError(f"module 'capopt' has no attribute {name!r}")


__all__ = [
    "AllocationError",
    "AllocationResult",
    "Block",
    "BlockStructure",
    "CapacitySummary",
    "Certificate",
    "Comparison",
    "FolderInUseError",
    "LinearAutoencoderCurves",
    "LossCurves",
    "METHODS",
    "QuadraticCurves",
    "QuadraticModel",
    "Regime",
    "Shape",
    "Status",
    "blocks",
    "capacity",
    "capacity_summary",
    "classify",
    "compare",
    "crosscheck",
    "features_per_neuron",
    "from_functions",
    "from_table",
    "gated_kurtosis",
    "leverage_scores",
    "linear_autoencoder",
    "linear_autoencoder_model_loss",
    "load_weights",
    "optimal_quadratic_model",
    "quadratic",
    "quadratic_model_bias",
    "quadratic_model_loss",
    "realize",
    "solve",
    *_LAZY,
]

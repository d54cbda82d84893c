r"""Sparse input distributions for sampled training, one stream per model instance.

Glossary: ``R`` number of model instances trained together, ``B`` batch size, ``N`` number
of features, ``p`` density (probability that a feature is active; sparsity ``S = 1 - p``).

Two families:

* ``base="gaussian" | "rademacher" | "uniform"``: :math:`x = B z / \sqrt p` with
  :math:`B \sim \mathrm{Bernoulli}(p)` and z of mean 0, variance 1 and fourth moment
  :math:`K_z` (3, 1, 9/5), so that :math:`E[x^2] = 1` and :math:`E[x^4] = K_z / p`
  (theory §3, :func:`capopt.curves.gated_kurtosis`). These feed the quadratic model and the
  two-layer models.
* ``base="tms"``: :math:`x = B U`, :math:`U \sim \mathrm{Uniform}[0, 1]` without rescaling,
  the inputs of Toy Models of Superposition (theory §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _formulas as F
from .._validation import as_float_array, check_count
from .._kernels.training import BASE_CODES, gate
from .._typing import ArrayLike, DTypeLike

__all__ = ["BASES", "SparseInputs", "FixedSample", "check_dtype"]

#: Distributions of an active input; the first three are unit-variance (theory §3).
BASES = (*sorted(F.BASE_FOURTH_MOMENT), "tms")


def check_dtype(dtype: DTypeLike) -> Any:
    """``dtype`` as a :class:`numpy.dtype`, checked to be float32 or float64 (the precisions
    the training kernels are compiled for)."""
    checked = np.dtype(dtype)
    if checked not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {checked}")
    return checked


def _check_base(base: str) -> str:
    if base not in BASES:
        raise ValueError(f"base must be one of {list(BASES)}, got {base!r}")
    return base


class SparseInputs:
    r"""Independent sparse inputs with a density per instance and feature.

    Parameters
    ----------
    density : array_like, shape (R, N)
        :math:`p \in (0, 1]` for each instance and feature.
    base : str
        One of :data:`BASES`.
    dtype : {float64, float32}
        Precision of the draws (and of the model trained on them).

    Notes
    -----
    One uniform draw ``u`` per entry decides both the gate and, for the uniform, Rademacher
    and TMS bases, the value: conditioned on ``u < p``, ``u / p`` is again uniform on
    [0, 1), so the active value needs no second draw (:func:`capopt._kernels.training.gate`). Only
    Gaussian values need one. Instance ``r`` draws only from its own generator, so its
    data stream does not depend on which other instances are trained alongside it.
    """

    def __init__(self, density: ArrayLike, base: str, *, dtype: DTypeLike = np.float64):
        p = as_float_array(density, "density")
        if p.ndim != 2:
            raise ValueError(f"density must have shape (n_instances, n_features), got {p.shape}")
        if np.any((p <= 0) | (p > 1)):
            raise ValueError(f"density must lie in (0, 1], got values in [{p.min():g}, {p.max():g}]")
        self.dtype: Any = check_dtype(dtype)
        self.density = p
        self.base = _check_base(base)

    @property
    def kurtosis(self) -> np.ndarray:
        """Fourth moment :math:`E[x^4] = K_z / p` of the unit-variance bases, shape (R, N)."""
        if self.base == "tms":
            raise ValueError("the 'tms' base is not unit-variance; its kurtosis is not K_z / p")
        return F.gated_kurtosis(self.density, F.BASE_FOURTH_MOMENT[self.base])

    def sample(self, rngs: Sequence[np.random.Generator], batch_size: int) -> np.ndarray:
        """Draw a batch of shape (R, B, N), instance ``r`` from ``rngs[r]``."""
        R, N = self.density.shape
        x = np.empty((R, batch_size, N), dtype=self.dtype)
        u = np.empty((batch_size, N), dtype=self.dtype)
        z = np.empty((batch_size, N) if self.base == "gaussian" else (0, 0), dtype=self.dtype)
        code = BASE_CODES[self.base]
        for r, rng in enumerate(rngs):
            rng.random(dtype=self.dtype, out=u)
            if self.base == "gaussian":
                rng.standard_normal(dtype=self.dtype, out=z)
            gate(u, z, self.density[r].astype(self.dtype), code, x[r])
        return x

    def prepare(self, rngs: Sequence[np.random.Generator]) -> None:
        """Nothing to prepare: every batch is a fresh draw."""

    def describe(self) -> dict:
        """JSON-able description (part of a checkpoint's fingerprint)."""
        return {"base": self.base, "density": self.density.tolist(), "dtype": self.dtype.name}


class FixedSample:
    """A finite training set drawn once from ``inputs``; minibatches are resampled from it.

    With ``batch_size == size`` every step sees the whole set (full-batch training of the
    empirical loss), so the trained model is the empirical-risk minimiser of ``size`` draws.

    Parameters
    ----------
    inputs : SparseInputs
    size : int
        Number of examples per instance.
    """

    def __init__(self, inputs: SparseInputs, size: int):
        size = check_count(size, "dataset_size")
        self.inputs = inputs
        self.size = int(size)
        self.data: np.ndarray | None = None

    @property
    def density(self) -> np.ndarray:
        return self.inputs.density

    @property
    def kurtosis(self) -> np.ndarray:
        return self.inputs.kurtosis

    @property
    def dtype(self) -> np.dtype:
        return self.inputs.dtype

    def prepare(self, rngs: Sequence[np.random.Generator]) -> None:
        """Draw the training set from each instance's generator."""
        self.data = self.inputs.sample(rngs, self.size)

    def sample(self, rngs: Sequence[np.random.Generator], batch_size: int) -> np.ndarray:
        assert self.data is not None, "prepare() draws the training set before sampling"
        if batch_size == self.size:
            return self.data
        index = np.stack([rng.integers(self.size, size=batch_size) for rng in rngs])
        return np.take_along_axis(self.data, index[:, :, None], axis=1)

    def describe(self) -> dict:
        return {**self.inputs.describe(), "dataset_size": self.size}

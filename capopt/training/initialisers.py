r"""Initial embeddings of the sampled trainers, by name (:data:`INITS`).

Glossary: ``R`` instances trained together, ``d`` the budget (hidden width), ``N`` features;
every initialiser returns W of shape (R, d, N), instance r drawn from ``rngs[r]`` only.

* ``"tms"``: the Toy Models of Superposition notebook's ``nn.init.xavier_normal_`` on its
  batched ``W[instances, features, hidden]`` tensor. torch reads the fans of a tensor of
  more than two axes as :math:`\text{fan}_\text{in} = \text{size}(1) \cdot r` and
  :math:`\text{fan}_\text{out} = \text{size}(0) \cdot r` with the receptive field
  :math:`r` = the product of the axes beyond the first two, so for shape (R, N, d)

  .. math::

      \sigma = \sqrt{\frac{2}{\text{fan}_\text{in} + \text{fan}_\text{out}}}
             = \sqrt{\frac{2}{d\,(N + R)}},

  0.0213 for the notebook's 20 instances of 200 features in d = 20. The scale depends on
  how many instances are trained together, as in the notebook.
* ``"glorot"``: Glorot-normal of each instance's own (d, N) matrix,
  :math:`\sigma = \sqrt{2 / (d + N)}` (0.095 for 200 features in d = 20).

The two differ by a factor :math:`\sqrt{d}` or more, and the outcome of training depends
on it: from the larger Glorot scale the Toy Models autoencoder at density 1 (200 -> 20,
constant importance, the notebook's Adam settings) stays away from the PCA-like optimum
that the reference scale reaches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .._validation import check_choice

__all__ = ["INITS", "init_std", "initial_embedding"]


#: Standard deviation of each initialiser as a function of (d, N, R).
INITS: dict[str, Callable[[int, int, int], float]] = {
    "tms": lambda d, n, R: float(np.sqrt(2.0 / (d * (n + R)))),
    "glorot": lambda d, n, R: float(np.sqrt(2.0 / (d + n))),
}


def init_std(init: str, budget: int, n: int, n_instances: int) -> float:
    r"""Standard deviation :math:`\sigma` of the entries of W drawn by initialiser ``init``.

    Examples
    --------
    >>> round(init_std("tms", 20, 200, 20), 4), round(init_std("glorot", 20, 200, 20), 4)
    (0.0213, 0.0953)
    """
    return INITS[check_choice(init, "init", sorted(INITS))](budget, n, n_instances)


def initial_embedding(init: str, rngs: Sequence[np.random.Generator], budget: int,
                      n: int) -> np.ndarray:
    r"""W of shape (R, d, N) with i.i.d. :math:`\mathcal N(0, \sigma^2)` entries, :math:`\sigma`
    from :func:`init_std` with R = ``len(rngs)``; instance r is drawn from ``rngs[r]``."""
    std = init_std(init, budget, n, len(rngs))
    return np.stack([rng.normal(scale=std, size=(budget, n)) for rng in rngs])

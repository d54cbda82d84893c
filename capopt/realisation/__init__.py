r"""Embeddings that realise an allocation, and the optimal quadratic model itself.

:func:`realize` builds a block-semi-orthogonal embedding with given capacities
(:mod:`~capopt.realisation.embedding`), each block a tight frame
(:mod:`~capopt.realisation.frames`); :func:`optimal_quadratic_model` scales such an
embedding to the quadratic model that attains the allocation's loss
(:mod:`~capopt.realisation.quadratic_model`).
"""

from .embedding import DEFAULT_REALIZE_TOL, REALIZE_METHODS, realize
from .quadratic_model import QuadraticModel, optimal_quadratic_model

__all__ = ["realize", "optimal_quadratic_model", "QuadraticModel", "DEFAULT_REALIZE_TOL", "REALIZE_METHODS"]

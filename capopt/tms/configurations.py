r"""The blocks of a trained TMS ReLU autoencoder, as explicit unit-vector frames (theory §4).

At the optimum of the Toy Models of Superposition autoencoder the represented features sit
in blocks spanning mutually orthogonal subspaces. Inside a block the k features are k unit
vectors (a *frame*) in m dimensions, scaled to one squared norm :math:`a`:
:math:`W_{\text{block}} = \sqrt a\, V^\top` with :math:`V` the k x m frame. The loss of a
feature depends on the block only through the cosines :math:`c_{ij} = V_i \cdot V_j` it sees,
so each configuration is described by its frame and the multiset of cosines one vertex sees
(the same for every vertex: all the configurations here are vertex-transitive).

Capacity (theory §1) of an equal-norm vertex is :math:`C = 1 / \sum_j c_{ij}^2` (the sum
includes :math:`c_{ii} = 1`); a tight frame (:math:`V^\top V = (k/m) I`) has
:math:`\sum_j c_{ij}^2 = k/m`, hence :math:`C = m/k`, the dimensions per feature it uses.

Glossary: ``k`` (``size``) number of features of the block, ``m`` (``dimensions``) the
dimension it spans, ``V`` (``frame``) its k x m unit vectors, ``c`` a cosine, ``a`` squared
norm, ``h`` an antiprism's height.

Names follow the TMS write-ups: "dedicated" (one feature alone in a dimension), "digon"
(antipodal pair), "triangle", "tetrahedron", "5-cell", "pentagon", "hexagon", "square
antiprism", "cube", "icosahedron"; "ignored" is the pseudo-configuration of a feature with
:math:`W_i = 0`, which spans no dimension. A :class:`LargeFrame` is the model of one large
near-tight frame: no explicit vectors, only its size, dimension and Welch-bound cosines.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Configuration",
    "Ignored",
    "Dedicated",
    "Simplex",
    "Polygon",
    "Antiprism",
    "Cube",
    "Icosahedron",
    "LargeFrame",
    "CONFIGURATIONS",
    "TIGHT_HEIGHT",
]

#: Cosines closer than this are one value of the multiset, and a smaller magnitude is 0.
#: Constructions here are exact to a few ulps (~1e-16); the loss moves by ~this much when two
#: interference values this close are merged, far below any accuracy it is quoted to.
COSINE_TOL = 1e-12

#: Height of an antiprism whose frame is tight, :math:`h = 1/\sqrt3` (for any number of sides).
TIGHT_HEIGHT = 1.0 / math.sqrt(3.0)

_SIMPLEX_NAMES = {1: "digon", 2: "triangle", 3: "tetrahedron", 4: "5-cell"}
_POLYGON_NAMES = {3: "triangle", 4: "square", 5: "pentagon", 6: "hexagon", 7: "heptagon",
                  8: "octagon"}
_ANTIPRISM_NAMES = {3: "triangular antiprism", 4: "square antiprism", 5: "pentagonal antiprism"}


def group_values(values: np.ndarray, tol: float = COSINE_TOL) -> tuple[tuple[float, int], ...]:
    """Distinct values of ``values`` with their multiplicities, largest first.

    Values within ``tol`` of their sorted neighbour form one group, represented by its mean;
    a group whose mean is within ``tol`` of 0 is exactly 0.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if v.size == 0:
        return ()
    cuts = np.flatnonzero(np.abs(np.diff(v)) > tol) + 1
    groups = np.split(v, cuts)
    return tuple((0.0 if abs(float(g.mean())) <= tol else float(g.mean()), int(g.size))
                 for g in groups)


@dataclass(frozen=True)
class Configuration:
    r"""A block of k features as k unit vectors in m dimensions, scaled to one squared norm.

    Subclasses define :meth:`_vectors` (the k x m frame) and :attr:`name`; everything else is
    read off the frame.

    Notes
    -----
    The multiset of cosines is read from vertex 0's row of :math:`V V^\top`; the tests check
    every row has the same one (vertex-transitivity). Free parameters of a shape (an
    antiprism's height) are listed in :attr:`free_parameters` with their bounds, and set with
    :meth:`with_parameters`.
    """

    @property
    def name(self) -> str:
        raise NotImplementedError

    def _vectors(self) -> np.ndarray:
        raise NotImplementedError

    @functools.cached_property
    def frame(self) -> np.ndarray:
        """The k x m unit vectors, read-only."""
        V = np.array(self._vectors(), dtype=np.float64)
        V.flags.writeable = False
        return V

    @property
    def size(self) -> int:
        """k, the number of features in the block."""
        return self.frame.shape[0]

    @property
    def dimensions(self) -> int:
        """m, the dimension the block spans."""
        return self.frame.shape[1]

    @functools.cached_property
    def cosines(self) -> tuple[tuple[float, int], ...]:
        """The cosines one vertex sees with the other k - 1, as (cosine, multiplicity)."""
        return group_values(self.frame[1:] @ self.frame[0])

    @property
    def capacity(self) -> float:
        r"""Capacity of each feature, :math:`C = 1 / (1 + \sum_{j \ne i} c_{ij}^2)`."""
        if self.dimensions == 0:
            return 0.0
        return 1.0 / (1.0 + sum(n * c * c for c, n in self.cosines))

    @property
    def dimensions_per_feature(self) -> float:
        """m / k: the share of the block's subspace each feature uses (C for a tight frame)."""
        return self.dimensions / self.size

    @property
    def free_parameters(self) -> dict[str, tuple[float, float]]:
        """Shape parameters an energy may optimise, with their open bounds."""
        return {}

    def with_parameters(self, **values: float) -> Configuration:
        """The same configuration with the named free parameters set."""
        unknown = set(values) - set(self.free_parameters)
        if unknown:
            raise ValueError(f"{self.name} has free parameters {sorted(self.free_parameters)}, "
                             f"got {sorted(unknown)}")
        return dataclasses.replace(self, **values)

    def weights(self, norm_squared: float) -> np.ndarray:
        r"""The block's embedding :math:`W = \sqrt a\, V^\top`, shape (m, k), features last."""
        if not norm_squared >= 0:
            raise ValueError(f"norm_squared must be >= 0, got {norm_squared!r}")
        return math.sqrt(norm_squared) * self.frame.T

    def __repr__(self) -> str:
        return f"<{self.name}: {self.size} in {self.dimensions}>"


@dataclass(frozen=True, repr=False)
class Ignored(Configuration):
    """A feature left out, :math:`W_i = 0`: one feature, no dimension."""

    @property
    def name(self) -> str:
        return "ignored"

    def _vectors(self) -> np.ndarray:
        return np.zeros((1, 0))


@dataclass(frozen=True, repr=False)
class Dedicated(Configuration):
    """A feature alone in a dimension (C = 1)."""

    @property
    def name(self) -> str:
        return "dedicated"

    def _vectors(self) -> np.ndarray:
        return np.ones((1, 1))


@dataclass(frozen=True, repr=False)
class Simplex(Configuration):
    r"""The regular simplex: m + 1 unit vectors in m dimensions, every cosine :math:`-1/m`.

    Built as the standard basis of :math:`\mathbb R^{m+1}` minus its centroid, in an
    orthonormal basis of the plane :math:`\sum_i x_i = 0`; tight, C = m/(m + 1).
    """

    dims: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.dims, int) or self.dims < 1:
            raise ValueError(f"dims must be an int >= 1, got {self.dims!r}")

    @property
    def name(self) -> str:
        return _SIMPLEX_NAMES.get(self.dims, f"{self.dims}-simplex")

    def _vectors(self) -> np.ndarray:
        k = self.dims + 1
        centred = np.eye(k) - 1.0 / k
        # The last k - 1 left singular vectors of the centred basis span the plane sum x = 0.
        basis = np.linalg.svd(centred)[0][:, : self.dims]
        V = centred @ basis
        return V / np.linalg.norm(V, axis=1, keepdims=True)


@dataclass(frozen=True, repr=False)
class Polygon(Configuration):
    r"""k unit vectors at equal angles in the plane, :math:`V_i = (\cos 2\pi i/k, \sin 2\pi i/k)`.

    Tight for k >= 3 (C = 2/k). Even k contains antipodal pairs.
    """

    sides: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.sides, int) or self.sides < 3:
            raise ValueError(f"sides must be an int >= 3, got {self.sides!r}")

    @property
    def name(self) -> str:
        return _POLYGON_NAMES.get(self.sides, f"{self.sides}-gon")

    def _vectors(self) -> np.ndarray:
        t = 2 * np.pi * np.arange(self.sides) / self.sides
        return np.stack([np.cos(t), np.sin(t)], axis=1)


@dataclass(frozen=True, repr=False)
class Antiprism(Configuration):
    r"""Two staggered n-gons at heights :math:`\pm h`: 2n unit vectors in 3 dimensions.

    :math:`V_j = (r \cos(j\pi/n), r \sin(j\pi/n), (-1)^j h)`, :math:`r^2 = 1 - h^2`. The frame
    operator is :math:`\mathrm{diag}(n r^2, n r^2, 2n h^2)`, tight iff :math:`h^2 = 1/3`
    (:data:`TIGHT_HEIGHT`, the default), when C = 3/(2n). Vertex 0 sees cosines
    :math:`r^2 \cos(j\pi/n) + (-1)^j h^2`. The height is a free parameter of the energy; the
    max-min-angle square antiprism (h ~ 0.52) is not tight (C ~ 0.366, not 3/8).
    """

    sides: int = 4
    height: float = TIGHT_HEIGHT

    def __post_init__(self) -> None:
        if not isinstance(self.sides, int) or self.sides < 3:
            raise ValueError(f"sides must be an int >= 3, got {self.sides!r}")
        if not 0.0 < self.height < 1.0:
            raise ValueError(f"height must be in (0, 1), got {self.height!r}")

    @property
    def name(self) -> str:
        return _ANTIPRISM_NAMES.get(self.sides, f"{self.sides}-antiprism")

    @property
    def free_parameters(self) -> dict[str, tuple[float, float]]:
        return {"height": (0.0, 1.0)}

    def _vectors(self) -> np.ndarray:
        j = np.arange(2 * self.sides)
        t = np.pi * j / self.sides
        r = math.sqrt(1.0 - self.height**2)
        return np.stack([r * np.cos(t), r * np.sin(t), self.height * (-1.0) ** j], axis=1)

    def __repr__(self) -> str:
        return f"<{self.name}: {self.size} in 3, height {self.height:.6g}>"


@dataclass(frozen=True, repr=False)
class Cube(Configuration):
    r"""The 8 vertices :math:`(\pm1, \pm1, \pm1)/\sqrt3`: tight, C = 3/8, cosines
    :math:`\pm 1/3` (3 each) and -1 (its antipode)."""

    @property
    def name(self) -> str:
        return "cube"

    def _vectors(self) -> np.ndarray:
        signs = np.array([[(i >> s) & 1 for s in range(3)] for i in range(8)], dtype=float)
        return (1.0 - 2.0 * signs) / math.sqrt(3.0)


@dataclass(frozen=True, repr=False)
class Icosahedron(Configuration):
    r"""The 12 vertices, cyclic permutations of :math:`(0, \pm1, \pm\varphi)`, normalised:
    tight, C = 1/4, cosines :math:`\pm 1/\sqrt5` (5 each) and -1."""

    @property
    def name(self) -> str:
        return "icosahedron"

    def _vectors(self) -> np.ndarray:
        phi = (1 + math.sqrt(5)) / 2
        base = [(0.0, s1, s2 * phi) for s1 in (1.0, -1.0) for s2 in (1.0, -1.0)]
        V = np.array([np.roll(v, shift) for shift in range(3) for v in base])
        return V / np.linalg.norm(V, axis=1, keepdims=True)


@dataclass(frozen=True)
class LargeFrame:
    r"""The model of one large near-tight frame: k unit vectors in m < k dimensions.

    Its cosines are not listed: each of the k - 1 others is taken at the Welch bound,
    :math:`|c| = \sqrt{(k - m)/(m (k - 1))}`, with a sign + or - equally likely
    (:mod:`capopt.tms.large_frames` says why). Tight: C = m/k.
    """

    size: int
    dimensions: int

    def __post_init__(self) -> None:
        if not (isinstance(self.size, int) and isinstance(self.dimensions, int)
                and 1 <= self.dimensions < self.size):
            raise ValueError("a large frame needs ints 1 <= dimensions < size, got "
                             f"size={self.size!r}, dimensions={self.dimensions!r}")

    @property
    def name(self) -> str:
        return f"frame {self.size} in {self.dimensions}"

    @property
    def coherence(self) -> float:
        r"""The Welch bound :math:`\sqrt{(k - m)/(m (k - 1))}`, the common :math:`|c|`."""
        k, m = self.size, self.dimensions
        return math.sqrt((k - m) / (m * (k - 1)))

    @property
    def capacity(self) -> float:
        """m / k (a unit-norm tight frame)."""
        return self.dimensions / self.size

    @property
    def dimensions_per_feature(self) -> float:
        """m / k."""
        return self.dimensions / self.size

    @property
    def free_parameters(self) -> dict[str, tuple[float, float]]:
        return {}


#: The named configurations, by the name TMS users give them.
CONFIGURATIONS: dict[str, Configuration] = {
    c.name: c
    for c in (
        Ignored(), Dedicated(), Simplex(1), Simplex(2), Simplex(3), Simplex(4),
        Polygon(5), Polygon(6), Antiprism(4), Antiprism(5), Cube(), Icosahedron(),
    )
}

"""Embeddings with known capacities, built from their geometric definition (theory §1)."""

import numpy as np


def polygon(k: int) -> np.ndarray:
    """k unit vectors at equal angles in the plane: a tight frame for k >= 3 (C = 2/k)."""
    t = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(t), np.sin(t)])


def tetrahedron() -> np.ndarray:
    """Regular tetrahedron's vertices, unit norm: a tight frame of 4 vectors in R^3 (C = 3/4)."""
    V = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float).T
    return V / np.sqrt(3)


def square_antiprism() -> np.ndarray:
    """Square antiprism with the tight-frame height: 8 unit vectors in R^3 (C = 3/8).

    Vertices (r cos(k pi/4), r sin(k pi/4), (-1)^k h): the frame operator is diagonal with
    entries 4 r^2, 4 r^2, 8 h^2, tight when r^2 = 2/3 and h^2 = 1/3.
    """
    k = np.arange(8)
    r, h = np.sqrt(2 / 3), np.sqrt(1 / 3)
    return np.stack([r * np.cos(k * np.pi / 4), r * np.sin(k * np.pi / 4), h * (-1.0) ** k])


def random_orthogonal(n: int, rng) -> np.ndarray:
    """Haar-random orthogonal matrix (QR of a Gaussian with the sign fix)."""
    Q, R = np.linalg.qr(rng.normal(size=(n, n)))
    return Q * np.sign(np.diag(R))


def block_semi_orthogonal(block_dims, block_sizes, rng) -> np.ndarray:
    """d x N embedding whose features form blocks spanning mutually orthogonal subspaces.

    Block b has ``block_sizes[b] >= block_dims[b]`` features: the first ``block_dims[b]``
    rows of a random orthogonal matrix (orthonormal rows, so W_b W_b^T = I on its subspace),
    scaled by a random factor and placed in its own slice of a random orthonormal basis.
    A draw in which some feature of a block is within ``MIN_COUPLING`` of orthogonal to all
    the others is redrawn: that feature would genuinely form a block of its own (found by
    hypothesis: a 4-feature frame in 3 dimensions whose fourth column had |cos| < 1e-3).
    """
    d = sum(block_dims)
    basis = random_orthogonal(d, rng)
    columns, start = [], 0
    for dim, size in zip(block_dims, block_sizes):
        frame = _coupled_frame(dim, size, rng) * rng.uniform(0.5, 2.0)
        columns.append(basis[:, start:start + dim] @ frame)
        start += dim
    return np.concatenate(columns, axis=1)


#: Smallest largest-|cos| of a feature with the rest of its block in constructed blocks;
#: well above the default grouping tolerance of ``capopt.blocks`` (1e-3).
MIN_COUPLING = 0.05


def _coupled_frame(dim: int, size: int, rng) -> np.ndarray:
    """dim x size frame with orthonormal rows in which no column is orthogonal to the rest."""
    while True:
        frame = random_orthogonal(size, rng)[:dim]
        if size == dim:
            return frame
        unit = frame / np.linalg.norm(frame, axis=0)
        cos = np.abs(unit.T @ unit) - np.eye(size)
        if cos.max(axis=1).min() >= MIN_COUPLING:
            return frame

"""Type aliases of the public API's annotations.

``ArrayLike`` is numpy's: anything :func:`numpy.asarray` accepts (lists, arrays, objects with
``__array__`` such as CPU torch tensors). The rest name what the public functions accept
for seeds and paths.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = ["ArrayLike", "DTypeLike", "PathLike", "RandomSeed", "Seed"]

#: A seed of batched training: an int, one int per instance, or None (fresh entropy).
Seed = int | Sequence[int] | None

#: A seed of one random draw: an int, a generator, or None (fresh entropy).
RandomSeed = int | np.random.Generator | None

#: A file path.
PathLike = str | os.PathLike[str]

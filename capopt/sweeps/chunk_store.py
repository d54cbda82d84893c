"""The finished chunks of a sweep on disk, so that a sweep started again resumes.

A :class:`ChunkStore` directory holds ``manifest.json`` (everything that fixes the chunks'
contents, see :func:`manifest`) and one ``chunk-<index>.npz`` per finished chunk, each
written atomically (:func:`capopt._atomic.atomic_write`), so an interrupted sweep leaves
only whole chunks behind. A directory holding another sweep is refused.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .._atomic import atomic_write

__all__ = ["ChunkStore", "manifest", "FIELDS", "SENSITIVITY_FIELDS"]

#: Version of the checkpoint layout; a directory of another version is refused.
FORMAT = 1
MANIFEST = "manifest.json"

#: What a chunk holds, in the order the chunk solver returns it.
FIELDS = ("capacity", "multiplier", "loss", "counts")
#: What a chunk of a sweep with sensitivities holds besides.
SENSITIVITY_FIELDS = ("multiplier_d_budget", "capacity_d_budget", "capacity_d_kurtosis",
                      "capacity_d_decay", "margins")


def manifest(grid: dict, base: str, chunk_size: int, atol: float, width: int,
             sensitivities: bool = False) -> dict:
    """Everything that fixes the chunks' contents: a checkpoint must match it to be reused."""
    found = {"format": FORMAT, "chunk_size": chunk_size, "regime_atol": atol,
             "width": width, "grid": {k: x.tolist() for k, x in grid.items()}}
    if sensitivities:
        found["sensitivities"] = True
    if "density" in grid:
        found["base"] = base
    return found


class ChunkStore:
    """The finished chunks of one sweep in a directory (or nowhere, without one).

    One sweep at a time may use a directory.
    """

    def __init__(self, directory, manifest: dict):
        self.directory = None if directory is None else Path(directory)
        self.fields = FIELDS + (SENSITIVITY_FIELDS if manifest.get("sensitivities") else ())
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / MANIFEST
        if path.exists():
            found = json.loads(path.read_text())
            if found != manifest:
                raise ValueError(
                    f"checkpoint directory {str(self.directory)!r} holds a different sweep "
                    f"({found}); give a new directory, or delete this one to start over"
                )
        else:
            with atomic_write(path) as f:
                f.write(json.dumps(manifest, indent=1).encode())
        # Temporary files of a writer that was killed: never renamed, so never a chunk.
        for stale in self.directory.glob(".chunk-*.tmp"):
            stale.unlink(missing_ok=True)

    def _path(self, index: int) -> Path:
        assert self.directory is not None, "only a store with a directory has chunk files"
        return self.directory / f"chunk-{index:06d}.npz"

    def finished(self, n_chunks: int) -> list[int]:
        """Indices of the chunks already on disk."""
        if self.directory is None:
            return []
        return [i for i in range(n_chunks) if self._path(i).exists()]

    def load(self, index: int):
        with np.load(self._path(index)) as z:
            return tuple(z[k] for k in self.fields)

    def save(self, index: int, result) -> None:
        if self.directory is None:
            return
        buffer = io.BytesIO()
        np.savez(buffer, **dict(zip(self.fields, result)))
        with atomic_write(self._path(index)) as f:
            f.write(buffer.getvalue())

"""The finished chunks of a sweep on disk, so that a sweep started again resumes.

A :class:`ChunkStore` directory holds ``manifest.json`` (everything that fixes the chunks'
contents, see :func:`manifest`) and one ``chunk-<index>.npz`` per finished chunk, each
written atomically (:func:`capopt._atomic.atomic_write`), so an interrupted sweep leaves
only whole chunks behind. A directory holding another sweep is refused, naming what differs;
so is a directory that another live sweep is using (its lock file ``.capopt.lock``, see
:mod:`capopt._folder_lock`), whose temporary chunks in flight are therefore never removed.

Every chunk file also carries a header: its index, the digest of the sweep's manifest, the
shape and dtype of each array and a SHA-256 checksum of the arrays' bytes. A chunk is
reused only if all of them are what this sweep expects at that index; a file that is
truncated, corrupt, from another sweep or in the wrong place (a chunk copied over another)
is reported by name in a :class:`CheckpointWarning` and solved again, never merged.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from .._folder_lock import FolderLock
from .._typing import PathLike

__all__ = ["ChunkStore", "CheckpointWarning", "manifest", "FIELDS", "SENSITIVITY_FIELDS"]

#: Version of the checkpoint layout; a directory of another version is refused.
#: 2: chunk files carry a header (index, sweep digest, shapes, checksum).
FORMAT = 2
MANIFEST = "manifest.json"

#: What a chunk holds, in the order the chunk solver returns it.
FIELDS = ("capacity", "multiplier", "loss", "counts")
#: What a chunk of a sweep with sensitivities holds besides.
SENSITIVITY_FIELDS = ("multiplier_d_budget", "capacity_d_budget", "capacity_d_kurtosis",
                      "capacity_d_decay", "margins")
#: The name of a chunk file's header (not a field).
HEADER = "__chunk__"


class CheckpointWarning(UserWarning):
    """A checkpointed chunk could not be trusted and is solved again (the message says why)."""


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


def _digest(*parts: bytes) -> str:
    """SHA-256 of the concatenated ``parts``, in hex."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def _checksum(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 over each array's dtype, shape and C-order bytes, in order."""
    parts = []
    for x in arrays:
        x = np.ascontiguousarray(x)
        parts += [x.dtype.str.encode(), repr(x.shape).encode(), x.tobytes()]
    return _digest(*parts)


def _differences(found: dict, expected: dict, prefix: str = "") -> list[str]:
    """The keys (dotted, for nested dicts) whose values differ, with both values."""
    out = []
    for key in sorted(set(found) | set(expected)):
        name = f"{prefix}{key}"
        there, here = found.get(key, "absent"), expected.get(key, "absent")
        if isinstance(there, dict) and isinstance(here, dict):
            out += _differences(there, here, f"{name}.")
        elif there != here:
            out.append(f"{name} is {there} there, {here} here")
    return out


class ChunkStore:
    """The finished chunks of one sweep in a directory (or nowhere, without one).

    One sweep at a time may use a directory: the store holds the directory's
    :class:`~capopt._folder_lock.FolderLock` from its creation until :meth:`close` (the end
    of a ``with`` block, or the store's garbage collection).

    Parameters
    ----------
    directory : path-like or None
        Created if missing; ``None`` keeps nothing.
    manifest : dict
        From :func:`manifest`: what this sweep's chunks depend on.

    Raises
    ------
    capopt._folder_lock.FolderInUseError
        If another live process is using the directory (the message names it and the pid).
    ValueError
        If the directory's ``manifest.json`` is unreadable, of another format, or describes
        another sweep (the message names the file and the parameters that differ).
    """

    def __init__(self, directory: PathLike | None, manifest: dict):
        self.directory = None if directory is None else Path(directory)
        self.manifest = manifest
        self.fields = FIELDS + (SENSITIVITY_FIELDS if manifest.get("sensitivities") else ())
        self.sweep_digest = _digest(json.dumps(manifest, sort_keys=True).encode())
        self._lock: FolderLock | None = None
        if self.directory is None:
            return
        # Before anything there is written or removed: another sweep may be using it.
        self._lock = FolderLock(self.directory).acquire()
        path = self.directory / MANIFEST
        try:
            if path.exists():
                self._check_manifest(path)
            else:
                with atomic_write(path) as f:
                    f.write(json.dumps(manifest, indent=1).encode())
        except BaseException:
            self.close()
            raise
        # Temporary files of a writer that was killed (a live one would hold the lock):
        # never renamed, so never a chunk.
        for stale in self.directory.glob(".chunk-*.tmp"):
            stale.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the directory to other sweeps: the sweep is over (done or abandoned)."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> ChunkStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_manifest(self, path: Path) -> None:
        """Refuse a manifest that is not this sweep's, saying what is wrong with it."""
        fix = "give a new directory, or delete this one to start over"
        try:
            found = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"checkpoint manifest {str(path)!r} is unreadable ({exc}); {fix}") from None
        if not isinstance(found, dict) or not isinstance(found.get("grid"), dict):
            raise ValueError(f"checkpoint manifest {str(path)!r} is not a capopt sweep manifest "
                             f"(expected an object with a 'grid', got {str(found)[:80]}); {fix}")
        if found.get("format") != FORMAT:
            raise ValueError(
                f"checkpoint manifest {str(path)!r} is of checkpoint format {found.get('format')}, "
                f"this capopt reads format {FORMAT}; {fix}"
            )
        differences = _differences(found, self.manifest)
        if differences:
            raise ValueError(
                f"checkpoint directory {str(self.directory)!r} holds a different sweep "
                f"(its {MANIFEST}: {'; '.join(differences)}); {fix}"
            )

    def _path(self, index: int) -> Path:
        assert self.directory is not None, "only a store with a directory has chunk files"
        return self.directory / f"chunk-{index:06d}.npz"

    def _rows(self, index: int, n_problems: int) -> int:
        """Problems in chunk ``index`` of a sweep of ``n_problems``."""
        size = self.manifest["chunk_size"]
        return min(size, n_problems - index * size)

    def finished(self, n_problems: int) -> dict[int, tuple]:
        """The chunks already on disk that can be trusted, by index.

        A chunk file that fails a check is reported in a :class:`CheckpointWarning` naming
        the file and the failed check, and left out (so it is solved again and rewritten).
        """
        if self.directory is None:
            return {}
        size = self.manifest["chunk_size"]
        found = {}
        for index in range(-(-n_problems // size)):
            path = self._path(index)
            if not path.exists():
                continue
            arrays, problem = self._read(path, index, self._rows(index, n_problems))
            if problem:
                warnings.warn(f"checkpoint chunk {str(path)!r} {problem}; solving chunk {index} again",
                              CheckpointWarning, stacklevel=3)
            else:
                found[index] = arrays
        return found

    def _read(self, path: Path, index: int, rows: int) -> tuple[tuple, str]:
        """(arrays, "") for a chunk that passes every check, else ((), what failed)."""
        try:
            # Opened here: np.load leaves a file it opened itself open when it is no zip.
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                if HEADER not in z.files:
                    return (), "has no chunk header (not written by this version of capopt)"
                header = json.loads(str(z[HEADER]))
                if not isinstance(header, dict):
                    return (), f"has a malformed chunk header ({str(header)[:80]})"
                missing = [k for k in self.fields if k not in z.files]
                if missing:
                    return (), f"lacks the arrays {missing}"
                arrays = tuple(z[k] for k in self.fields)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            return (), f"is unreadable, truncated or corrupt ({type(exc).__name__}: {exc})"
        if header.get("index") != index:
            return (), (f"holds chunk {header.get('index')}, not chunk {index} "
                        "(a file copied or renamed into the wrong place)")
        if header.get("sweep") != self.sweep_digest:
            return (), "belongs to a different sweep (its manifest digest differs)"
        shapes = [list(x.shape) for x in arrays]
        if header.get("shapes") != shapes:
            return (), f"holds arrays of shapes {shapes}, its header says {header.get('shapes')}"
        if any(x.shape[:1] != (rows,) for x in arrays) or arrays[0].shape[1:] != (self.manifest["width"],):
            return (), (f"holds arrays of shapes {shapes}, chunk {index} has {rows} problems "
                        f"of width {self.manifest['width']}")
        if header.get("sha256") != _checksum(arrays):
            return (), "does not match its checksum (its contents changed after it was written)"
        return arrays, ""

    def save(self, index: int, result: Sequence[np.ndarray]) -> None:
        """Write chunk ``index`` (the arrays of :attr:`fields`, in order) with its header."""
        if self.directory is None:
            return
        header = {"index": index, "sweep": self.sweep_digest,
                  "shapes": [list(np.shape(x)) for x in result],
                  "sha256": _checksum(result)}
        arrays = dict(zip(self.fields, result), **{HEADER: np.array(json.dumps(header))})
        buffer = io.BytesIO()
        # numpy's stub types savez's **kwds like its keyword options (bool), not as arrays.
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        with atomic_write(self._path(index)) as f:
            f.write(buffer.getvalue())

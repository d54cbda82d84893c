"""Checkpoints and progress for long training runs.

A checkpoint is one ``.npz`` file: the arrays of the run's state plus a JSON header
(``__meta__``) with the step, the random-generator states and a fingerprint of the run's
configuration. It is written with :func:`capopt._atomic.atomic_write`, so an interrupted
write never leaves a truncated checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .._atomic import atomic_write
from .._typing import PathLike

__all__ = ["save_checkpoint", "load_checkpoint", "fingerprint", "progress_bar", "CheckpointError"]

_META = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: unreadable, or written by another configuration.

    The message names the file; nothing is read from it into the run.
    """


def fingerprint(config: dict) -> str:
    """SHA-256 of a JSON-able configuration: equal iff the configurations are equal."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(path: PathLike, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` atomically.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.npz"
    >>> save_checkpoint(path, {"W": np.eye(2)}, {"step": 5})
    >>> arrays, meta = load_checkpoint(path)
    >>> meta["step"], arrays["W"].shape
    (5, (2, 2))
    """
    path = Path(path)
    if _META in arrays:
        raise ValueError(f"array name {_META!r} is reserved for the checkpoint header")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        # numpy's stub types savez's **kwds like its keyword options (bool), not as arrays.
        np.savez(f, **arrays, **{_META: np.array(json.dumps(meta))})  # type: ignore[arg-type]


def load_checkpoint(path: PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(arrays, meta)``.

    Raises
    ------
    CheckpointError
        If the file is not a whole checkpoint (truncated, not an ``.npz``, no header).
    """
    try:
        # The file opened here, so that it is closed also when numpy cannot read it.
        with open(Path(path), "rb") as fh, np.load(fh, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k != _META}
            meta = json.loads(str(f[_META]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read "
                              f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has no header")
    return arrays, meta


def progress_bar(total: int, *, initial: int = 0, enabled: bool = True,
                 desc: str | None = None) -> tqdm:
    """A tqdm bar over training steps (a no-op object when ``enabled`` is false)."""
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step",
                dynamic_ncols=True, mininterval=0.5)

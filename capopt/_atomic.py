"""The one way capopt writes a file that must never be seen half-written.

:func:`atomic_write` opens a temporary file beside the target (so the rename stays on one
filesystem), lets the caller write into it, pushes the bytes to the disk (``fsync``) and
renames the file over the target with :func:`os.replace` (atomic on POSIX and Windows). A
reader, or a run interrupted at any point, sees the old file or the new one, never a part.
Used by the sweep checkpoints and datasets and by the training checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ._typing import PathLike

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[BinaryIO]:
    """Context manager: a binary file whose contents replace ``path`` when the block ends.

    The temporary file ``.<stem>-<random>.tmp`` is created with the user's umask, like any
    other file; if the block raises, it is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.bin"
    >>> with atomic_write(path) as f:
    ...     _ = f.write(b"complete")
    >>> path.read_bytes()
    b'complete'
    """
    path = Path(path)
    tmp = path.parent / f".{path.stem}-{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

"""One run at a time in a folder that keeps a run's state.

A sweep's checkpoint folder (:class:`capopt.sweeps.chunk_store.ChunkStore`) and the
``checkpoints/`` folder of ``capopt reproduce`` (:func:`capopt.report.reproduce`) are each
written by one run at a time: a second run on the same folder would delete the first one's
temporary files in flight, or overwrite its checkpoints as they are written. A run therefore
holds the folder's :class:`FolderLock` for as long as it uses the folder, and a second run is
refused with :class:`FolderInUseError`, naming the folder and the process that holds it.

The lock is ``fcntl.flock`` on the lock file ``<folder>/.capopt.lock``, held by its open
descriptor, so the operating system releases it when the holder's process ends however it
ends (an exception, ``kill -9``, a crash): a lock file left behind by a dead run is stale and
simply taken over. The file records the holder's pid, host and start time for the refusal; it
stays in the folder, empty, between runs (removing it would let two runs lock two different
files of the same name).
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
import weakref
from pathlib import Path

from ._typing import PathLike

__all__ = ["FolderLock", "FolderInUseError", "LOCK_FILE"]

#: The lock file's name in the locked folder.
LOCK_FILE = ".capopt.lock"

#: (device, inode) of each folder this process holds -> [lock file descriptor, holders].
_HELD: dict[tuple[int, int], list[int]] = {}
#: Reentrant: a holder's finalizer may run (garbage collection) while another holds it.
_GUARD = threading.RLock()


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's lock (the message names the folder and its pid)."""


class FolderLock:
    """This process's hold on a folder, so that no other run uses it meanwhile.

    ``with FolderLock(folder): ...`` holds it for the block, exception or not; an object that
    outlives a block calls :meth:`acquire` and :meth:`release` (which its garbage collection
    also calls).

    Parameters
    ----------
    folder : str or os.PathLike
        The folder; created, with its parents, if missing.
    what : str, default "checkpoint folder"
        What the folder is, for the messages.

    Raises
    ------
    FolderInUseError
        From :meth:`acquire`, if another process holds the folder: the message names the
        folder, the holder's pid, host and start time, and the fix.

    Warns
    -----
    RuntimeWarning
        From :meth:`acquire`, where the folder cannot be locked (a file system without
        ``flock``, such as NFS without its lock daemon; a platform without ``fcntl``; a
        folder this process may not write in): the folder is then used unlocked.

    Notes
    -----
    A process does not exclude itself: acquiring a folder that it already holds shares the
    hold, and the folder is free once every holder has released it. So a sweep interrupted
    in a notebook, whose traceback still references the interrupted run, can be started
    again at once. A child forked while the lock is held (a process pool's worker) closes
    its inherited copy of the descriptor, so that it cannot keep the folder locked after the
    holder has ended.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with FolderLock(folder) as lock:
    ...     lock.path.name
    '.capopt.lock'
    """

    def __init__(self, folder: PathLike, what: str = "checkpoint folder"):
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_FILE
        self._release: weakref.finalize | None = None

    def acquire(self) -> FolderLock:
        """Take the folder, unless this object holds it already; returns the lock itself."""
        if self._release is not None and self._release.alive:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        stat = os.stat(self.folder)
        key = (stat.st_dev, stat.st_ino)
        with _GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
            else:
                try:
                    _HELD[key] = [_lock(self.path, f"{self.what} {str(self.folder)!r}"), 1]
                except _CannotLock as exc:
                    warnings.warn(f"{self.what} {str(self.folder)!r} cannot be locked ({exc}); "
                                  "it is used unlocked, so make sure that no other run uses it "
                                  "at the same time", RuntimeWarning, stacklevel=2)
                    return self
        self._release = weakref.finalize(self, _drop, key, os.getpid())
        return self

    def release(self) -> None:
        """Give the hold back (at most once; nothing if it was never taken)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class _CannotLock(Exception):
    """The folder cannot be locked here (the message says why); it is used unlocked."""


def _lock(path: Path, folder: str) -> int:
    """Lock the file at ``path`` and record this process in it; its descriptor.

    Raises FolderInUseError if another process holds it (``folder`` names the folder in the
    message), _CannotLock where it cannot be locked.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        raise _CannotLock("this platform has no fcntl.flock") from None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _CannotLock(f"its lock file cannot be created: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise FolderInUseError(_refusal(folder, holder)) from None
    except OSError as exc:
        os.close(fd)
        raise _CannotLock(f"the file system refuses flock: {exc.strerror}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                              "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}).encode(), 0)
    return fd


def _holder(fd: int) -> dict:
    """What the lock file at ``fd`` says of its holder (empty if it has not said yet)."""
    try:
        found = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _refusal(folder: str, holder: dict) -> str:
    """The message refusing ``folder`` to a second run, naming its holder."""
    pid, host, started = holder.get("pid"), holder.get("host"), holder.get("started")
    here = host in (None, os.uname().nodename)
    who = f"process {pid}" if pid else "another process"
    if host and not here:
        who += f" on host {host}"
    if started:
        who += f" (started {started})"
    if isinstance(pid, int) and here and not _alive(pid):
        who += f"; process {pid} has ended, but a process it started still holds the lock"
    return (f"{folder} is in use by {who}: one run at a time may use it; wait for that run "
            "to end or stop it, or give another folder")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (POSIX: signal 0 tests, sends nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _drop(key: tuple[int, int], pid: int) -> None:
    """Drop one of process ``pid``'s holds on the folder ``key``; unlock at the last."""
    if os.getpid() != pid:  # a forked child's copy of the holder: the hold is the parent's
        return
    import fcntl

    with _GUARD:
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            fd = _HELD.pop(key)[0]
            os.ftruncate(fd, 0)  # between runs the lock file names no holder
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _forget_after_fork() -> None:
    """In a forked child: close the inherited lock descriptors (the locks stay the parent's)."""
    global _GUARD
    _GUARD = threading.RLock()  # another thread may have held it at the fork
    for fd, _ in _HELD.values():
        os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)

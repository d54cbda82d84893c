"""One run at a time per checkpoint folder (issue 20, item 6): ``capopt._folder_lock`` and its
two users, the sweep's chunk store and ``reproduce``'s ``checkpoints/`` folder.

The second run of each pair below is a process of its own (a subprocess, or a forked child),
as a second ``capopt sweep`` in another terminal would be.
"""

import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import capopt.report.build as build
import capopt.sweeps.grid as grid_module
from capopt._folder_lock import LOCK_FILE, FolderInUseError, FolderLock
from capopt.cli import main
from capopt.report import QUICK, reproduce
from capopt.sweeps import sweep
from capopt.sweeps.chunk_store import ChunkStore, manifest

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))

#: Run by the process that holds a folder: takes the lock, says so, waits for a line on stdin.
HOLDER = """
import sys
from capopt._folder_lock import FolderLock
with FolderLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""

#: Run by a holder that forks: a child that tries the folder and says what it was told, then
#: a worker that outlives the holder (the test kills the holder), whose pid it prints.
FORKING_HOLDER = """
import multiprocessing, sys, time
from capopt._folder_lock import FolderInUseError, FolderLock

def try_to_lock(folder, answers):
    try:
        FolderLock(folder).acquire()
        answers.put("acquired")
    except FolderInUseError as exc:
        answers.put(str(exc))

def idle(answers):
    answers.put("up")  # the fork's handlers have run by now
    time.sleep(120)

folder, fork = sys.argv[1], multiprocessing.get_context("fork")
lock = FolderLock(folder).acquire()
print("held", flush=True)
answers = fork.Queue()
child = fork.Process(target=try_to_lock, args=(folder, answers))
child.start()
print(answers.get(timeout=60), flush=True)
child.join()
worker = fork.Process(target=idle, args=(answers,))
worker.start()
answers.get(timeout=60)
print(worker.pid, flush=True)
sys.stdin.readline()
"""

#: Run by the first of two ``capopt sweep`` processes: it stops while its first chunk is
#: half-written (its temporary file on disk) until the test sends a line on stdin.
PAUSED_SWEEP = """
import contextlib, sys
import capopt.sweeps.chunk_store as chunk_store
from capopt.cli import main

write = chunk_store.atomic_write

@contextlib.contextmanager
def paused(path):
    with write(path) as f:
        if path.name.startswith("chunk-"):
            print("writing", flush=True)
            sys.stdin.readline()
        yield f

chunk_store.atomic_write = paused
sys.exit(main(sys.argv[1:]))
"""

SWEEP_ARGS = ["sweep", "--n-features", "4", "--budget", "2", "--importance-decay", "0.9",
              "--kurtosis", "4", "5", "--no-figure"]
GRID = dict(n_features=4, budget=2, importance_decay=0.9, kurtosis=[4.0, 5.0])


@contextlib.contextmanager
def another_process(script: str, *argv: str, ready: str):
    """Run ``script`` in a process of its own until it prints ``ready``; on leaving, send it a
    line and wait for it. Yields the process."""
    process = subprocess.Popen([sys.executable, "-c", script, *argv], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    try:
        assert process.stdout.readline().strip() == ready, "the other process did not start"
        yield process
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write("\n")
            process.stdin.close()
        process.wait(timeout=120)
        process.stdout.close()


def held(folder: Path) -> bool:
    """Whether anyone, this process included, holds ``folder``'s lock (tried on a descriptor
    of its own, which conflicts with every other)."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                             capture_output=True, text=True, check=True)
    return int(process.stdout)


# ---------------------------------------------------------------- the lock
def test_a_second_process_is_refused_naming_the_folder_and_the_pid(tmp_path):
    with another_process(HOLDER, str(tmp_path), ready="held") as first:
        with pytest.raises(FolderInUseError) as exc:
            FolderLock(tmp_path).acquire()
        message = str(exc.value)
        assert f"checkpoint folder '{tmp_path}' is in use by process {first.pid} (started " in message
        assert "give another folder" in message
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == first.pid
    assert not held(tmp_path)


def test_the_lock_is_released_when_the_run_ends_also_on_an_exception(tmp_path):
    with pytest.raises(KeyError), FolderLock(tmp_path):
        assert held(tmp_path)
        raise KeyError("the run fails")
    assert not held(tmp_path)
    assert (tmp_path / LOCK_FILE).read_text() == "", "the lock file still names a holder"

    lock = FolderLock(tmp_path).acquire()
    del lock  # an object holding the lock, dropped without release
    assert not held(tmp_path)


def test_a_killed_holders_lock_is_released_by_the_system(tmp_path):
    with another_process(HOLDER, str(tmp_path), ready="held") as first:
        first.kill()
        first.wait()
        with FolderLock(tmp_path):
            assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    pid = dead_pid()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
    with FolderLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_lock_still_held_for_an_ended_pid_says_so(tmp_path):
    # What a child that inherited the descriptor from a holder that has ended looks like.
    pid = dead_pid()
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, json.dumps({"pid": pid, "host": os.uname().nodename}).encode())
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(FolderInUseError, match=f"in use by process {pid}; process {pid} has ended, "
                                                   "but a process it started still holds the lock"):
            FolderLock(tmp_path).acquire()
    finally:
        os.close(fd)


def test_a_process_shares_its_own_hold_until_the_last_release(tmp_path):
    first, second = FolderLock(tmp_path).acquire(), FolderLock(tmp_path).acquire()
    first.release()
    first.release()  # a second release of the same object gives nothing more back
    assert held(tmp_path)
    second.release()
    assert not held(tmp_path)
    with first:  # taken again after its release
        assert held(tmp_path)
    assert not held(tmp_path)


def test_a_forked_child_neither_shares_nor_keeps_its_parents_lock(tmp_path):
    with another_process(FORKING_HOLDER, str(tmp_path), ready="held") as holder:
        assert f"in use by process {holder.pid}" in holder.stdout.readline()
        worker = int(holder.stdout.readline())
        try:
            holder.kill()  # no release: only the system can free the folder now
            holder.wait()
            os.kill(worker, 0)  # the worker forked while the lock was held still runs
            assert not held(tmp_path), "a forked worker kept its ended parent's folder locked"
        finally:
            os.kill(worker, signal.SIGKILL)


def test_a_file_system_that_cannot_lock_is_used_unlocked_with_a_warning(tmp_path, monkeypatch):
    def refuse(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    with monkeypatch.context() as patch:
        patch.setattr(fcntl, "flock", refuse)
        with pytest.warns(RuntimeWarning, match=f"checkpoint folder '{tmp_path}' cannot be locked "
                                                r"\(the file system refuses flock: No locks available\)"):
            lock = FolderLock(tmp_path).acquire()
        lock.release()
    assert not held(tmp_path)


# ---------------------------------------------------------------- sweeps
def test_a_second_sweep_exits_2_and_the_first_sweeps_temporary_chunk_survives(tmp_path, capsys):
    folder = tmp_path / "checkpoint"
    first_args = [*SWEEP_ARGS, "--checkpoint", str(folder), "--output", str(tmp_path / "first.nc")]
    with another_process(PAUSED_SWEEP, *first_args, ready="writing") as first:
        [in_flight] = folder.glob(".chunk-*.tmp")
        code = main([*SWEEP_ARGS, "--checkpoint", str(folder), "--output", str(tmp_path / "second.nc")])
        err = capsys.readouterr().err
        assert code == 2
        assert err.splitlines()[-1].startswith(
            f"capopt sweep: error: checkpoint folder '{folder}' is in use by process {first.pid}")
        assert in_flight.exists(), "the second sweep removed the first one's temporary chunk"
    assert first.returncode == 0
    assert list(folder.glob("chunk-*.npz")) and not list(folder.glob(".chunk-*.tmp"))
    assert not held(folder)


def test_sweep_removes_temporary_chunks_only_when_no_live_sweep_holds_them(tmp_path):
    in_flight = tmp_path / ".chunk-000000-0123456789ab.tmp"
    with another_process(HOLDER, str(tmp_path), ready="held") as first:
        in_flight.write_bytes(b"half a chunk")
        with pytest.raises(FolderInUseError, match=f"checkpoint folder '{tmp_path}' is in use by "
                                                   f"process {first.pid}"):
            sweep(**GRID, checkpoint=tmp_path)
        assert in_flight.exists()
    sweep(**GRID, checkpoint=tmp_path)  # the holder has ended: its temporary file is stale
    assert not in_flight.exists()


def test_a_sweep_releases_its_folder_when_it_ends_also_on_an_exception(tmp_path, monkeypatch):
    sweep(**GRID, checkpoint=tmp_path)
    assert not held(tmp_path)

    def fail(*args):
        raise ArithmeticError("a chunk fails")

    monkeypatch.setattr(grid_module, "_solve_chunk", fail)
    with pytest.raises(ArithmeticError):
        sweep(**GRID, checkpoint=tmp_path / "other")
    assert not held(tmp_path / "other")


def test_a_chunk_store_holds_its_folder_until_closed(tmp_path):
    with ChunkStore(tmp_path, manifest({}, "gaussian", 4, 0.0, 4)):
        assert held(tmp_path)
    assert not held(tmp_path)
    with pytest.raises(ValueError, match="holds a different sweep"):
        ChunkStore(tmp_path, manifest({}, "gaussian", 8, 0.0, 4))
    assert not held(tmp_path), "a store refused for its manifest kept the folder"


# ---------------------------------------------------------------- reproduce
def test_reproduce_is_refused_while_another_run_uses_its_checkpoints(tmp_path, capsys):
    checkpoints = tmp_path / build.CHECKPOINTS
    with another_process(HOLDER, str(checkpoints), ready="held") as first:
        code = main(["reproduce", "--quick", "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2
        assert err.splitlines()[-1].startswith(f"capopt reproduce: error: checkpoint folder "
                                               f"'{checkpoints}' is in use by process {first.pid} ")
        with pytest.raises(FolderInUseError, match=f"process {first.pid}"):
            reproduce(tmp_path, settings=QUICK, log=lambda line: None, progress=False)
    assert not (tmp_path / "figures").exists(), "the refused run wrote before it was refused"


def test_reproduce_releases_its_checkpoints_also_on_an_exception(tmp_path, monkeypatch):
    def fail(*args):
        raise ArithmeticError("a figure fails")

    monkeypatch.setattr(build, "_compile", fail)
    with pytest.raises(ArithmeticError):
        reproduce(tmp_path, settings=QUICK, log=lambda line: None, progress=False)
    assert not held(tmp_path / build.CHECKPOINTS)

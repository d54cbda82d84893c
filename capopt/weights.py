"""Embedding matrices trained elsewhere, read from ``.npy``, ``.npz`` and ``.safetensors`` files.

Glossary: ``W`` an embedding matrix as stored (its feature axis is chosen later, by
:func:`capopt.capacity`), ``key`` the name of one array in a file that holds several,
``listing`` each array's name with its shape and dtype.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from ._typing import PathLike

if TYPE_CHECKING:
    import zipfile

__all__ = ["load_weights"]

#: numpy's dtype for each safetensors dtype code that numpy can represent (the format stores
#: little-endian bytes). BF16 is read as its 16 raw bits and widened (:func:`_widen_bfloat16`).
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}

#: The bytes each format's files begin with; a file without them is reported as such,
#: rather than with the message of the reader that tried it.
_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK\x03\x04"}

#: Bit 0 of a zip member's general-purpose flags: the member is encrypted.
_ZIP_ENCRYPTED = 0x1

#: What a path that exists but is no regular file is, by its file type.
_NOT_REGULAR = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}

#: Each array of a file by name, described by its shape and dtype.
Listing = dict[str, str]


def load_weights(path: PathLike, key: str | None = None, *, mmap: bool = True,
                 max_bytes: int | None = None) -> np.ndarray:
    """Read an embedding matrix from a ``.npy``, ``.npz`` or ``.safetensors`` file.

    The array comes back in its stored dtype (float32 stays float32; nothing is converted to
    float64), except bfloat16, which numpy lacks and which becomes float32 exactly.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Its extension names the format: ``.npy`` (``numpy.save``), ``.npz``
        (``numpy.savez``) or ``.safetensors`` (``safetensors.numpy.save_file``, or the
        PyTorch writer of the same format).
    key : str, optional
        Name of the array, for a ``.npz`` or ``.safetensors`` file that holds several (a
        sparse-autoencoder checkpoint stores ``W_dec`` beside ``W_enc`` and the biases).
        Needed only when the file holds more than one array; a ``.npy`` file takes none.
    mmap : bool, default True
        Memory-map the array instead of reading it: a ``.npy`` file and a ``.safetensors``
        tensor come back as a read-only :class:`numpy.memmap`, so that a dictionary larger
        than memory can be measured in chunks. ``.npz`` members (possibly compressed) and
        bfloat16 tensors (which are widened) are always read into memory.
    max_bytes : int, optional
        The most bytes an array read into memory may take, checked against the size its
        file declares before anything is allocated or inflated (a small ``.npz`` can inflate
        to gigabytes). Default: the memory available now (Linux's ``MemAvailable``, lowered
        to a container's cgroup limit; elsewhere the free physical memory; no limit where
        the system says neither). Memory-mapped arrays are not counted.

    Returns
    -------
    numpy.ndarray
        The stored array, of the stored shape; read-only when memory-mapped.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or is a directory.
    ValueError
        If ``path`` is not a regular file (a named pipe, a device), the extension is none of
        the three, the file is not a valid file of its format (a header declaring more
        data than the file holds included), ``key`` is missing while the file holds several
        arrays (the message lists them), ``key`` names no array of the file (the message
        lists those it holds), the ``.npz`` member is no ``.npy`` array, is encrypted or is
        compressed in a way Python's ``zipfile`` cannot read (the message names the
        member), the array to read into memory declares more than ``max_bytes`` (the
        message gives both sizes), or ``max_bytes`` is negative.
    TypeError
        If ``key`` is not a string, ``mmap`` not a bool, ``max_bytes`` not an int, or the
        tensor's dtype has no numpy equivalent (the 8-bit float formats of safetensors).

    See Also
    --------
    capopt.capacity : the capacities of the loaded matrix.

    Notes
    -----
    A safetensors file is an 8-byte little-endian header length, a JSON header giving each
    tensor's dtype, shape and byte range, then the raw little-endian buffer. The file is first
    checked by the ``safetensors`` package (header, byte ranges covering the buffer exactly);
    the chosen tensor is then mapped straight from its byte range. A bfloat16 number is the
    upper half of the float32 of the same value, so shifting its 16 bits up by 16 gives that
    float32 without rounding. Memory: O(1) beyond the mapping when memory-mapped, one copy of
    the array otherwise (float32 for bfloat16), never more than ``max_bytes``.

    A memory-mapped array reads the file as it is when each page is touched: if the file is
    truncated or replaced in place while the array is in use (by a writer still saving it,
    say), touching a page past the new end kills the process with SIGBUS, which Python
    cannot catch. Load a file that may change with ``mmap=False``, which copies it into
    memory at once.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import capopt
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "sae.npz")
    >>> W_dec = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    >>> np.savez(path, W_dec=W_dec, b_dec=np.zeros(2, dtype=np.float32))
    >>> W = capopt.load_weights(path, key="W_dec")
    >>> W.dtype, W.shape
    (dtype('float32'), (2, 3))
    >>> capopt.capacity(W)
    array([0.5, 1. , 0.5])

    Without ``key`` the error lists the arrays to choose from:

    >>> capopt.load_weights(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: weights file '...sae.npz' holds 2 arrays; choose one with key=NAME ...
    """
    try:
        p = Path(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a str or None, got {type(key).__name__}")
    if not isinstance(mmap, bool):
        raise TypeError(f"mmap must be a bool, got {type(mmap).__name__}")
    cap = _MemoryCap.of(max_bytes)
    if not p.is_file():
        if p.is_dir():
            raise FileNotFoundError(f"weights file {str(p)!r} is a directory, not a file")
        if p.exists():
            kind = _NOT_REGULAR.get(stat.S_IFMT(p.stat().st_mode), "no regular file")
            raise ValueError(f"weights file {str(p)!r} is not a regular file: it is {kind}; "
                             "give the path of a .npy, .npz or .safetensors file")
        raise FileNotFoundError(f"weights file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise ValueError(
            f"weights file {str(p)!r} has extension {p.suffix!r}; load_weights reads "
            f"{', '.join(_READERS)} files (save the array with numpy.save to use another source)"
        )
    magic = _MAGIC.get(suffix)
    if magic is not None:
        with open(p, "rb") as fh:
            if fh.read(len(magic)) != magic:
                raise ValueError(f"weights file {str(p)!r} is not a {suffix} file: it does not "
                                 f"begin with the {suffix} signature {magic!r}")
    return reader(p, key, mmap, cap)


@dataclass(frozen=True)
class _MemoryCap:
    """The most bytes an array read into memory may take (None: no limit), and its source."""

    limit: int | None
    source: str

    @classmethod
    def of(cls, max_bytes: int | None) -> _MemoryCap:
        """The cap ``max_bytes`` sets (checked), or by default the memory available now."""
        if max_bytes is None:
            return cls(_available_memory(), "the memory available now")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
            raise TypeError(f"max_bytes must be an int or None, got {type(max_bytes).__name__}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        return cls(int(max_bytes), "max_bytes")

    def check(self, what: str, shape: tuple[int, ...], dtype: np.dtype, remedy: str) -> None:
        """Refuse ``what``, of ``shape`` and in-memory ``dtype``, if it would exceed the cap."""
        need = math.prod(shape) * dtype.itemsize
        if self.limit is not None and need > self.limit:
            raise ValueError(
                f"{what} would take {_size(need)} in memory (shape {shape}, {dtype}), more "
                f"than the {_size(self.limit)} allowed by {self.source}; {remedy}, or pass a "
                "larger max_bytes (--max-bytes on the command line) if the memory is there"
            )


def _size(n: int) -> str:
    """``n`` bytes, exactly and in binary units."""
    unit = max((u for u in range(1, 5) if n >= 1024 ** u), default=0)
    return f"{n} bytes" if unit == 0 else f"{n / 1024 ** unit:.1f} {'KMGT'[unit - 1]}iB ({n} bytes)"


def _available_memory() -> int | None:
    """Bytes of memory this process may allocate now; None where the system does not say.

    Linux's ``MemAvailable`` (free memory plus reclaimable caches), lowered to the room left
    under a cgroup v2 memory limit (a container's); elsewhere the free physical pages.
    """
    found = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as meminfo:
            found += [int(line.split()[1]) * 1024 for line in meminfo
                      if line.startswith("MemAvailable:")]
    with contextlib.suppress(OSError, ValueError):
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    if not found:
        with contextlib.suppress(AttributeError, OSError, ValueError):  # no os.sysconf on Windows
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return max(min(found), 0) if found else None


@contextlib.contextmanager
def _reading(what: str, kind: str) -> Iterator[None]:
    """Report a reader's failure on damaged data as a ValueError naming ``what`` it read
    (the file, or the member of an archive) and the ``kind`` of data it should be."""
    import lzma  # here, as json and struct below: `import capopt` need not load them
    import zipfile
    import zlib

    try:
        yield
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, lzma.LZMAError) as exc:
        raise ValueError(f"{what} is not a readable {kind}: {exc}") from exc


def _npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of the .npy stream ``fh``, leaving its data unread."""
    fmt = np.lib.format
    magic = fh.read(fmt.MAGIC_LEN)
    if not magic.startswith(fmt.MAGIC_PREFIX):
        raise ValueError(f"it does not begin with the .npy signature {fmt.MAGIC_PREFIX!r}")
    read_header = fmt.read_array_header_1_0 if magic[-2:] == b"\x01\x00" else fmt.read_array_header_2_0
    shape, _, dtype = read_header(fh)
    return shape, dtype


def _choose(p: Path, key: str | None, listing: Listing) -> str:
    """The name of the array to read: ``key``, or the only array of the file."""
    described = "".join(f"\n  {name} {description}" for name, description in listing.items())
    if key is None:
        if len(listing) == 1:
            return next(iter(listing))
        if not listing:
            raise ValueError(f"weights file {str(p)!r} holds no arrays")
        raise ValueError(
            f"weights file {str(p)!r} holds {len(listing)} arrays; choose one with key=NAME "
            f"(--key NAME on the command line):{described}"
        )
    if key not in listing:
        raise ValueError(f"key {key!r} names no array of weights file {str(p)!r}; it holds:{described}")
    return key


def _read_npy(p: Path, key: str | None, mmap: bool, cap: _MemoryCap) -> np.ndarray:
    if key is not None:
        raise ValueError(
            f"weights file {str(p)!r} is a .npy file, which holds a single array; pass no key "
            f"(got key={key!r}; keys name the arrays of .npz and .safetensors files)"
        )
    what = f"weights file {str(p)!r}"
    with _reading(what, ".npy file"), open(p, "rb") as fh:
        shape, dtype = _npy_header(fh)
        held = os.fstat(fh.fileno()).st_size - fh.tell()
    declared = math.prod(shape) * dtype.itemsize
    if declared > held and not dtype.hasobject:  # np.load refuses object arrays (pickles)
        raise ValueError(f"{what} is not a readable .npy file: its header declares shape "
                         f"{shape}, {dtype}, {_size(declared)} of data, and only {_size(held)} "
                         "follow it (a truncated file?)")
    if not mmap:
        cap.check(what, shape, dtype, "read it memory-mapped (mmap=True)")
    with _reading(what, ".npy file"):
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)


def _npz_header(p: Path, name: str, member: zipfile.ZipInfo,
                archive: zipfile.ZipFile) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``member`` (called ``name``) from its .npy header: nothing beyond
    the header is inflated.

    A member that is encrypted, compressed in a way ``zipfile`` cannot read or no ``.npy``
    array is refused with a ValueError naming the file and the member.
    """
    import zipfile

    what = f"member {name!r} of weights file {str(p)!r}"
    if member.flag_bits & _ZIP_ENCRYPTED:
        raise ValueError(f"{what} is encrypted; load_weights reads unencrypted members, as "
                         "numpy.savez writes them")
    try:
        fh = archive.open(member)
    except NotImplementedError as exc:  # a compression method or zip feature zipfile lacks
        # compressor_names is public in zipfile but absent from typeshed's stubs.
        method = zipfile.compressor_names.get(member.compress_type, "unknown")  # type: ignore[attr-defined]
        raise ValueError(
            f"{what} cannot be read by Python's zipfile ({exc}; compression method "
            f"{member.compress_type}, {method}); load_weights reads the members that "
            "numpy.savez and numpy.savez_compressed write"
        ) from None
    with fh, _reading(what, ".npy array"):
        return _npy_header(fh)


def _npz_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, as numpy.load names them (without the .npy suffix)."""
    return {info.filename.removesuffix(".npy"): info for info in archive.infolist()
            if not info.is_dir()}


def _read_npz(p: Path, key: str | None, mmap: bool, cap: _MemoryCap) -> np.ndarray:
    # mmap is moot: a member, possibly compressed, is always inflated into memory.
    import zipfile

    with _reading(f"weights file {str(p)!r}", ".npz file"):
        archive = zipfile.ZipFile(p)
    with archive:
        members = _npz_members(archive)
        if key is not None and key in members:
            name = key  # the listing is only read for an error message
        elif key is None and len(members) == 1:
            (name,) = members
        else:
            listing: Listing = {}
            for other, member in members.items():
                try:
                    shape, dtype = _npz_header(p, other, member, archive)
                    listing[other] = f"{shape} {dtype}"
                except ValueError:
                    listing[other] = "(not a readable .npy array: choose it with key= to see why)"
            name = _choose(p, key, listing)
        shape, dtype = _npz_header(p, name, members[name], archive)
        what = f"member {name!r} of weights file {str(p)!r}"
        cap.check(what, shape, dtype, "save the array with numpy.save to read it memory-mapped")
        with _reading(what, ".npy array"), archive.open(members[name]) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)


def _read_safetensors(p: Path, key: str | None, mmap: bool, cap: _MemoryCap) -> np.ndarray:
    import json
    import struct

    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(p), framework="numpy"):
            pass
    except SafetensorError as exc:
        raise ValueError(f"weights file {str(p)!r} is not a readable .safetensors file: {exc}") from exc
    with open(p, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    header.pop("__metadata__", None)
    listing: Listing = {name: f"{tuple(info['shape'])} {_dtype_name(info['dtype'])}"
                        for name, info in sorted(header.items())}
    name = _choose(p, key, listing)
    info = header[name]
    code, shape = info["dtype"], tuple(info["shape"])
    if code not in _SAFETENSORS_DTYPES:
        raise TypeError(
            f"tensor {name!r} of weights file {str(p)!r} has dtype {code}, which numpy cannot "
            f"represent; load_weights reads {', '.join(_SAFETENSORS_DTYPES)}"
        )
    what = f"tensor {name!r} of weights file {str(p)!r}"
    if code == "BF16":
        cap.check(what, shape, np.dtype(np.float32), "bfloat16 is widened to float32 in memory: "
                  "store the tensor as float16 or float32 to read it memory-mapped")
    elif not mmap:
        cap.check(what, shape, np.dtype(_SAFETENSORS_DTYPES[code]), "read it memory-mapped (mmap=True)")
    start, end = info["data_offsets"]
    if end == start:  # numpy cannot map zero bytes
        stored = np.empty(shape, dtype=_SAFETENSORS_DTYPES[code])
    else:
        stored = np.memmap(p, dtype=_SAFETENSORS_DTYPES[code], mode="r",
                           offset=8 + length + start, shape=shape)
    if code == "BF16":
        return _widen_bfloat16(stored)
    return stored if mmap else np.array(stored)


def _dtype_name(code: str) -> str:
    """numpy's name for a safetensors dtype code, where numpy has one."""
    if code == "BF16":
        return "bfloat16"
    return str(np.dtype(_SAFETENSORS_DTYPES[code])) if code in _SAFETENSORS_DTYPES else code


def _widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 numbers given as their 16-bit patterns (exact)."""
    wide = bits.astype(np.uint32)
    wide <<= 16
    return wide.view(np.float32)


_READERS = {".npy": _read_npy, ".npz": _read_npz, ".safetensors": _read_safetensors}

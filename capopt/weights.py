"""Embedding matrices trained elsewhere, read from ``.npy``, ``.npz`` and ``.safetensors`` files.

Glossary: ``W`` an embedding matrix as stored (its feature axis is chosen later, by
:func:`capopt.capacity`), ``key`` the name of one array in a file that holds several,
``listing`` each array's name with its shape and dtype.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._typing import PathLike

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

Listing = dict[str, tuple[tuple[int, ...], str]]


def load_weights(path: PathLike, key: str | None = None, *, mmap: bool = True) -> np.ndarray:
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

    Returns
    -------
    numpy.ndarray
        The stored array, of the stored shape; read-only when memory-mapped.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not an existing file.
    ValueError
        If the extension is none of the three, the file is not a valid file of its format,
        ``key`` is missing while the file holds several arrays (the message lists them), or
        ``key`` names no array of the file (the message lists those it holds).
    TypeError
        If ``key`` is not a string, ``mmap`` not a bool, or the tensor's dtype has no numpy
        equivalent (the 8-bit float formats of safetensors).

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
    the array otherwise (float32 for bfloat16).

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
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "does not exist"
        raise FileNotFoundError(f"weights file {str(p)!r} {what}")
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
    return reader(p, key, mmap)


@contextlib.contextmanager
def _reading(p: Path, suffix: str) -> Iterator[None]:
    """Report a reader's failure on a damaged file as a ValueError that names the file."""
    import zipfile  # here, as json and struct below: `import capopt` need not load them

    try:
        yield
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"weights file {str(p)!r} is not a readable {suffix} file: {exc}") from exc


def _choose(p: Path, key: str | None, listing: Listing) -> str:
    """The name of the array to read: ``key``, or the only array of the file."""
    described = "".join(f"\n  {name} {shape} {dtype}" for name, (shape, dtype) in listing.items())
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


def _read_npy(p: Path, key: str | None, mmap: bool) -> np.ndarray:
    if key is not None:
        raise ValueError(
            f"weights file {str(p)!r} is a .npy file, which holds a single array; pass no key "
            f"(got key={key!r}; keys name the arrays of .npz and .safetensors files)"
        )
    with _reading(p, ".npy"):
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)


def _npz_listing(archive: Any) -> Listing:
    """Shape and dtype of every member, from the members' headers (no data is read)."""
    listing: Listing = {}
    names = set(archive.zip.namelist())
    for name in archive.files:
        with archive.zip.open(f"{name}.npy" if f"{name}.npy" in names else name) as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(fh)
        listing[name] = (shape, str(dtype))
    return listing


def _read_npz(p: Path, key: str | None, mmap: bool) -> np.ndarray:
    # mmap is moot: numpy reads every .npz member into memory.
    with _reading(p, ".npz"):
        archive = np.load(p, allow_pickle=False)
    with archive:
        if key is not None and key in archive.files:
            name = key  # the listing is only read for an error message
        elif key is None and len(archive.files) == 1:
            name = archive.files[0]
        else:
            with _reading(p, ".npz"):
                listing = _npz_listing(archive)
            name = _choose(p, key, listing)
        with _reading(p, ".npz"):
            return archive[name]


def _read_safetensors(p: Path, key: str | None, mmap: bool) -> np.ndarray:
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
    listing: Listing = {name: (tuple(info["shape"]), _dtype_name(info["dtype"]))
                        for name, info in sorted(header.items())}
    name = _choose(p, key, listing)
    info = header[name]
    code, shape = info["dtype"], tuple(info["shape"])
    if code not in _SAFETENSORS_DTYPES:
        raise TypeError(
            f"tensor {name!r} of weights file {str(p)!r} has dtype {code}, which numpy cannot "
            f"represent; load_weights reads {', '.join(_SAFETENSORS_DTYPES)}"
        )
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

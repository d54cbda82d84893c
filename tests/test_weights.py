"""Weights from files: ``capopt.load_weights`` and ``capopt capacity FILE`` on each format."""

import io
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import capopt
from capopt import capacity, load_weights

from frames import polygon
from test_cli import run

ROOT = Path(__file__).resolve().parents[1]

FLOAT_DTYPES = [np.float64, np.float32, np.float16]


def embedding(dtype=np.float64, shape=(3, 7)) -> np.ndarray:
    """A generic embedding, exactly representable in ``dtype``."""
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """The bfloat16 patterns of float32 ``values`` whose low 16 bits are zero."""
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` in the format that ``path``'s extension names (a .npy file: the one array)."""
    if path.suffix == ".npy":
        (W,) = arrays.values()
        np.save(path, W)
    elif path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        save_file(arrays, str(path))


def write_safetensors_raw(path, tensors) -> None:
    """Write ``{name: (dtype code, shape, little-endian bytes)}`` in the safetensors layout:
    for the dtypes safetensors' numpy writer cannot produce (bfloat16, 8-bit floats)."""
    header, buffer = {}, b""
    for name, (code, shape, data) in tensors.items():
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [len(buffer), len(buffer) + len(data)]}
        buffer += data
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + buffer)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_npy_round_trip_keeps_the_stored_dtype(tmp_path, dtype, mmap):
    W = embedding(dtype)
    np.save(tmp_path / "W.npy", W)
    loaded = load_weights(tmp_path / "W.npy", mmap=mmap)
    assert loaded.dtype == dtype and isinstance(loaded, np.memmap) == mmap
    np.testing.assert_array_equal(loaded, W)


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_npz_round_trip_by_key(tmp_path, dtype, writer):
    W = embedding(dtype)
    writer(tmp_path / "sae.npz", W_dec=W, b_dec=np.zeros(3, dtype))
    loaded = load_weights(tmp_path / "sae.npz", key="W_dec")
    assert loaded.dtype == dtype
    np.testing.assert_array_equal(loaded, W)


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [np.int32, np.uint8])
def test_safetensors_round_trip_matches_the_reference_reader(tmp_path, dtype, mmap):
    W = embedding(dtype)
    path = tmp_path / "sae.safetensors"
    save_file({"W_dec": W, "W_enc": embedding(dtype, (7, 3)), "b_dec": np.ones(3, dtype)}, str(path))
    reference = load_file(str(path))
    for name in reference:
        loaded = load_weights(path, key=name, mmap=mmap)
        assert loaded.dtype == reference[name].dtype and isinstance(loaded, np.memmap) == mmap
        np.testing.assert_array_equal(loaded, reference[name])


def test_single_array_files_need_no_key(tmp_path):
    W = embedding(np.float32)
    for suffix in (".npy", ".npz", ".safetensors"):
        save(tmp_path / f"W{suffix}", {"W": W})
        np.testing.assert_array_equal(load_weights(tmp_path / f"W{suffix}"), W)


@pytest.mark.parametrize("mmap", [True, False])
def test_bfloat16_widens_to_the_same_float32_values(tmp_path, mmap):
    # Values whose low 16 float32 bits are zero are exactly bfloat16: the widening must give
    # them back bit for bit, signs, zeros and the extremes of the range included.
    values = np.array([[1.0, -2.5, 0.0, -0.0], [3.140625, 1e-38, -3e38, 65280.0]], np.float32)
    values = (values.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    path = tmp_path / "bf16.safetensors"
    write_safetensors_raw(path, {"W": ("BF16", values.shape, bfloat16_bits(values).astype("<u2").tobytes())})
    loaded = load_weights(path, mmap=mmap)
    assert loaded.dtype == np.float32 and loaded.shape == values.shape
    np.testing.assert_array_equal(loaded.view(np.uint32), values.view(np.uint32))


def test_empty_safetensors_tensor_round_trips(tmp_path):
    save_file({"W": np.zeros((4, 0), np.float32)}, str(tmp_path / "W.safetensors"))
    loaded = load_weights(tmp_path / "W.safetensors")
    assert loaded.shape == (4, 0) and loaded.dtype == np.float32


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_memory_mapped_capacities_equal_the_in_memory_ones(tmp_path, suffix):
    W = embedding(np.float32, (8, 40))
    path = tmp_path / f"W{suffix}"
    save(path, {"W": W})
    mapped = load_weights(path)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(capacity(mapped), capacity(load_weights(path, mmap=False)))
    np.testing.assert_array_equal(capacity(mapped), capacity(W))


# ---------------------------------------------------------------- choosing the array
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_several_arrays_without_a_key_are_listed_with_the_argument_to_pass(tmp_path, suffix):
    path = tmp_path / f"sae{suffix}"
    save(path, {"W_dec": np.zeros((3, 7), np.float32), "b_dec": np.zeros(3, np.float16)})
    with pytest.raises(ValueError, match="holds 2 arrays") as exc:
        load_weights(path)
    message = str(exc.value)
    assert str(path) in message and "key=NAME" in message and "--key NAME" in message
    assert "W_dec (3, 7) float32" in message and "b_dec (3,) float16" in message


def test_safetensors_listing_names_bfloat16(tmp_path):
    path = tmp_path / "bf16.safetensors"
    write_safetensors_raw(path, {"W": ("BF16", (2, 1), b"\0" * 4), "b": ("BF16", (1,), b"\0" * 2)})
    with pytest.raises(ValueError, match=r"W \(2, 1\) bfloat16"):
        load_weights(path)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_missing_key_names_the_keys_the_file_holds(tmp_path, suffix):
    path = tmp_path / f"sae{suffix}"
    save(path, {"W_dec": np.zeros((3, 7), np.float32), "b_dec": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="key 'W' names no array") as exc:
        load_weights(path, key="W")
    assert "W_dec (3, 7) float32" in str(exc.value) and "b_dec (3,) float32" in str(exc.value)


def test_a_key_for_a_npy_file_is_refused(tmp_path):
    np.save(tmp_path / "W.npy", np.eye(2))
    with pytest.raises(ValueError, match="holds a single array; pass no key"):
        load_weights(tmp_path / "W.npy", key="W")


def test_a_one_dimensional_array_is_refused_by_capacity(tmp_path):
    np.savez(tmp_path / "sae.npz", W_dec=np.eye(2), b_dec=np.zeros(2))
    with pytest.raises(ValueError, match=r"W must have at least 2 axes, got shape \(2,\)"):
        capacity(load_weights(tmp_path / "sae.npz", key="b_dec"))


# ---------------------------------------------------------------- bad files and arguments
def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file '.*nowhere.npy' does not exist"):
        load_weights(tmp_path / "nowhere.npy")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_weights(tmp_path)


def test_an_unknown_extension_names_the_formats(tmp_path):
    (tmp_path / "W.pt").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=r"'.*W.pt' has extension '.pt'; load_weights reads .npy, .npz, .safetensors"):
        load_weights(tmp_path / "W.pt")


def _truncated(save, path):
    save(path)
    path.write_bytes(path.read_bytes()[:-40])


CORRUPT = {
    "npy, not a numpy file": ("W.npy", lambda p: p.write_text("0.5 1.0\n")),
    "npy, truncated": ("W.npy", lambda p: _truncated(lambda q: np.save(q, np.eye(8)), p)),
    "npy, empty": ("W.npy", lambda p: p.write_bytes(b"")),
    "npz, not a zip file": ("W.npz", lambda p: p.write_bytes(b"\x93NUMPY" + b"\0" * 80)),
    "npz, truncated": ("W.npz", lambda p: _truncated(lambda q: np.savez(q, W=np.eye(8)), p)),
    "safetensors, truncated": ("W.safetensors", lambda p: _truncated(lambda q: save_file({"W": np.eye(8)}, str(q)), p)),
    "safetensors, not one": ("W.safetensors", lambda p: p.write_text("not a safetensors file")),
}


@pytest.mark.parametrize("case", CORRUPT)
def test_a_corrupt_file_is_named(tmp_path, case):
    name, write = CORRUPT[case]
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError, match=f"weights file '{path}' is not a"):
        load_weights(path)


def test_a_dtype_numpy_lacks_is_refused_by_name(tmp_path):
    path = tmp_path / "fp8.safetensors"
    write_safetensors_raw(path, {"W": ("F8_E4M3", (2, 2), b"\0" * 4)})
    with pytest.raises(TypeError, match="tensor 'W' of weights file .* has dtype F8_E4M3"):
        load_weights(path)


@pytest.mark.parametrize("kwargs, message", [
    ({"path": 3}, "path must be a str or os.PathLike, got int"),
    ({"key": 0}, "key must be a str or None, got int"),
    ({"mmap": "yes"}, "mmap must be a bool, got str"),
    ({"max_bytes": 1.5e9}, "max_bytes must be an int or None, got float"),
    ({"max_bytes": True}, "max_bytes must be an int or None, got bool"),
])
def test_arguments_of_the_wrong_kind_are_refused(tmp_path, kwargs, message):
    np.save(tmp_path / "W.npy", np.eye(2))
    with pytest.raises(TypeError, match=message):
        load_weights(**{"path": tmp_path / "W.npy", **kwargs})


def test_a_negative_max_bytes_is_refused(tmp_path):
    np.save(tmp_path / "W.npy", np.eye(2))
    with pytest.raises(ValueError, match="max_bytes must be >= 0, got -1"):
        load_weights(tmp_path / "W.npy", max_bytes=-1)


# ---------------------------------------------------------------- oversized and malformed files
#: Bytes of a float64 array of shape (2**20, 2**20): what the forged headers below declare.
EIGHT_TIB = 8 * 2**40


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def forged_npy(shape=(2**20, 2**20)) -> bytes:
    """An .npy header declaring a float64 array of ``shape``, followed by 64 bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 64


def write_zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def patch_only_member(path: Path, *, flags: int = 0, method: int | None = None) -> None:
    """Set general-purpose ``flags`` bits and the compression ``method`` of a one-member zip,
    in its local header and its central-directory entry alike (as another writer would)."""
    data = bytearray(path.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    for at in (local + 6, central + 8):
        struct.pack_into("<H", data, at, struct.unpack_from("<H", data, at)[0] | flags)
    if method is not None:
        for at in (local + 8, central + 10):
            struct.pack_into("<H", data, at, method)
    path.write_bytes(bytes(data))


def test_an_npz_member_is_refused_by_its_declared_size_before_it_is_inflated(tmp_path):
    # 4 MiB of zeros deflate to a few kB: the file's size says nothing of the member's.
    path = write_zip(tmp_path / "bomb.npz", {"W.npy": npy_bytes(np.zeros((512, 1024)))}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**14
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as exc:
            load_weights(path, max_bytes=2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes allocated before the refusal"
    message = str(exc.value)
    assert f"member 'W' of weights file '{path}' would take 4.0 MiB (4194304 bytes)" in message
    assert "1.0 MiB (1048576 bytes) allowed by max_bytes" in message and "--max-bytes" in message
    np.testing.assert_array_equal(load_weights(path, max_bytes=2**22), np.zeros((512, 1024)))


def test_an_npz_header_declaring_terabytes_is_refused_by_the_memory_available(tmp_path):
    from capopt.weights import _available_memory

    if _available_memory() is None:
        pytest.skip("this system does not say how much memory is available")
    path = write_zip(tmp_path / "forged.npz", {"W.npy": forged_npy()})
    with pytest.raises(ValueError, match=rf"member 'W' of weights file '{path}' would take 8\.0 TiB "
                                         rf"\({EIGHT_TIB} bytes\) .* allowed by the memory available now"):
        load_weights(path)


def test_the_listing_is_read_from_headers_even_of_huge_members(tmp_path):
    path = write_zip(tmp_path / "sae.npz", {"W_dec.npy": forged_npy(), "b_dec.npy": npy_bytes(np.zeros(3))})
    with pytest.raises(ValueError, match="holds 2 arrays") as exc:
        load_weights(path)
    assert "W_dec (1048576, 1048576) float64" in str(exc.value)
    np.testing.assert_array_equal(load_weights(path, key="b_dec", max_bytes=24), np.zeros(3))


def test_arrays_read_into_memory_are_capped_and_mapped_ones_are_not(tmp_path):
    W = embedding(np.float32, (16, 16))  # 1 KiB
    for suffix in (".npy", ".safetensors"):
        path = tmp_path / f"W{suffix}"
        save(path, {"W": W})
        with pytest.raises(ValueError, match=r"would take 1\.0 KiB \(1024 bytes\) in memory .* more "
                                             r"than the 1000 bytes allowed by max_bytes; read it memory-mapped"):
            load_weights(path, mmap=False, max_bytes=1000)
        np.testing.assert_array_equal(load_weights(path, max_bytes=1000), W)
    path = tmp_path / "bf16.safetensors"
    write_safetensors_raw(path, {"W": ("BF16", (16, 16), b"\0" * 512)})
    with pytest.raises(ValueError, match=r"tensor 'W' .* would take 1\.0 KiB .*float32.*bfloat16 is widened"):
        load_weights(path, max_bytes=1000)


@pytest.mark.parametrize("mmap", [True, False])
def test_a_npy_header_declaring_more_than_the_file_holds_is_named(tmp_path, mmap):
    path = tmp_path / "W.npy"
    path.write_bytes(forged_npy())
    with pytest.raises(ValueError, match=rf"weights file '{path}' is not a readable \.npy file: its header "
                                         rf"declares shape \(1048576, 1048576\), float64, 8\.0 TiB .* only 64 bytes"):
        load_weights(path, mmap=mmap)


@pytest.mark.parametrize("mmap", [True, False])
def test_a_safetensors_header_declaring_more_than_the_file_holds_is_named(tmp_path, mmap):
    header = json.dumps({"W": {"dtype": "F64", "shape": [2**20, 2**20], "data_offsets": [0, EIGHT_TIB]}}).encode()
    path = tmp_path / "W.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    with pytest.raises(ValueError, match=f"weights file '{path}' is not a readable .safetensors file"):
        load_weights(path, mmap=mmap)


def _deflate64(path: Path) -> None:
    write_zip(path, {"W.npy": npy_bytes(np.eye(2))})
    patch_only_member(path, method=9)  # deflate64, which zipfile cannot inflate


def _encrypted(path: Path) -> None:
    write_zip(path, {"W.npy": npy_bytes(np.eye(2))})
    patch_only_member(path, flags=0x1)


def _damaged_deflate_stream(path: Path) -> None:
    write_zip(path, {"W.npy": npy_bytes(np.eye(64))}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = 30 + len("W.npy")  # the member's data follows its local header and name
    data[start:start + 8] = b"\xff" * 8  # a deflate block of the reserved type 3
    path.write_bytes(bytes(data))


#: Each malformed .npz: how to write it, and what the one-line error says of member 'W'.
MALFORMED_NPZ = {
    "not an npy array": (lambda p: write_zip(p, {"W": b"hello, not an array"}),
                         r"is not a readable \.npy array: it does not begin with the \.npy signature"),
    "encrypted": (_encrypted, r"is encrypted; load_weights reads unencrypted members"),
    "compression zipfile lacks": (_deflate64, r"cannot be read by Python's zipfile \(.*compression method 9, deflate64\)"),
    "damaged deflate stream": (_damaged_deflate_stream, r"is not a readable \.npy array: Error -3"),
    "forged size": (lambda p: write_zip(p, {"W.npy": forged_npy()}), r"would take 8\.0 TiB"),
}


@pytest.mark.parametrize("case", MALFORMED_NPZ)
def test_a_malformed_npz_member_is_named_in_a_value_error(tmp_path, case):
    write, reason = MALFORMED_NPZ[case]
    path = tmp_path / "W.npz"
    write(path)
    with pytest.raises(ValueError, match=f"member 'W' of weights file '{path}' {reason}"):
        load_weights(path, max_bytes=2**30)


def test_the_listing_marks_members_that_are_no_arrays(tmp_path):
    path = write_zip(tmp_path / "sae.npz", {"W_dec.npy": npy_bytes(np.eye(2)), "notes.txt": b"trained 2024"})
    with pytest.raises(ValueError, match="holds 2 arrays") as exc:
        load_weights(path)
    assert "W_dec (2, 2) float64" in str(exc.value)
    assert "notes.txt (not a readable .npy array: choose it with key= to see why)" in str(exc.value)
    np.testing.assert_array_equal(load_weights(path, key="W_dec"), np.eye(2))


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_npz_members_compressed_with_bzip2_or_lzma_are_read(tmp_path, method):
    # numpy writes stored or deflated members; zipfile also reads these two, so they are fine.
    path = write_zip(tmp_path / "W.npz", {"W.npy": npy_bytes(np.eye(3))}, method)
    np.testing.assert_array_equal(load_weights(path), np.eye(3))


def test_a_fifo_or_device_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "W.npy"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=f"weights file '{fifo}' is not a regular file: it is a named pipe"):
        load_weights(fifo)
    with pytest.raises(ValueError, match="weights file '/dev/null' is not a regular file: it is a character device"):
        load_weights("/dev/null")


def test_importing_capopt_leaves_safetensors_unloaded():
    code = "import sys, capopt; print('safetensors' in sys.modules, 'load_weights' in capopt.__all__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.split() == ["False", "True"]


# ---------------------------------------------------------------- the command line
def save_each_format(tmp_path, W) -> dict[str, list[str]]:
    """``W`` saved in each format beside a bias; the CLI arguments that select it."""
    save(tmp_path / "W.npy", {"W": W})
    for suffix in (".npz", ".safetensors"):
        save(tmp_path / f"sae{suffix}", {"W_dec": W, "b_dec": np.zeros(W.shape[0], W.dtype)})
    return {
        ".npy": [str(tmp_path / "W.npy")],
        ".npz": [str(tmp_path / "sae.npz"), "--key", "W_dec"],
        ".safetensors": [str(tmp_path / "sae.safetensors"), "--key", "W_dec"],
    }


def test_cli_capacity_reads_each_format_as_json(tmp_path, capsys):
    W = polygon(5).astype(np.float32)
    for suffix, argv in save_each_format(tmp_path, W).items():
        code, out, err = run(capsys, "capacity", *argv, "--json")
        assert code == 0 and err == "", suffix
        np.testing.assert_allclose(json.loads(out)["capacities"], capacity(W), rtol=1e-12, err_msg=suffix)


def test_cli_capacity_lists_the_arrays_and_names_the_flag(tmp_path, capsys):
    argv = save_each_format(tmp_path, polygon(5))[".safetensors"][:1]
    code, out, err = run(capsys, "capacity", *argv)
    assert code == 2 and out == ""
    assert "holds 2 arrays" in err and "--key NAME" in err and "W_dec (2, 5) float64" in err


def test_cli_capacity_names_a_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "capacity", str(tmp_path / "nowhere.safetensors"))
    assert code == 2 and "capopt capacity: error: weights file" in err and "nowhere.safetensors' does not exist" in err


def test_cli_capacity_warns_when_the_features_look_like_the_hidden_axis(tmp_path, capsys):
    np.save(tmp_path / "W.npy", polygon(5).T)  # W[feature, hidden], as the notebook stores it
    code, out, err = run(capsys, "capacity", str(tmp_path / "W.npy"), "--json")
    assert code == 0 and "warning" in err and "--feature-axis -2" in err and "(5, 2)" in err
    json.loads(out)  # the warning goes to stderr; stdout stays parseable


@pytest.mark.parametrize("axis", ["-2", "-1"])
def test_cli_capacity_explicit_feature_axis_silences_the_warning(tmp_path, capsys, axis):
    np.save(tmp_path / "W.npy", polygon(5).T)
    code, out, err = run(capsys, "capacity", str(tmp_path / "W.npy"), "--feature-axis", axis, "--json")
    assert code == 0 and err == ""
    if axis == "-2":
        np.testing.assert_allclose(json.loads(out)["capacities"], 0.4, rtol=1e-12)


def test_cli_capacity_runs_as_a_module(tmp_path):
    argv = save_each_format(tmp_path, polygon(3).astype(np.float32))[".safetensors"]
    result = subprocess.run([sys.executable, "-m", "capopt", "capacity", *argv], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "sum C = 2.000000   rank = 2   d = 2" in result.stdout


@pytest.mark.parametrize("case", MALFORMED_NPZ)
def test_cli_reports_a_malformed_npz_member_in_one_line(tmp_path, capsys, case):
    write, reason = MALFORMED_NPZ[case]
    path = tmp_path / "W.npz"
    write(path)
    code, out, err = run(capsys, "capacity", str(path), "--max-bytes", str(2**30))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"capopt capacity: error: member 'W' of weights file '{path}'")


def test_cli_max_bytes_refuses_an_npz_that_inflates_past_it(tmp_path, capsys):
    path = write_zip(tmp_path / "bomb.npz", {"W.npy": npy_bytes(np.zeros((512, 1024)))}, zipfile.ZIP_DEFLATED)
    code, _, err = run(capsys, "capacity", str(path), "--max-bytes", "1000000")
    assert code == 2 and err.count("\n") == 1
    assert "would take 4.0 MiB (4194304 bytes) in memory" in err
    assert "976.6 KiB (1000000 bytes) allowed by max_bytes" in err


def test_cli_names_a_fifo_as_no_regular_file(tmp_path, capsys):
    os.mkfifo(tmp_path / "W.npy")
    code, _, err = run(capsys, "capacity", str(tmp_path / "W.npy"))
    assert code == 2 and err.count("\n") == 1 and "is not a regular file: it is a named pipe (FIFO)" in err

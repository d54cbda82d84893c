"""Weights from files: ``capopt.load_weights`` and ``capopt capacity FILE`` on each format."""

import json
import struct
import subprocess
import sys
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
])
def test_arguments_of_the_wrong_kind_are_refused(tmp_path, kwargs, message):
    np.save(tmp_path / "W.npy", np.eye(2))
    with pytest.raises(TypeError, match=message):
        load_weights(**{"path": tmp_path / "W.npy", **kwargs})


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

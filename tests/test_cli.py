"""The command-line interface, run in-process through ``capopt.cli.main``."""

import json

import numpy as np
import pytest

from capopt.cli import main

from frames import polygon


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("example", "capacity", "solve"):
        assert command in out


def test_capacity_prints_table_and_summary(tmp_path, capsys):
    path = tmp_path / "W.npy"
    np.save(path, polygon(3))
    code, out, _ = run(capsys, "capacity", str(path))
    assert code == 0
    assert out.count("0.666667") == 6  # capacity and leverage of three features
    assert "sum C = 2.000000   rank = 2   d = 2" in out


def test_capacity_honours_the_feature_axis(tmp_path, capsys):
    path = tmp_path / "W.npy"
    np.save(path, polygon(5).T)  # W[feature, hidden]
    code, out, _ = run(capsys, "capacity", str(path), "--feature-axis", "-2", "--json")
    assert code == 0
    np.testing.assert_allclose(json.loads(out)["capacities"], 0.4, rtol=1e-12)


def test_capacity_reports_bad_weights_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "W.npy"
    np.save(path, np.array([[np.nan, 1.0]]))
    code, _, err = run(capsys, "capacity", str(path))
    assert code == 2 and "W must be finite" in err

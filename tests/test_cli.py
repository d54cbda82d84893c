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


def test_solve_reproduces_the_worked_case_as_json(capsys):
    code, out, _ = run(capsys, "solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "1", "--json")
    assert code == 0
    payload = json.loads(out)
    np.testing.assert_allclose(payload["capacities"], [5 / 6, 1 / 6], rtol=1e-12)  # theory §3
    assert payload["loss"] == pytest.approx(5.25, rel=1e-12)
    assert payload["status"] == "optimal" and payload["method"] == "waterfill"


def test_solve_accepts_profiles_files_and_densities(tmp_path, capsys):
    path = tmp_path / "v.txt"
    path.write_text("1.0, 0.8, 0.64, 0.512")
    code, from_file, _ = run(capsys, "solve", "--importance-file", str(path), "--density", "0.1",
                             "--budget", "2", "--json")
    assert code == 0
    code, from_decay, _ = run(capsys, "solve", "--importance-decay", "0.8", "--n-features", "4",
                              "--density", "0.1", "--budget", "2", "--json")
    assert code == 0
    from_file, from_decay = json.loads(from_file), json.loads(from_decay)
    # 0.8**3 and the decimal 0.512 differ in the last bit, hence a rounding tolerance.
    np.testing.assert_allclose(from_file["capacities"], from_decay["capacities"], rtol=1e-12)
    assert "polysemantic" in from_decay["regimes"]


def test_solve_linear_family_keeps_the_top_d(capsys):
    code, out, _ = run(capsys, "solve", "--family", "linear", "--importance", "1", "3", "2", "--budget", "2", "--json")
    assert code == 0 and json.loads(out)["capacities"] == [0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--importance-decay", "0.8", "--budget", "2", "--kurtosis", "5"], "needs --n-features"),
        (["--importance", "1", "2", "--budget", "1"], "needs --kurtosis or --density"),
        (["--family", "linear", "--importance", "1", "--kurtosis", "5", "--budget", "1"], "quadratic family only"),
    ],
)
def test_solve_rejects_incomplete_problems(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["solve", *argv])
    assert message in str(exc.value)


def test_solve_reports_bad_values_without_a_traceback(capsys):
    code, _, err = run(capsys, "solve", "--importance", "1", "2", "--kurtosis", "0.5", "--budget", "1")
    assert code == 2 and "kurtosis must be >= 1" in err
    code, _, err = run(capsys, "solve", "--importance", "1", "2", "--kurtosis", "5", "--budget", "-1")
    assert code == 2 and "budget must be finite and >= 0" in err


def test_example_prints_dense_monosemantic_and_sparse_polysemantic_tables(capsys):
    code, out, _ = run(capsys, "example")
    assert code == 0
    dense, sparse = out.split("sparse Gaussian inputs")
    assert "polysemantic" not in dense and "monosemantic" in dense
    assert "polysemantic" in sparse

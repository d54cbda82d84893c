"""The command-line interface, run in-process through ``capopt.cli.main``."""

import json
import subprocess
import sys
import time
import warnings
from importlib import metadata

import numpy as np
import pytest

import capopt
import capopt.cli as cli
from capopt.cli import EXIT_STATUS, main
from capopt.solvers import AllocationError

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
    # Found while the capacities are computed (a memory-mapped W is read in chunks): a
    # failure during the run, with the hint that --traceback shows where.
    assert code == 1 and "W must be finite" in err and "--traceback" in err
    assert len(err.strip().splitlines()) == 1


def test_solve_reproduces_the_worked_case_as_json(capsys):
    code, out, _ = run(capsys, "solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "1", "--json")
    assert code == 0
    payload = json.loads(out)
    np.testing.assert_allclose(payload["capacities"], [5 / 6, 1 / 6], rtol=1e-12)  # theory §3
    assert payload["loss"] == pytest.approx(5.25, rel=1e-12)
    assert payload["status"] == "OPTIMAL" and payload["method"] == "waterfill"
    assert payload["losses"] == pytest.approx([1.5, 3.75], rel=1e-12)
    assert payload["marginals"] == pytest.approx([10.125, 10.125], rel=1e-12)  # = the multiplier


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
def test_solve_rejects_incomplete_problems_as_usage_errors(capsys, argv, message):
    code, out, err = run(capsys, "solve", *argv)
    assert code == 2 and out == ""
    assert err.startswith("capopt solve: error: ") and message in err and "Traceback" not in err


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


def test_version_is_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"capopt {metadata.version('capopt')}"
    assert capopt.__version__ == metadata.version("capopt")


def test_help_documents_the_exit_statuses(capsys):
    for argv in (["--help"], ["sweep", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = " ".join(capsys.readouterr().out.split())
        assert "exit status: 0 on success; 2 for a usage error" in out
        assert "1 for a failure during the run" in out
    assert "2 for a usage error" in EXIT_STATUS


def test_argparse_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["solve", "--no-such-option"])
    assert exc.value.code == 2


def test_failed_solve_is_a_runtime_failure(monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise AllocationError("the allocation is not certified: gap 0.5 exceeds 1e-09")
    monkeypatch.setattr(cli, "solve", fail)
    code, out, err = run(capsys, "solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "1")
    assert code == 1 and out == ""
    assert err == "capopt solve: error: the allocation is not certified: gap 0.5 exceeds 1e-09\n"


def test_an_os_error_during_the_run_is_a_runtime_failure(tmp_path, monkeypatch, capsys):
    import capopt.sweeps

    def full(ds, path):
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(capopt.sweeps, "save_sweep", full)
    code, _, err = run(capsys, "sweep", "--n-features", "4", "--budget", "2", "--importance-decay", "0.9",
                       "--kurtosis", "5", "--output", str(tmp_path / "x.nc"))
    assert code == 1 and "capopt sweep: error: [Errno 28] No space left on device" in err


SMALL_SWEEP = ["--n-features", "4", "--budget", "2", "--importance-decay", "0.8", "0.9", "--kurtosis", "4", "6"]


@pytest.mark.parametrize("argv, message", [
    (["sweep", *SMALL_SWEEP, "--output", "/nonexistent/x.nc"],
     "--output '/nonexistent/x.nc': its folder '/nonexistent' does not exist"),
    (["sweep", *SMALL_SWEEP, "--output", "{tmp}"], "--output '{tmp}' must be a file name, got an existing folder"),
    (["sweep", *SMALL_SWEEP, "--output", "{tmp}/x.nc", "--figure", "{tmp}/none/x.png"],
     "--figure '{tmp}/none/x.png': its folder '{tmp}/none' does not exist"),
    (["sweep", *SMALL_SWEEP, "--output", "{tmp}/x.nc", "--checkpoint", "{tmp}/file/ck"],
     "--checkpoint '{tmp}/file/ck' cannot be written (Not a directory)"),
    (["reproduce", "--out", "{tmp}/file/report"], "--out '{tmp}/file/report' cannot be written (Not a directory)"),
    (["reproduce", "--out", "{tmp}/file"], "--out '{tmp}/file' must be a folder, got an existing file"),
])
def test_unwritable_output_fails_at_once_naming_the_path(tmp_path, monkeypatch, capsys, argv, message):
    (tmp_path / "file").write_text("")
    import capopt.report
    import capopt.sweeps

    def never(*args, **kwargs):
        raise AssertionError("computed before checking the output path")
    monkeypatch.setattr(capopt.sweeps, "sweep", never)
    monkeypatch.setattr(capopt.report, "reproduce", never)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith(f"capopt {argv[0]}: error: ") and message.replace("{tmp}", str(tmp_path)) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.nc").exists()


def test_unwritable_output_fails_in_the_shell_without_a_traceback():
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "capopt", "sweep", "--output", "/nonexistent/x.nc"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("capopt sweep: error: --output '/nonexistent/x.nc': its folder '/nonexistent' "
                           "does not exist; create it first or give another path\n")
    assert time.perf_counter() - started < 20  # the import only: nothing is solved


def test_one_point_sweep_succeeds_without_a_figure_and_says_why(tmp_path, capsys):
    code, out, err = run(capsys, "sweep", "--n-features", "4", "--budget", "2", "--importance-decay", "0.9",
                         "--density", "0.1", "--output", str(tmp_path / "one.nc"))
    assert code == 0 and err == ""
    assert "solved 1 problem (one point)" in out
    assert "no phase diagram: a polysemantic phase diagram needs a sweep over exactly two parameters" in out
    assert "got a one-point sweep" in out
    assert (tmp_path / "one.nc").is_file() and not (tmp_path / "sweep.png").exists()


def test_a_figure_asked_of_a_sweep_that_cannot_have_one_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(capsys, "sweep", "--n-features", "4", "--budget", "2", "--importance-decay", "0.9",
                       "--density", "0.1", "--output", str(tmp_path / "one.nc"), "--figure", str(tmp_path / "f.png"))
    assert code == 2 and f"--figure '{tmp_path / 'f.png'}' cannot be drawn" in err
    assert not (tmp_path / "one.nc").exists()


def test_two_parameter_sweep_draws_the_phase_diagram(tmp_path, capsys):
    code, out, _ = run(capsys, "sweep", *SMALL_SWEEP, "--output", str(tmp_path / "s.nc"),
                       "--figure", str(tmp_path / "s.png"))
    assert code == 0 and f"phase diagram written to {tmp_path / 's.png'}" in out
    assert (tmp_path / "s.png").stat().st_size > 0


def test_sweep_names_a_damaged_checkpoint_chunk_in_one_warning_line(tmp_path, capsys):
    grid = ["--n-features", "4", "--budget", "2", "--importance-decay", "0.8", "0.9", "--kurtosis", "4", "6", "8",
            "--chunk-size", "2", "--no-figure", "--checkpoint", str(tmp_path / "ck")]
    assert run(capsys, "sweep", *grid, "--output", str(tmp_path / "a.nc"))[0] == 0
    chunks = tmp_path / "ck"
    (chunks / "chunk-000001.npz").write_bytes((chunks / "chunk-000002.npz").read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        code, _, err = run(capsys, "sweep", *grid, "--output", str(tmp_path / "b.nc"))
    assert code == 0
    assert err == (f"capopt sweep: warning: checkpoint chunk '{chunks / 'chunk-000001.npz'}' holds chunk 2, "
                   "not chunk 1 (a file copied or renamed into the wrong place); solving chunk 1 again\n")
    assert (tmp_path / "a.nc").read_bytes() == (tmp_path / "b.nc").read_bytes()


def test_sweep_with_sensitivities_stores_them(tmp_path, capsys):
    from capopt.sweeps import load_sweep, sweep

    grid = ["--n-features", "6", "--budget", "2.5", "--importance-decay", "0.8", "0.9", "--density", "0.1", "0.5"]
    code, out, _ = run(capsys, "sweep", *grid, "--sensitivities", "--no-figure", "--output", str(tmp_path / "s.nc"))
    assert code == 0 and "regime margin" in out
    ds = load_sweep(tmp_path / "s.nc")
    expected = sweep(n_features=6, budget=2.5, importance_decay=[0.8, 0.9], density=[0.1, 0.5], sensitivities=True)
    for name in ("capacity_d_budget", "capacity_d_density", "capacity_d_decay", "regime_margin"):
        np.testing.assert_array_equal(ds[name].values, expected[name].values)


def test_help_loads_no_heavy_library():
    # `capopt --help` must stay fast: the kernels (numba), the sweeps' xarray, the figures'
    # matplotlib and the progress bars load only for the commands that use them.
    code = ("import sys, contextlib, io\nfrom capopt.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "print(sorted(m for m in ('numba', 'llvmlite', 'xarray', 'pandas', 'matplotlib', 'tqdm',"
            " 'importlib.metadata', 'scipy.sparse.csgraph') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_error_during_the_run_exits_1_with_a_hint_and_traceback_shows_it(capsys, monkeypatch):
    import capopt.cli

    def broken(*args, **kwargs):
        raise ValueError("something inside the solve went wrong")

    monkeypatch.setattr(capopt.cli, "solve", broken)
    argv = ("solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "1")
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.strip() == ("capopt solve: error: something inside the solve went wrong (run again "
                           "with --traceback to see where it arose)")
    with pytest.raises(ValueError, match="went wrong"):
        main([*argv, "--traceback"])


def test_a_value_refused_before_the_run_is_a_usage_error(capsys):
    code, _, err = run(capsys, "solve", "--importance", "2", "1", "--kurtosis", "7", "--budget", "-1")
    assert code == 2 and err.strip() == "capopt solve: error: budget must be finite and >= 0, got -1.0"

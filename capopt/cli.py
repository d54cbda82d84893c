"""Command-line interface: ``capopt <command> ...``.

Commands are registered in :data:`COMMANDS` (name -> (configure parser, run)); ``main``
builds the parser from it, so adding a command touches only this table and its two functions.

Exit status (:data:`EXIT_STATUS`): 0 on success; 2 for a command line that cannot run as
given, found before any computation starts (argparse's errors, and :class:`UsageError`: a
value the library refuses while a command checks its arguments and reads its inputs -- a
value out of range, a missing input file, an output path that cannot be written -- and a
checkpoint folder that another live run is using, FolderInUseError); 1 for a failure during
the run (a solve that is not certified, an error of the operating system, or any other
error, with a hint that ``--traceback`` shows where it arose). Either way one line on
stderr names the argument or the file, and no traceback is shown unless asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .capacity import capacity_summary
from .catalogue import TMS_EXPERIMENTS
from .comparison import checked_weights, compare
from .curves import LossCurves, gated_kurtosis, linear_autoencoder, quadratic
from . import _formulas as F
from .solvers import METHODS, AllocationError, Problem, solve
from ._folder_lock import FolderInUseError
from ._progress import compilation_notice, progress_bar, run_times
from .sweeps.scheduling import DEFAULT_CHUNK_SIZE
from .weights import load_weights


class UsageError(ValueError):
    """A command line that cannot run as given, found before any computation starts."""


#: The line announcing a first compilation of the kernels, said once, when the command's
#: work starts (not before a usage error).
_PENDING_NOTICE: list[str] = []


def _announce() -> None:
    """Say the pending compilation notice, once: the work that compiles starts now."""
    while _PENDING_NOTICE:
        print(_PENDING_NOTICE.pop(), file=sys.stderr, flush=True)


@contextlib.contextmanager
def _usage() -> Iterator[None]:
    """Report a value the library refuses while a command checks its arguments and reads
    its inputs as a usage error (exit status 2): nothing has been computed yet. Past the
    checks, the work starts: a pending compilation notice is said."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    _announce()


def _load_array(path: str, name: str) -> np.ndarray:
    """Read a .npy file or a whitespace/comma separated text file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name} file {path!r} does not exist (or is not a file)")
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    text = p.read_text().replace(",", " ")
    return np.array(text.split(), dtype=np.float64)


def _check_writable(path: str, option: str, *, folder: bool = False) -> None:
    """Refuse now, before any computation, an output path that cannot be written.

    A file's folder must exist (the file is written beside it, then renamed into place); a
    folder is created now with its parents, as the command would create it. Writability is
    tried with a temporary file, which also catches what permission bits do not show (a
    read-only or virtual file system, a user allowed everything). Raises ValueError naming
    the option, the path and what is wrong.
    """
    p = Path(path)
    if p.exists() and p.is_dir() != folder:
        raise ValueError(f"{option} {path!r} must be {'a folder' if folder else 'a file name'}, "
                         f"got an existing {'file' if folder else 'folder'}")
    where = p if folder else p.parent
    if not folder and not where.is_dir():
        raise ValueError(f"{option} {path!r}: its folder {str(where)!r} does not exist; "
                         "create it first or give another path")
    try:
        if folder:
            p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path!r} cannot be written ({exc.strerror}); "
                         "give another path") from None


# ---------------------------------------------------------------- capacity
def _add_weights_arguments(p: argparse.ArgumentParser) -> None:
    """A weights file and which of its arrays and axes holds the features (capacity, compare)."""
    p.add_argument("weights", help="embedding matrix in a .npy, .npz or .safetensors file")
    p.add_argument("--key", metavar="NAME",
                   help="name of the array, for a .npz or .safetensors file that holds several")
    # None until given, so that an explicit axis silences the orientation warning.
    p.add_argument(
        "--feature-axis",
        type=int,
        default=None,
        help="axis of the features: -1 for W[hidden, feature] (default), -2 for W[feature, hidden]",
    )
    p.add_argument("--max-bytes", type=int, metavar="BYTES",
                   help="the most bytes an array read into memory may take (an .npz member, "
                        "a bfloat16 tensor; the others are memory-mapped), checked against the "
                        "size its file declares before reading (default: the memory available)")


def _configure_capacity(p: argparse.ArgumentParser) -> None:
    _add_weights_arguments(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _warn_if_features_look_hidden(shape: tuple[int, ...], command: str) -> None:
    """Warn when the default feature axis is the shorter one: a dictionary has more features
    than hidden units, so such a file most likely stores W[feature, hidden]."""
    if len(shape) >= 2 and shape[-1] < shape[-2]:
        print(
            f"capopt {command}: warning: W has shape {shape}, so the default feature axis -1 "
            f"gives {shape[-1]} features in {shape[-2]} hidden dimensions; if the file stores "
            "W[feature, hidden] (as the Toy Models of Superposition notebook does), pass "
            "--feature-axis -2 (pass --feature-axis -1 to keep this reading without the warning)",
            file=sys.stderr,
        )


def _weights_from_args(args: argparse.Namespace) -> tuple[np.ndarray, int]:
    """The array the weights arguments name, and its feature axis (warning when defaulted
    to the shorter one)."""
    try:
        W = load_weights(args.weights, args.key, max_bytes=args.max_bytes)
    except OSError as exc:  # a missing or unreadable file is reported as main reports bad values
        raise ValueError(str(exc)) from exc
    if args.feature_axis is None:
        _warn_if_features_look_hidden(W.shape, args.command)
    return W, -1 if args.feature_axis is None else args.feature_axis


def _run_capacity(args: argparse.Namespace) -> int:
    with _usage():
        W, feature_axis = _weights_from_args(args)
    s = capacity_summary(W, feature_axis=feature_axis)
    if args.json:
        print(json.dumps({
            "capacities": s.capacities.tolist(),
            "leverage": s.leverage.tolist(),
            "total": np.asarray(s.total).tolist(),
            "rank": np.asarray(s.rank).tolist(),
            "dim": s.dim,
        }))
    elif s.capacities.ndim == 1:
        print(s.table())
    else:
        total, rank = np.asarray(s.total), np.asarray(s.rank)
        for index in np.ndindex(s.capacities.shape[:-1]):
            print(f"embedding {index}: sum C = {total[index]:.6f}, rank = {rank[index]}, d = {s.dim}")
            print("  C = " + " ".join(f"{c:.4f}" for c in s.capacities[index]))
    return 0


# ---------------------------------------------------------------- problems
def _add_base_argument(p: argparse._ActionsContainer) -> None:
    """``--base``, the distribution of an active input (the solve and sweep commands)."""
    p.add_argument("--base", choices=sorted(F.BASE_FOURTH_MOMENT), default="gaussian",
                   help="distribution of an active input, for --density (default gaussian)")


def _add_problem_arguments(p: argparse.ArgumentParser, *, required: bool,
                           budget_type: Callable[[str], float] = float) -> None:
    """Arguments that specify an allocation problem: family, importances, kurtosis, budget."""
    p.add_argument("--family", choices=("quadratic", "linear"), default="quadratic",
                   help="quadratic model (default) or linear autoencoder")
    imp = p.add_mutually_exclusive_group(required=required)
    imp.add_argument("--importance", type=float, nargs="+", metavar="V", help="importances, one per feature")
    imp.add_argument("--importance-file", metavar="PATH", help="importances from a .npy or text file")
    imp.add_argument("--importance-decay", type=float, metavar="R",
                     help="geometric profile v_i = R**i (needs --n-features)")
    p.add_argument("--n-features", type=int, metavar="N", help="number of features for --importance-decay")
    kur = p.add_mutually_exclusive_group()
    kur.add_argument("--kurtosis", type=float, nargs="+", metavar="K",
                     help="input kurtosis E[x^4], one value or one per feature (quadratic family)")
    kur.add_argument("--density", type=float, nargs="+", metavar="P",
                     help="probability a feature is active (sparsity S = 1 - P); sets K = K_z / P")
    _add_base_argument(p)
    p.add_argument("--budget", type=budget_type, required=required, metavar="D",
                   help="embedding dimension d")


def _importances(args: argparse.Namespace) -> np.ndarray:
    if args.importance is not None:
        return np.array(args.importance)
    if args.importance_file is not None:
        return _load_array(args.importance_file, "importance")
    if args.n_features is None or args.n_features < 1:
        raise ValueError(f"--importance-decay needs --n-features N with N >= 1, got {args.n_features}")
    return args.importance_decay ** np.arange(args.n_features, dtype=np.float64)


def _one_or_many(values: list[float]) -> np.ndarray:
    """A scalar for one value on the command line, an array for one per feature."""
    return np.array(values if len(values) > 1 else values[0])


def _curves_from_args(args: argparse.Namespace) -> LossCurves:
    """The loss-curve family the problem arguments describe."""
    v = _importances(args)
    if args.family == "linear":
        if args.kurtosis is not None or args.density is not None:
            raise ValueError("--kurtosis/--density apply to the quadratic family only, got --family linear")
        return linear_autoencoder(v)
    if args.density is not None:
        return quadratic(v, gated_kurtosis(_one_or_many(args.density), args.base))
    if args.kurtosis is not None:
        return quadratic(v, _one_or_many(args.kurtosis))
    raise ValueError("the quadratic family needs --kurtosis or --density, got neither")


# ---------------------------------------------------------------- solve
def _configure_solve(p: argparse.ArgumentParser) -> None:
    _add_problem_arguments(p, required=True)
    p.add_argument("--method", default="auto", choices=("auto", *sorted(METHODS)),
                   help="solution method: auto (the default, chosen from the curves' shapes); "
                   + "; ".join(f"{name} ({METHODS[name].summary})" for name in sorted(METHODS)))
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _run_solve(args: argparse.Namespace) -> int:
    with _usage():
        problem = Problem(_curves_from_args(args), args.budget)
    curves = problem.curves
    result = solve(curves, problem.budget, method=args.method)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"{curves!r}")
        print(result.table())
    return 0


# ---------------------------------------------------------------- compare
def _configure_compare(p: argparse.ArgumentParser) -> None:
    _add_weights_arguments(p)
    _add_problem_arguments(p, required=True)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _run_compare(args: argparse.Namespace) -> int:
    """Measure the file's embedding against the optimal allocation of the stated problem."""
    with _usage():
        W, feature_axis = _weights_from_args(args)
        problem = Problem(_curves_from_args(args), args.budget)
        checked_weights(W, problem.curves.n_features, feature_axis)
    found = compare(W, problem.curves, problem.budget, feature_axis=feature_axis)
    # One comparison per instance of a batched W, in the order of its leading axes.
    comparisons = np.array(found, dtype=object).ravel().tolist()
    if args.json:
        dicts = [c.to_dict() for c in comparisons]
        print(json.dumps(dicts[0] if len(dicts) == 1 else dicts))
    else:
        print("\n\n".join(c.table() for c in comparisons))
    return 0


# ---------------------------------------------------------------- example
def _configure_example(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-features", type=int, default=8, help="number of features (default 8)")
    p.add_argument("--budget", type=float, default=3.0, help="embedding dimension d (default 3)")


def _run_example(args: argparse.Namespace) -> int:
    """Dense features are monosemantic, sparse ones polysemantic (the paper's mechanism)."""
    _announce()
    v = 0.8 ** np.arange(args.n_features, dtype=np.float64)
    print("Quadratic model y = sum_i v_i x_i^2, importances v_i = 0.8^i, "
          f"N = {args.n_features}, d = {args.budget:g}\n")
    for label, density, base in (("dense uniform inputs", 1.0, "uniform"),
                                 ("sparse Gaussian inputs", 0.1, "gaussian")):
        K = gated_kurtosis(density, base)
        result = solve(quadratic(v, K), args.budget)
        print(f"{label} (density {density:g}, kurtosis K = {K:g}, "
              f"{'increasing' if K < 3 else 'diminishing'} returns):")
        print(result.table())
        print()
    return 0


# ---------------------------------------------------------------- crosscheck
def _configure_crosscheck(p: argparse.ArgumentParser) -> None:
    _add_problem_arguments(p, required=False, budget_type=int)
    p.add_argument("--route", choices=("exact", "sampled"), default="exact",
                   help="exact-loss L-BFGS (default) or Adam on sampled minibatches")
    p.add_argument("--starts", type=int, default=8, help="L-BFGS random starts (exact route, default 8)")
    p.add_argument("--steps", type=int, help="Adam steps (sampled route, default 5000)")
    p.add_argument("--seeds", type=int,
                   help="instances trained together, the lowest-loss one compared "
                        "(sampled route, default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--experiment", choices=sorted(TMS_EXPERIMENTS), metavar="NAME",
                   help="instead of the solver cross-check, train a published Toy Models of "
                        "Superposition setting in its reference recipe and print what its "
                        f"capacities stick at: {', '.join(sorted(TMS_EXPERIMENTS))} (--steps "
                        "overrides its 10000 steps, --seeds sets seeds per density, default 1)")


def _steps(args: argparse.Namespace) -> dict[str, Any]:
    """``--steps`` as an override of the trainer's recipe; none without it (the recipe's own)."""
    return {} if args.steps is None else {"steps": args.steps}


def _run_tms_experiment(args: argparse.Namespace) -> int:
    """Train a published TMS setting and tabulate the values it is read at, per density."""
    from .report.captions import fmt
    from .training import tms_experiment

    spec = TMS_EXPERIMENTS[args.experiment]
    seeds = 1 if args.seeds is None else args.seeds
    print(f"{spec.name}: N = {spec.n_features}, d = {spec.budget}, {len(spec.densities)} densities "
          f"{fmt(min(spec.densities))}..{fmt(max(spec.densities))}, Adam lr {fmt(spec.lr)}, batch "
          f"{spec.batch_size}, {spec.steps if args.steps is None else args.steps} steps, "
          f"{seeds} seed(s); {spec.source}")
    sweep = tms_experiment(spec.name, n_seeds=seeds, seed=args.seed, **_steps(args), progress=True,
                           desc=spec.name)
    values = spec.published
    counts = sweep.near_values(values)
    dpf = sweep.dimensions_per_feature.mean(axis=1)
    loss = sweep.fit.final_loss.reshape(len(spec.densities), -1).mean(axis=1) / spec.n_features
    print(f"\nrepresented features within 0.02 of each value (C), d/|W|_F^2 and the mean loss per feature")
    print(f"{'density':>8} " + " ".join(f"{'C=' + fmt(v):>8}" for v in values)
          + f" {'other':>6} {'d/|W|^2':>8} {'loss':>8}")
    for p, row, q, ell in zip(sweep.densities, counts, dpf, loss):
        print(f"{p:>8.4f} " + " ".join(f"{c:>8d}" for c in row[:-1]) + f" {row[-1]:>6d} {q:>8.4f} {ell:>8.5f}")
    return 0


def _run_crosscheck(args: argparse.Namespace) -> int:
    """Train and compare with the solver: one problem, or the standard table by default."""
    from .catalogue import STANDARD_PROBLEMS
    from .training import crosscheck, crosscheck_table

    if args.experiment is not None:
        _announce()
        return _run_tms_experiment(args)

    options = ({"starts": args.starts} if args.route == "exact"
               else {**_steps(args), "n_seeds": 4 if args.seeds is None else args.seeds})
    given = (args.importance, args.importance_file, args.importance_decay)
    if all(x is None for x in given):
        _announce()
        print(f"Solver (capopt.solve) vs trained models ({args.route} route), standard problems\n")
        problems = STANDARD_PROBLEMS
        reports = [crosscheck(p.curves, p.budget, route=args.route, seed=args.seed, **options)
                   for p in progress_bar(problems, desc="cross-checking", unit="problem")]
        print(crosscheck_table(reports, [p.label for p in problems]))
        return 0
    with _usage():
        if args.budget is None:
            raise ValueError("crosscheck of one problem needs --budget D, got none")
        curves = Problem(_curves_from_args(args), args.budget).curves
    report = crosscheck(curves, args.budget, route=args.route, seed=args.seed, **options)
    print(f"{curves!r}, d = {args.budget}, {args.route} route, solver method {report.predicted.method}")
    print(report.table())
    return 0


# ---------------------------------------------------------------- sweep
# Values of a swept parameter are numbers, START:STOP:NUM (evenly spaced) or
# log:START:STOP:NUM (geometrically spaced).
def _values(text: str) -> np.ndarray:
    """One command-line token: a number, START:STOP:NUM or log:START:STOP:NUM."""
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return np.array([float(text)])
        spacing = np.geomspace if parts[0] == "log" else np.linspace
        start, stop, num = parts[1:] if parts[0] == "log" else parts
        return spacing(float(start), float(stop), int(num))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, START:STOP:NUM or log:START:STOP:NUM, got {text!r}"
        ) from None


def _parameter(tokens: Sequence[np.ndarray]) -> float | np.ndarray:
    """Tokens joined into one parameter: a scalar if a single value, else a 1-d array."""
    values = np.concatenate(tokens)
    return values.item() if values.size == 1 else values


def _configure_sweep(p: argparse.ArgumentParser) -> None:
    grid = p.add_argument_group(
        "grid", "each parameter takes numbers, START:STOP:NUM (linear) or log:START:STOP:NUM; "
        "two or more values make it a dimension of the sweep")
    grid.add_argument("--n-features", type=_values, nargs="+", default=[np.array([64.0])], metavar="N",
                      help="number of features (default 64)")
    grid.add_argument("--budget", type=_values, nargs="+", default=[np.array([16.0])], metavar="D",
                      help="embedding dimension d (default 16)")
    grid.add_argument("--importance-decay", type=_values, nargs="+", default=[_values("0.5:1:51")],
                      metavar="R", help="r in (0, 1] of the importances v_i = r**i (default 0.5:1:51)")
    inputs = grid.add_mutually_exclusive_group()
    inputs.add_argument("--density", type=_values, nargs="+", metavar="P",
                        help="probability p that a feature is active; K = K_z / p (default log:0.01:1:61)")
    inputs.add_argument("--kurtosis", type=_values, nargs="+", metavar="K",
                        help="kurtosis K = E[x^4] of every input, instead of --density")
    _add_base_argument(grid)
    p.add_argument("--output", default="sweep.nc", metavar="PATH",
                   help="netCDF file for the dataset (default sweep.nc)")
    p.add_argument("--figure", metavar="PATH",
                   help="PNG for the phase diagram, which needs exactly two swept parameters, one "
                        "of them density or kurtosis (default sweep.png, drawn when the sweep "
                        "has such a shape; otherwise the sweep says why there is no figure)")
    p.add_argument("--no-figure", action="store_true", help="do not draw the phase diagram")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="M",
                   help=f"problems per chunk (default {DEFAULT_CHUNK_SIZE})")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="directory for finished chunks; run the same command again to resume "
                        "(a damaged or misplaced chunk file is named and solved again)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the chunks on this Dask scheduler (needs the distributed package)")
    p.add_argument("--sensitivities", action="store_true",
                   help="also store each optimum's derivatives in d, K (or p) and r and its "
                        "regime margin, computed in the same kernel pass")


def _phase_diagram_path(args: argparse.Namespace,
                        parameters: dict[str, float | np.ndarray]) -> tuple[str | None, str]:
    """Where the phase diagram goes (None: nowhere), and why not when it is not drawn.

    Decided before the sweep runs: an explicit ``--figure`` the sweep cannot fill is a
    usage error, the default one is skipped with the reason.
    """
    if args.no_figure:
        return None, ""
    from .plotting import phase_diagram_axes
    from .sweeps.grid import PARAMETERS

    try:
        phase_diagram_axes([k for k in PARAMETERS if k in parameters and np.ndim(parameters[k]) == 1])
    except ValueError as exc:
        if args.figure is not None:
            raise ValueError(f"--figure {args.figure!r} cannot be drawn: {exc}; pass --no-figure "
                             "or sweep two parameters") from None
        return None, str(exc)
    return args.figure or "sweep.png", ""


def _run_sweep(args: argparse.Namespace) -> int:
    """Solve the grid, write the dataset and the phase diagram."""
    from .sweeps import save_sweep, sweep  # xarray: loaded only by this command
    from .sweeps.grid import check_grid
    from .sweeps.phase import boundary_density, polysemantic_fraction

    with _usage():
        _check_writable(args.output, "--output")
        parameters = {"n_features": _parameter(args.n_features), "budget": _parameter(args.budget),
                      "importance_decay": _parameter(args.importance_decay)}
        if args.kurtosis is not None:
            parameters["kurtosis"] = _parameter(args.kurtosis)
        else:
            parameters["density"] = _parameter(args.density or [_values("log:0.01:1:61")])
        check_grid(parameters["n_features"], parameters["budget"], parameters["importance_decay"],
                   parameters.get("kurtosis"), parameters.get("density"), args.base)
        figure, no_figure = _phase_diagram_path(args, parameters)
        if figure is not None:
            _check_writable(figure, "--figure")
        if args.checkpoint is not None:
            _check_writable(args.checkpoint, "--checkpoint", folder=True)

    with contextlib.ExitStack() as stack:
        executor = None
        if args.scheduler is not None:
            with _usage():
                try:
                    import distributed
                except ImportError:
                    raise ValueError("--scheduler needs the distributed package, which is not "
                                     "installed (pip install distributed)") from None
            executor = stack.enter_context(distributed.Client(args.scheduler)).get_executor()
        started = time.perf_counter()
        ds = sweep(
            **parameters,
            base=args.base,
            chunk_size=args.chunk_size,
            checkpoint=args.checkpoint,
            executor=executor,
            sensitivities=args.sensitivities,
        )
        elapsed = time.perf_counter() - started
    n_problems = ds.multiplier.size
    save_sweep(ds, args.output)
    shape = ", ".join(f"{k} {n}" for k, n in ds.multiplier.sizes.items()) or "one point"
    print(f"solved {n_problems} problem{'s' * (n_problems != 1)} ({shape}) in {elapsed:.2f} s; dataset written to {args.output}")
    fraction = polysemantic_fraction(ds)
    print(f"polysemantic fraction: min {float(fraction.min()):.3f}, max {float(fraction.max()):.3f}")
    if args.sensitivities:
        margin = ds.regime_margin
        print(f"regime margin (relative change of a swept parameter that changes a regime): "
              f"median {float(margin.median()):.3g}, {int((margin == 0).sum())} points at a kink or tie")
    if figure is None:
        if no_figure:
            print(f"no phase diagram: {no_figure}")
        return 0
    from .plotting import plot_polysemantic_phase

    boundary = boundary_density(ds)
    drawn = ds if boundary is None else ds.assign(boundary_density=boundary)
    plot_polysemantic_phase(drawn, path=figure)
    print(f"phase diagram written to {figure}")
    return 0


# ---------------------------------------------------------------- reproduce
def _configure_reproduce(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="capopt-report", metavar="DIR",
                   help="folder for report.html, report.md, numbers.json and figures/ "
                        "(default ./capopt-report); its checkpoints/ keeps the training state, "
                        "so an interrupted run resumes and a finished one is reused")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="smaller runs of the same figures")
    preset.add_argument("--full", action="store_true",
                        help="the trained figures at paper strength (N = 40, d = 10, 5 seeds) plus the "
                             "published Toy Models of Superposition settings (200->20, the 400->30 "
                             "window) in their reference recipe")
    p.description = f"{p.description}. {run_times()}"


def _run_reproduce(args: argparse.Namespace) -> int:
    """Regenerate every figure and write the report; one progress line per figure, then
    the claims table."""
    # Imported here: matplotlib loads only for the commands that draw.
    from .report import DEFAULT, FULL, QUICK, reproduce
    from .report.claims import claims_text

    with _usage():
        _check_writable(args.out, "--out", folder=True)
    settings = QUICK if args.quick else FULL if args.full else DEFAULT
    print(f"capopt reproduce ({settings.name} settings) -> {args.out}", flush=True)
    files = reproduce(args.out, settings=settings)
    print(claims_text(files.claims))
    print(f"done in {files.seconds:.1f} s: {len(files.figures)} figures; open {files.html} "
          f"(self-contained) or {files.markdown}")
    return 0


# ---------------------------------------------------------------- predict-tms
def _configure_predict_tms(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-features", type=int, required=True, metavar="N", help="number of features")
    p.add_argument("--budget", type=int, required=True, metavar="D", help="hidden dimensions d")
    p.add_argument("--density", type=_values, nargs="+", required=True, metavar="P",
                   help="probability p that a feature is active: numbers, START:STOP:NUM or "
                        "log:START:STOP:NUM")
    p.add_argument("--importance-decay", type=float, default=1.0, metavar="R",
                   help="importances I_i = R**i (default 1: equally important)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _run_predict_tms(args: argparse.Namespace) -> int:
    """Predict a TMS autoencoder's blocks per density, without training."""
    from .tms import predict_tms
    from .tms.prediction import checked_densities

    with _usage():
        densities = checked_densities(np.concatenate(args.density))
        if args.n_features < 1 or args.budget < 0:
            raise ValueError(f"--n-features must be >= 1 and --budget >= 0, got {args.n_features} "
                             f"and {args.budget}")
        if not 0 < args.importance_decay <= 1:
            raise ValueError(f"--importance-decay must lie in (0, 1], got {args.importance_decay}")
        importance = args.importance_decay ** np.arange(args.n_features, dtype=np.float64)
    predictions = predict_tms(importance, args.budget, densities)
    assert isinstance(predictions, tuple)  # one per density of an array
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions]))
    else:
        print("\n\n".join(p.table() for p in predictions))
    return 0


COMMANDS = {
    "example": (_configure_example, _run_example,
                "solve a small worked example on built-in defaults and print the tables"),
    "capacity": (_configure_capacity, _run_capacity,
                 "per-feature capacities and summary of a saved embedding matrix"),
    "solve": (_configure_solve, _run_solve,
              "optimal capacity allocation for the quadratic or linear family"),
    "compare": (_configure_compare, _run_compare,
                "a trained embedding from a file against the optimal allocation"),
    "crosscheck": (_configure_crosscheck, _run_crosscheck,
                   "train the models and compare their capacities with the solver's"),
    "sweep": (_configure_sweep, _run_sweep,
              "parameter sweep of the quadratic model to netCDF and a phase-diagram PNG"),
    "predict-tms": (_configure_predict_tms, _run_predict_tms,
                    "predict a Toy Models of Superposition autoencoder's blocks, without training"),
    "reproduce": (_configure_reproduce, _run_reproduce,
                  "regenerate every figure of the paper's argument and a report (HTML and Markdown)"),
}


#: The commands that call numba kernels (and so compile them on a first run) and do not say
#: so themselves.
_COMPILING_COMMANDS = frozenset({"example", "solve", "compare", "crosscheck", "sweep"})


#: The exit statuses, as ``--help`` states them.
EXIT_STATUS = (
    "exit status: 0 on success; 2 for a usage error, found before any computation starts "
    "(an unknown option, a value out of range, a missing input file, an output path that "
    "cannot be written, a checkpoint folder another run is using); 1 for a failure during "
    "the run (a solve that is not certified, an error of the operating system, any other "
    "error). Errors are one line on stderr naming the argument or file (--traceback shows "
    "Python's traceback)."
)
USAGE_ERROR, RUNTIME_FAILURE = 2, 1


class _Version(argparse.Action):
    """``--version``, read from the package's metadata only when asked (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        from . import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capopt",
        description="Capacity allocation in neural-network toy models, solved directly.",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("--version", action=_Version, help="print capopt's version and exit")
    parser.add_argument("--traceback", action="store_true",
                        help="on an error, show Python's traceback instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (configure, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_STATUS)
        configure(p)
        # Also after the command; SUPPRESS keeps a --traceback given before it.
        p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                       help="on an error, show Python's traceback instead of one line")
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``capopt`` with the arguments ``argv`` (default ``sys.argv[1:]``); the exit status.

    argparse's own usage errors exit with status 2 (SystemExit) as usual; everything else
    returns its status (see :data:`EXIT_STATUS`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    prefix = f"capopt {args.command}"

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        print(f"{prefix}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show  # one line per warning, without the library's source line
        try:
            # Said before the pause it explains, once the arguments are checked (_announce);
            # reproduce shows it with a bar of its own.
            notice = compilation_notice() if args.command in _COMPILING_COMMANDS else None
            _PENDING_NOTICE[:] = [] if notice is None else [f"{prefix}: {notice}"]
            return args.run(args)
        except (UsageError, FolderInUseError) as exc:
            if args.traceback:
                raise
            print(f"{prefix}: error: {exc}", file=sys.stderr)
            return USAGE_ERROR
        except (AllocationError, OSError) as exc:
            if args.traceback:
                raise
            print(f"{prefix}: error: {exc}", file=sys.stderr)
            return RUNTIME_FAILURE
        except Exception as exc:
            if args.traceback:
                raise
            # The library's ValueErrors and TypeErrors are written for users; others are named.
            what = str(exc) if isinstance(exc, (ValueError, TypeError)) else f"{type(exc).__name__}: {exc}"
            print(f"{prefix}: error: {what} (run again with --traceback to see where it arose)",
                  file=sys.stderr)
            return RUNTIME_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``capopt sweep`` command: a parameter sweep saved as netCDF, and its phase diagram.

:func:`configure_parser` and :func:`run` follow the (configure, run) pair of every command
in :mod:`capopt.cli`. Values of a swept parameter are numbers, ``START:STOP:NUM`` (evenly
spaced) or ``log:START:STOP:NUM`` (geometrically spaced).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np

from .. import _formulas as F
from .phase import boundary_density, polysemantic_fraction
from .grid import DEFAULT_CHUNK_SIZE, save_sweep, sweep

__all__ = ["configure_parser", "run"]


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


def _parameter(tokens):
    """Tokens joined into one parameter: a scalar if a single value, else a 1-d array."""
    values = np.concatenate(tokens)
    return values.item() if values.size == 1 else values


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add the ``capopt sweep`` options to ``p``."""
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
    grid.add_argument("--base", choices=sorted(F.BASE_FOURTH_MOMENT), default="gaussian",
                      help="distribution of an active input, for --density (default gaussian)")
    p.add_argument("--output", default="sweep.nc", metavar="PATH",
                   help="netCDF file for the dataset (default sweep.nc)")
    p.add_argument("--figure", default="sweep.png", metavar="PATH",
                   help="PNG for the phase diagram (default sweep.png; needs two swept parameters, "
                        "one of them density or kurtosis)")
    p.add_argument("--no-figure", action="store_true", help="do not draw the phase diagram")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="M",
                   help=f"problems per chunk (default {DEFAULT_CHUNK_SIZE})")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="directory for finished chunks; run the same command again to resume")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the chunks on this Dask scheduler (needs the distributed package)")


def run(args) -> int:
    """Run ``capopt sweep``: solve the grid, write the dataset and the figure."""
    density = kurtosis = None
    if args.kurtosis is not None:
        kurtosis = _parameter(args.kurtosis)
    else:
        density = _parameter(args.density or [_values("log:0.01:1:61")])
    with contextlib.ExitStack() as stack:
        executor = None
        if args.scheduler is not None:
            try:
                import distributed
            except ImportError:
                raise SystemExit("capopt: error: --scheduler needs the distributed package "
                                 "(pip install distributed)") from None
            executor = stack.enter_context(distributed.Client(args.scheduler)).get_executor()
        started = time.perf_counter()
        ds = sweep(
            n_features=_parameter(args.n_features),
            budget=_parameter(args.budget),
            importance_decay=_parameter(args.importance_decay),
            kurtosis=kurtosis,
            density=density,
            base=args.base,
            chunk_size=args.chunk_size,
            checkpoint=args.checkpoint,
            executor=executor,
        )
        elapsed = time.perf_counter() - started
    n_problems = ds.multiplier.size
    save_sweep(ds, args.output)
    shape = ", ".join(f"{k} {n}" for k, n in ds.multiplier.sizes.items()) or "one point"
    print(f"solved {n_problems} problems ({shape}) in {elapsed:.2f} s; dataset written to {args.output}")
    fraction = polysemantic_fraction(ds)
    print(f"polysemantic fraction: min {float(fraction.min()):.3f}, max {float(fraction.max()):.3f}")
    if args.no_figure:
        return 0
    from ..plotting import plot_polysemantic_phase

    try:
        boundary = boundary_density(ds)
        drawn = ds if boundary is None else ds.assign(boundary_density=boundary)
        plot_polysemantic_phase(drawn, path=args.figure)
    except ValueError as exc:
        print(f"capopt sweep: no figure: {exc} (pass --no-figure to skip it)", file=sys.stderr)
        return 2
    print(f"phase diagram written to {args.figure}")
    return 0


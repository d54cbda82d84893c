"""Part ``imports``: what ``import capopt`` and ``capopt --help`` cost a fresh process.

Run with the suite (``python -m bench``) or alone (``python -m bench --only imports``).

Each command runs in a fresh interpreter (``sys.executable``), several times; the best
wall-clock time is reported next to that of ``python -c "import numpy"`` in the same run,
the floor of any numpy library. Also reported: which heavy libraries each command left in
``sys.modules`` (none of numba, llvmlite, xarray, matplotlib, cvxpy, sympy, pandas, dask or
scipy.sparse.csgraph should load before first use).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from ._common import ROOT, markdown_table, progress, ratio, seconds

HEAVY = ("numba", "llvmlite", "xarray", "matplotlib", "cvxpy", "sympy", "pandas", "dask",
         "scipy.sparse.csgraph")

#: name -> the statement the fresh interpreter runs.
COMMANDS = {
    "import numpy": "import numpy",
    "import capopt": "import capopt",
    "capopt --help": (
        "import contextlib, io, capopt.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    capopt.cli.main(['--help'])"
    ),
}


def _loaded(statement: str) -> list[str]:
    """The heavy libraries in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    probe = f"{statement}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def _best_time(statement: str, repeats: int) -> float:
    """Best wall-clock seconds of a fresh interpreter running ``statement``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT,
                       capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool = False) -> dict:
    repeats = 3 if quick else 10
    rows = []
    for name, statement in COMMANDS.items():
        rows.append(dict(command=name, seconds=_best_time(statement, repeats),
                         heavy=_loaded(statement)))
        progress(f"  imports: {name} {seconds(rows[-1]['seconds'])}, loads {rows[-1]['heavy'] or 'nothing heavy'}")
    floor = rows[0]["seconds"]
    for row in rows:
        row["vs_numpy"] = row["seconds"] / floor
    return {"rows": rows, "repeats": repeats}


def report(results: dict) -> str:
    table = [[r["command"], seconds(r["seconds"]), ratio(r["vs_numpy"]),
              ", ".join(r["heavy"]) or "none"] for r in results["rows"]]
    return (
        f"Best of {results['repeats']} fresh interpreters each.\n\n"
        + markdown_table(["command", "time", "vs import numpy", "heavy libraries loaded"], table)
    )

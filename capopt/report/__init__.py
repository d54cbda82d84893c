"""``capopt reproduce``: every figure of the paper's argument, regenerated, in one report.

:func:`reproduce` runs the figures registered in :data:`FIGURES` (one function each, in
:mod:`capopt.report.figures`, drawn by :mod:`capopt.plotting`) with the sizes of a
:class:`Settings` preset, and writes the PNGs, a Markdown report linking them, a
self-contained HTML report embedding them, and ``numbers.json`` with the numbers behind
every caption.

Examples
--------
>>> from capopt.report import FIGURES, QUICK
>>> len(FIGURES), QUICK.name
(8, 'quick')
"""

from .build import ReportFiles, reproduce
from .figures import FIGURES, FigureSpec, Rendered, Table, Workbench, fmt
from .settings import DEFAULT, QUICK, Settings

__all__ = [
    "reproduce",
    "ReportFiles",
    "FIGURES",
    "FigureSpec",
    "Rendered",
    "Table",
    "Workbench",
    "fmt",
    "Settings",
    "DEFAULT",
    "QUICK",
]

"""``capopt reproduce``: every figure of the paper's argument, regenerated, in one report.

:func:`reproduce` runs the figures registered in :data:`FIGURES` (:mod:`capopt.report.figures`;
each one's computation in :mod:`~capopt.report.computations`, its drawing in
:mod:`~capopt.report.drawing`, its caption and table in :mod:`~capopt.report.captions`)
with the sizes of a :class:`Settings` preset, and writes the PNGs, a Markdown report linking them, a
self-contained HTML report embedding them, and ``numbers.json`` with the numbers behind
every caption.

Examples
--------
>>> from capopt.report import FIGURES, QUICK
>>> len(FIGURES), QUICK.name
(10, 'quick')
"""

from .build import ReportFiles, reproduce
from .figures import FIGURES, FigureSpec, Rendered, Table, Workbench, fmt
from .settings import DEFAULT, FULL, QUICK, Settings

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
    "FULL",
]

"""``capopt reproduce``: every figure of the paper's argument, regenerated, in one report.

:func:`reproduce` runs the figures of :data:`FIGURES` (:mod:`capopt.report.figures`: one
module per figure, holding its typed numbers, computation, drawing, caption and table) with
the sizes of a :class:`Settings` preset, judges the paper's claims from the figures' numbers
(:mod:`capopt.report.claims`), and writes the PNGs, a Markdown report linking them, a
self-contained HTML report embedding them, and ``numbers.json`` with the numbers behind
every caption.

Examples
--------
>>> from capopt.report import FIGURES, QUICK
>>> len(FIGURES), QUICK.name
(10, 'quick')
"""

from .build import ReportFiles, reproduce
from .captions import Table, fmt
from .figures import FIGURES
from .settings import DEFAULT, FULL, QUICK, Settings
from .spec import FigureSpec, Rendered
from .workbench import Workbench

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

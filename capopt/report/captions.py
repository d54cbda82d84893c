r"""How the report prints under each figure: numbers in captions and tables, and the tables.

Every number in a caption is formatted by :func:`fmt`, as is every cell of a table, so a
reader (and the test suite) can find each number of ``numbers.json`` in the report. The
captions themselves are written by each figure's module (:mod:`capopt.report.figures`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import SupportsFloat

import numpy as np

from .settings import Settings

__all__ = ["fmt", "Table", "table", "training_recipe"]


def fmt(value: str | SupportsFloat) -> str:
    """How every number is printed in captions and tables: integers whole, floats to 3 digits,
    flags as "yes" or "no".

    Examples
    --------
    >>> fmt(5 / 6), fmt(3), fmt(1.2e-9), fmt("17/5"), fmt(True)
    ('0.833', '3', '1.2e-09', '17/5', 'yes')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return format(float(value), ".3g")


@dataclass(frozen=True)
class Table:
    """A small table printed under a figure: a header and rows of formatted cells."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def table(header: Iterable[str], rows: Iterable[Iterable[str | SupportsFloat]]) -> Table:
    """A :class:`Table` of ``rows`` of values (numbers or text), each cell through :func:`fmt`."""
    return Table(tuple(header), tuple(tuple(fmt(cell) for cell in row) for row in rows))


def training_recipe(s: Settings) -> str:
    """How the trained sweeps were trained, for the captions of the figures that show them."""
    return (f"N = {s.train_features} features of importance 0.9^i, d = {s.train_budget}, Adam at "
            f"learning rate {fmt(s.train_lr)}, batch {s.train_batch}, {s.train_seeds} seed(s) per "
            f"density; training stops when the mean loss over {s.train_window * 100} steps changes "
            f"by less than {fmt(s.train_tol)} (relative) from the {s.train_window * 100} steps before, "
            f"for every instance, or at {s.train_steps} steps")

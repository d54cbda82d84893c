"""What a figure of ``capopt reproduce`` is: a computation, a drawing, a caption, a table.

Each figure module of :mod:`capopt.report.figures` defines one :class:`FigureSpec`,
``FIGURE``: its ``compute`` takes the :class:`~capopt.report.workbench.Workbench` and
returns the figure's data, a frozen dataclass whose ``numbers`` (a
:class:`~capopt.report.numbers.Numbers`) are what the caption, the table, the claims and
``numbers.json`` report; ``draw``, ``caption`` and ``table`` read that data and compute
nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Generic, Protocol, TypeVar

from matplotlib.figure import Figure

from .captions import Table
from .numbers import Numbers
from .settings import Settings
from .workbench import Workbench

__all__ = ["FigureSpec", "Rendered", "Computed"]


class Computed(Protocol):
    """What a figure's computation returns: at least its numbers."""

    @property
    def numbers(self) -> Numbers: ...


N = TypeVar("N", bound=Numbers)
D = TypeVar("D", bound=Computed)


@dataclass(frozen=True)
class Rendered:
    """One figure of the report.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    caption : str
        Plain text (no markup), the numbers in it formatted by :func:`~capopt.report.fmt`.
    numbers : Numbers
        The numbers behind the figure; each is shown in ``caption`` or ``table``.
    table : Table, optional
    """

    figure: Figure
    caption: str
    numbers: Numbers
    table: Table | None = None


def _always(settings: Settings) -> bool:
    return True


@dataclass(frozen=True)
class FigureSpec(Generic[N, D]):
    """A figure: file-name slug, heading, the type of its numbers, and how it is computed
    (``compute``, alone what a first run compiles the kernels with), drawn, captioned and
    tabulated, and whether a preset draws it."""

    slug: str
    title: str
    numbers: type[N]
    compute: Callable[[Workbench], D] = field(repr=False)
    draw: Callable[[D], Figure] = field(repr=False)
    caption: Callable[[Settings, D], str] = field(repr=False)
    table: Callable[[D], Table] | None = field(default=None, repr=False)
    drawn: Callable[[Settings], bool] = field(default=_always, repr=False)

    def make(self, wb: Workbench) -> Rendered:
        """Compute the figure, then draw, caption and tabulate what it computed."""
        data = self.compute(wb)
        assert isinstance(data.numbers, self.numbers), f"{self.slug} computes its own numbers"
        table = None if self.table is None else self.table(data)
        return Rendered(self.draw(data), self.caption(wb.settings, data), data.numbers, table)

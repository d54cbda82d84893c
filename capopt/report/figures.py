"""The figures of ``capopt reproduce``, in a registry: each is a computation, a drawing, a caption.

:data:`FIGURES` lists them in report order (slug -> :class:`FigureSpec`). Each one's
``make`` takes the :class:`~capopt.report.computations.Workbench` and returns a
:class:`Rendered`: it runs the figure's computation (:mod:`capopt.report.computations`),
draws the result (:mod:`capopt.report.drawing`, :mod:`capopt.plotting`) and writes its
caption and table (:mod:`capopt.report.captions`). Every number in ``numbers`` is printed
in the caption or in the table, formatted by :func:`~capopt.report.captions.fmt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from matplotlib.figure import Figure

from .. import plotting
from . import captions, computations, drawing
from .captions import Table, fmt, table
from .computations import TWO_FEATURE_CASES, Computed, Workbench
from .settings import Settings

__all__ = ["FIGURES", "FigureSpec", "Rendered", "Table", "Workbench", "fmt", "TWO_FEATURE_CASES"]


@dataclass(frozen=True)
class Rendered:
    """One figure of the report.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    caption : str
        Plain text (no markup), the numbers in it formatted by :func:`fmt`.
    numbers : dict of str to int, float or str
        The numbers behind the figure; each is shown in ``caption`` or ``table``.
    table : Table, optional
    """

    figure: Figure
    caption: str
    numbers: dict
    table: Table | None = None


@dataclass(frozen=True)
class FigureSpec:
    """A registered figure: file-name slug, heading, the function that makes it, the
    computation alone (without drawing; what a first run compiles the kernels with), and
    whether a preset draws it."""

    slug: str
    title: str
    make: Callable[[Workbench], Rendered] = field(repr=False)
    compute: Callable[[Workbench], Computed] = field(repr=False)
    drawn: Callable[[Settings], bool] = field(default=lambda settings: True, repr=False)


#: The figures, in report order (slug -> spec).
FIGURES: dict[str, FigureSpec] = {}


def _register(slug: str, title: str, compute: Callable[[Workbench], Computed],
              draw: Callable[[Computed], Figure], caption: Callable,
              drawn: Callable[[Settings], bool] = lambda settings: True) -> None:
    """Register the figure ``slug``: ``compute``, then ``draw`` and ``caption`` its result."""

    def make(wb: Workbench) -> Rendered:
        computed = compute(wb)
        header = captions.HEADERS.get(slug)
        if callable(header):
            header = header(computed)
        rows = None if header is None else table(header, computed.rows)
        return Rendered(draw(computed), caption(wb.settings, computed), computed.numbers, rows)

    FIGURES[slug] = FigureSpec(slug, title, make, compute, drawn)


_register(
    "allocation", "Optimal allocation against feature importance", computations.allocation,
    lambda c: drawing.plot_allocation_by_importance(c.data["importance"], c.data["kurtosis"],
                                                    c.data["results"], theory=c.data["theory"]),
    captions.allocation,
)
_register(
    "marginal-benefit", "Marginal benefit of capacity: cases A-F", computations.marginal_benefit,
    lambda c: drawing.plot_marginal_pairs(c.data["cases"]),
    captions.marginal_benefit,
)
_register(
    "two-feature-phase", "Phase diagram: two features on one neuron", computations.two_feature,
    lambda c: drawing.mark_two_feature_cases(
        plotting.plot_two_feature_phase(c.data["phase"], boundaries=c.data["boundaries"]), c.data["cases"]),
    captions.two_feature,
)
_register(
    "phase-diagram", "Phase diagram: polysemantic fraction over sparsity and importance decay",
    computations.phase_diagram,
    lambda c: plotting.plot_polysemantic_phase(c.data["phase"], boundaries=c.data["boundaries"]),
    captions.phase_diagram,
)
_register(
    "sparsity-sweep", "Trained models: polysemantic fraction against sparsity, per architecture",
    computations.sparsity,
    lambda c: drawing.plot_polysemantic_vs_sparsity(c.data["sweeps"], predicted=c.data["predicted"]),
    captions.sparsity,
)
_register(
    "block-sizes", "Trained models: block sizes and semi-orthogonality, per architecture and density",
    computations.block_statistics,
    lambda c: drawing.plot_block_statistics(c.data["densities"], c.data["curves"]),
    captions.block_sizes,
)
_register(
    "gram-blocks", "Block structure of optimal and trained embeddings", computations.gram_blocks,
    lambda c: drawing.plot_gram_blocks(c.data["panels"]),
    captions.gram_blocks,
)
_register(
    "crosscheck", "Predicted against trained capacities", computations.crosscheck_scatter,
    lambda c: drawing.plot_crosscheck(c.data["reports"], c.data["labels"]),
    captions.crosscheck,
)
_register(
    "budget", "Capacity used and the marginal value of a dimension against the budget",
    computations.budget_response,
    lambda c: drawing.plot_budget_response(c.data["budgets"], c.data["families"]),
    captions.budget_response,
)
# Drawn by --full only, so last: the numbers of the figures before it are the same in every preset.
_register(
    "tms-published", "Toy Models of Superposition: the published settings in the reference recipe",
    computations.tms_published,
    lambda c: drawing.plot_tms_published(c.data["panels"]),
    captions.tms_published,
    drawn=lambda settings: bool(settings.tms_experiments),
)

"""The figures of ``capopt reproduce``, one module each, listed in report order.

A figure's module holds all of it: the frozen dataclass of its numbers (what its caption,
its table, the claims and ``numbers.json`` report), its computation, its drawing, its
caption and its table, and ``FIGURE``, the :class:`~capopt.report.spec.FigureSpec` that
joins them. To add a figure, write its module and name it in :data:`MODULES`.
"""

from __future__ import annotations

from importlib import import_module

from ..spec import FigureSpec

__all__ = ["FIGURES", "MODULES"]

#: The figure modules, in report order.
MODULES = (
    "allocation",
    "marginal_benefit",
    "two_feature_phase",
    "phase_diagram",
    "sparsity_sweep",
    "block_sizes",
    "gram_blocks",
    "crosscheck",
    "budget",
    # Drawn by --full only, so last: the numbers of the figures before it are the same in every preset.
    "tms_published",
)

#: The figures, in report order (slug -> spec).
FIGURES: dict[str, FigureSpec] = {
    spec.slug: spec for spec in (import_module(f"{__name__}.{name}").FIGURE for name in MODULES)
}

"""``reproduce``: make every registered figure, then write the PNGs and the report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..plotting import DPI
from .figures import FIGURES, Workbench
from .settings import DEFAULT, Settings
from .writer import Document, Entry, write_html, write_markdown

__all__ = ["reproduce", "ReportFiles"]


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`reproduce` wrote.

    Attributes
    ----------
    markdown, html, numbers : Path
        ``report.md`` (links the PNGs), ``report.html`` (self-contained, PNGs embedded) and
        ``numbers.json`` (every number behind every caption, per figure).
    figures : tuple of Path
        The PNGs, in report order, under ``figures/``.
    seconds : float
        Wall-clock time of the whole run.
    """

    markdown: Path
    html: Path
    numbers: Path
    figures: tuple[Path, ...]
    seconds: float


def _plain(value):
    """A JSON-ready copy of a number (numpy scalars become Python ones)."""
    return value if isinstance(value, str) else np.asarray(value).item()


def reproduce(out="capopt-report", *, settings: Settings = DEFAULT,
              log: Callable[[str], None] = print) -> ReportFiles:
    """Regenerate every figure of the report and write it to ``out``.

    Parameters
    ----------
    out : path-like
        Folder for ``report.md``, ``report.html``, ``numbers.json`` and ``figures/*.png``;
        created if missing, files of an earlier run overwritten.
    settings : Settings
        :data:`~capopt.report.DEFAULT` (a few minutes on two cores),
        :data:`~capopt.report.QUICK` (under a minute) or :data:`~capopt.report.FULL` (the
        trained figures at paper strength and the published TMS settings; hours). Seeds are fixed: a preset gives the
        same numbers on every run.
    log : callable
        Receives one progress line per figure (with its time) and per training run.

    Returns
    -------
    ReportFiles
    """
    started = time.perf_counter()
    out = Path(out)
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    bench = Workbench(settings, log)
    entries = []
    specs = [spec for spec in FIGURES.values() if spec.drawn(settings)]
    for number, spec in enumerate(specs, start=1):
        t0 = time.perf_counter()
        rendered = spec.make(bench)
        png = folder / f"{number:02d}-{spec.slug}.png"
        rendered.figure.savefig(png, dpi=DPI)
        seconds = time.perf_counter() - t0
        log(f"[{number}/{len(specs)}] {png.name:<28} {seconds:6.1f} s  {spec.title}")
        entries.append(Entry(number, spec, rendered, png, seconds))

    total = time.perf_counter() - started
    doc = Document(
        title="capopt: the capacity-allocation argument, regenerated",
        intro=(
            f"Every figure below was computed by capopt {__version__} from its solvers, with the "
            f"{settings.name} settings and fixed seeds, in {total:.0f} s; the figures of trained models "
            "check it against gradient training. The framework is that of Scherlis et al., "
            "Polysemanticity and Capacity in Neural Networks (arXiv:2210.01892): feature i gets "
            "capacity C_i in [0, 1], the capacities share the budget sum C_i <= d, and the "
            "allocation minimises the sum of the features' losses l_i(C_i)."
        ),
        settings=settings.as_dict(),
        entries=tuple(entries),
        footer=("Regenerate with `capopt reproduce --out DIR` (add `--quick` for the small "
                "version); the numbers behind every caption are in numbers.json."),
    )
    markdown = write_markdown(doc, out / "report.md")
    html = write_html(doc, out / "report.html")
    numbers = out / "numbers.json"
    numbers.write_text(json.dumps({
        "settings": settings.as_dict(),
        "seconds": total,
        "figures": {e.spec.slug: {"file": e.png.relative_to(out).as_posix(), "title": e.spec.title,
                                  "seconds": e.seconds,
                                  "numbers": {k: _plain(v) for k, v in e.rendered.numbers.items()}}
                    for e in entries},
    }, indent=2))
    return ReportFiles(markdown, html, numbers, tuple(e.png for e in entries), total)

"""``reproduce``: make every registered figure, judge the claims, write the PNGs and the report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from .. import __version__
from .._folder_lock import FolderLock
from .._typing import PathLike
from .._progress import COMPILING, compilation_notice, progress_bar, show_progress
from ..plotting import DPI
from .claims import Claim, Evidence, claims_table, evaluate, verdict_counts
from .figures import FIGURES
from .numbers import flatten
from .settings import DEFAULT, Settings
from .workbench import Workbench
from .writer import Document, Entry, write_html, write_markdown

__all__ = ["reproduce", "ReportFiles", "CHECKPOINTS"]

#: The folder under ``out`` that holds the training checkpoints.
CHECKPOINTS = "checkpoints"


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
    claims : tuple of Claim
        The claims table that opens the report (:mod:`capopt.report.claims`).
    seconds : float
        Wall-clock time of the whole run.
    """

    markdown: Path
    html: Path
    numbers: Path
    figures: tuple[Path, ...]
    claims: tuple[Claim, ...]
    seconds: float


def _compile(settings: Settings, log: Callable[[str], None], progress: bool) -> None:
    """Compile every kernel the report calls, by computing each figure at a tiny size.

    Run only when numba's cache is cold (:func:`~capopt._progress.compilation_notice`): the
    figures' computations then compile at a size where their own work takes a fraction of a
    second, under a bar that says so, and every figure's time in the report is its own.
    """
    notice = compilation_notice()
    if notice is None:
        return
    log(notice)
    started = time.perf_counter()
    tiny = replace(settings, **_WARM_UP, training=settings.training.with_overrides(**_WARM_UP_TRAINING))
    bench = Workbench(tiny, log=lambda line: None, progress=False)
    specs = [spec for spec in FIGURES.values() if spec.drawn(settings)]
    for spec in progress_bar(specs, progress=progress, desc=COMPILING, unit="figure", total=len(specs)):
        spec.compute(bench)
    log(f"compiled the kernels in {time.perf_counter() - started:.1f} s")


#: Sizes of the run that compiles the kernels: each computation at its smallest useful size
#: (the kernels compile for types, not sizes).
_WARM_UP: dict = dict(
    allocation_features=12, allocation_budget=4, two_feature_ratios=5, two_feature_kurtoses=5,
    phase_densities=5, phase_decays=4, phase_features=8, phase_budget=3, train_features=6,
    train_budget=2, train_densities=2, train_seeds=1, crosscheck_starts=1, budget_points=9,
    tms_seeds=1, tms_steps=20,
)
#: ... and of its training runs (overrides of ``settings.training``).
_WARM_UP_TRAINING: dict = dict(steps=20, batch_size=32)


def reproduce(out: PathLike = "capopt-report", *, settings: Settings = DEFAULT,
              log: Callable[[str], None] = tqdm.write, progress: bool | None = None) -> ReportFiles:
    """Regenerate every figure of the report, judge the paper's claims, write it to ``out``.

    Parameters
    ----------
    out : path-like
        Folder for ``report.md``, ``report.html``, ``numbers.json`` and ``figures/*.png``;
        created if missing, files of an earlier run overwritten. The training runs keep
        their state in ``out/checkpoints/`` (one file per preset and run): a run that was
        interrupted resumes where it stopped, one that finished is read back instead of
        trained again (delete the folder to train afresh). One run at a time may use it.
    settings : Settings
        :data:`~capopt.report.DEFAULT`, :data:`~capopt.report.QUICK` or
        :data:`~capopt.report.FULL` (the trained figures at paper strength and the published
        TMS settings); their measured times: :func:`capopt._progress.run_times`. Seeds are
        fixed: a preset gives the same numbers on every run.
    log : callable
        Receives one progress line per figure (with its time) and per training run
        (default ``tqdm.write``: printed above the progress bars).
    progress : bool, optional
        Progress bars on stderr over the sections, the training sweeps, the cross-checks
        and, on a first run, the compilation of the kernels; by default only on an
        interactive terminal.

    Returns
    -------
    ReportFiles

    Raises
    ------
    capopt._folder_lock.FolderInUseError
        If another live process is using ``out/checkpoints/`` (the message names the folder
        and the pid), before anything is computed or written.

    Notes
    -----
    The report opens with the claims table (:mod:`capopt.report.claims`): each claim of the
    paper with its figure, the numbers this run measured and a verdict computed from them;
    ``numbers.json`` holds the same rows under ``claims``. The settings are its appendix.
    """
    started = time.perf_counter()
    out = Path(out)
    # Held for the whole run: another run would overwrite its checkpoints as they are written.
    with FolderLock(out / CHECKPOINTS):
        return _reproduce(out, settings, log, show_progress(progress), started)


def _reproduce(out: Path, settings: Settings, log: Callable[[str], None], show: bool,
               started: float) -> ReportFiles:
    """:func:`reproduce`'s work, once it holds ``out/checkpoints/``."""
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    _compile(settings, log, show)
    bench = Workbench(settings, log, progress=show, checkpoints=out / CHECKPOINTS)
    entries = []
    specs = [spec for spec in FIGURES.values() if spec.drawn(settings)]
    with progress_bar(total=len(specs) + 1, progress=show, desc="capopt reproduce",
                      unit="section") as bar:
        for number, spec in enumerate(specs, start=1):
            bar.set_postfix_str(spec.slug)
            t0 = time.perf_counter()
            rendered = spec.make(bench)
            png = folder / f"{number:02d}-{spec.slug}.png"
            rendered.figure.savefig(png, dpi=DPI)
            seconds = time.perf_counter() - t0
            log(f"[{number}/{len(specs)}] {png.name:<28} {seconds:6.1f} s  {spec.title}")
            entries.append(Entry(number, spec, rendered, png, seconds))
            bar.update()

        bar.set_postfix_str("claims and report")
        claims = evaluate(Evidence({e.spec.slug: e.rendered.numbers for e in entries}))
        total = time.perf_counter() - started
        doc = Document(
            title="capopt: the capacity-allocation argument, regenerated",
            intro=(
                f"Each claim of Scherlis et al., Polysemanticity and Capacity in Neural Networks "
                f"(arXiv:2210.01892), judged from numbers computed in this run by capopt "
                f"{__version__} ({settings.name} settings, fixed seeds, {total:.0f} s): "
                f"{verdict_counts(claims)}. Each verdict follows from the evidence by the rule "
                "stated in its row; the figures follow, and the settings are in the appendix."
            ),
            claims=claims_table(claims),
            settings=settings.as_dict(),
            entries=tuple(entries),
            footer=("Regenerate with `capopt reproduce --out DIR` (add `--quick` for the small "
                    "version, `--full` for paper strength); the numbers behind every caption and every verdict are in "
                    "numbers.json."),
        )
        markdown = write_markdown(doc, out / "report.md")
        html = write_html(doc, out / "report.html")
        numbers = out / "numbers.json"
        numbers.write_text(json.dumps({
            "claims": [c.to_dict() for c in claims],
            "settings": settings.as_dict(),
            "seconds": total,
            "figures": {e.spec.slug: {"file": e.png.relative_to(out).as_posix(), "title": e.spec.title,
                                      "seconds": e.seconds,
                                      "numbers": flatten(e.rendered.numbers)}
                        for e in entries},
        }, indent=2))
        bar.update()
    return ReportFiles(markdown, html, numbers, tuple(e.png for e in entries), claims, total)

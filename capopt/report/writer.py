"""Write the report twice from one description: Markdown linking the PNGs, and a single
self-contained HTML file with the PNGs embedded (base64), which opens anywhere offline.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from .captions import Table
from .spec import FigureSpec, Rendered

__all__ = ["Entry", "Document", "write_markdown", "write_html", "CLAIMS_HEADING", "SETTINGS_HEADING"]

#: The headings of the report's first section and of its appendix.
CLAIMS_HEADING = "The paper's claims, judged by this run"
SETTINGS_HEADING = "Appendix: settings"


@dataclass(frozen=True)
class Entry:
    """One figure as it appears in the report."""

    number: int
    spec: FigureSpec
    rendered: Rendered
    png: Path
    seconds: float


@dataclass(frozen=True)
class Document:
    """Everything the report says: a title, an introduction, the claims table, the figures,
    a footer, and the settings (an appendix)."""

    title: str
    intro: str
    claims: Table
    settings: dict
    entries: tuple[Entry, ...]
    footer: str


def _settings_table(settings: dict) -> Table:
    return Table(("setting", "value"), tuple((k, str(v)) for k, v in settings.items()))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def write_markdown(doc: Document, path: Path) -> Path:
    """Write ``doc`` as Markdown; figures are linked relative to ``path``'s folder."""
    path = Path(path)
    lines = [f"# {doc.title}", "", doc.intro, "", f"## {CLAIMS_HEADING}", ""]
    lines += _md_table(doc.claims) + [""]
    for e in doc.entries:
        link = e.png.relative_to(path.parent).as_posix()
        lines += [f"## Figure {e.number}. {e.spec.title}", "",
                  f"![Figure {e.number}: {e.spec.title}]({link})", "",
                  f"**Figure {e.number}.** {e.rendered.caption}", ""]
        if e.rendered.table is not None:
            lines += _md_table(e.rendered.table) + [""]
        lines += [f"*Computed in {e.seconds:.1f} s.*", ""]
    lines += [f"## {SETTINGS_HEADING}", ""] + _md_table(_settings_table(doc.settings)) + [""]
    lines += ["---", "", doc.footer, ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; line-height: 1.5; color: #222; }
figure { margin: 2em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { margin-top: 0.5em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
.timing { color: #777; font-size: 0.85em; }
code { background: #f3f3f3; padding: 0 0.2em; }
td.reproduced { background: #e3f2e1; font-weight: bold; }
td.partly { background: #fdf1d6; font-weight: bold; }
td.not-reproduced { background: #f9dcdc; font-weight: bold; }
"""


def _html_table(table: Table, classed: str | None = None) -> str:
    """``table`` as HTML; the cells of column ``classed`` get their text as a CSS class."""

    def cell(column: str, text: str) -> str:
        css = f' class="{html.escape(text.replace(" ", "-"))}"' if column == classed else ""
        return f"<td{css}>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(cell(h, c) for h, c in zip(table.header, row)) + "</tr>"
                   for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(doc: Document, path: Path) -> Path:
    """Write ``doc`` as one HTML file with every PNG embedded as a base64 data URI."""
    path = Path(path)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(doc.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(doc.title)}</h1>",
        f"<p>{esc(doc.intro)}</p>",
        f'<h2 id="claims">{esc(CLAIMS_HEADING)}</h2>',
        _html_table(doc.claims, classed="verdict"),
    ]
    for e in doc.entries:
        data = base64.b64encode(e.png.read_bytes()).decode("ascii")
        parts += [
            f'<h2 id="{esc(e.spec.slug)}">Figure {e.number}. {esc(e.spec.title)}</h2>',
            "<figure>",
            f'<img src="data:image/png;base64,{data}" alt="Figure {e.number}: {esc(e.spec.title)}">',
            f"<figcaption><b>Figure {e.number}.</b> {esc(e.rendered.caption)}</figcaption>",
            "</figure>",
        ]
        if e.rendered.table is not None:
            parts.append(_html_table(e.rendered.table))
        parts.append(f'<p class="timing">Computed in {e.seconds:.1f} s.</p>')
    parts += [f'<h2 id="settings">{esc(SETTINGS_HEADING)}</h2>', _html_table(_settings_table(doc.settings)),
              "<hr>", f"<p>{esc(doc.footer)}</p>", "</body></html>", ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

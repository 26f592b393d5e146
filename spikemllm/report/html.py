"""The HTML report of a run: sections with real tables, plots referenced beside the page, notes, run metadata.

Plots are linked as files next to ``report.html`` (the run folder holds them as PNG and SVG), so the page
stays small and every image it shows is a file a test can check.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;font-size:13px;margin:.5em 0 1em}"
         "th,td{border:1px solid #ccc;padding:3px 7px}th{background:#f0f0f0}"
         "td.num{text-align:right;font-variant-numeric:tabular-nums}tr.group td{background:#fafafa;font-weight:bold}"
         "img{max-width:100%;border:1px solid #eee;margin:.3em 0}pre{background:#f5f5f5;padding:1em;"
         "overflow-x:auto;font-size:12px}section{margin-bottom:2em}p.note{color:#555;font-size:13px}")


@dataclass
class Table:
    """A table: header, rows of cells (strings), which columns are numbers, optional group captions.

    ``groups`` maps a row index to a caption shown as a full-width row above it.
    """

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[int] = ()
    groups: dict[int, str] = field(default_factory=dict)

    def to_html(self) -> str:
        num = set(self.numeric)
        out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in self.header) + "</tr>"]
        for i, row in enumerate(self.rows):
            if i in self.groups:
                cap = html.escape(self.groups[i])
                out.append(f"<tr class='group'><td colspan='{len(self.header)}'>{cap}</td></tr>")
            out.append("<tr>" + "".join(f"<td class='num'>{html.escape(c)}</td>" if j in num
                                        else f"<td>{html.escape(c)}</td>" for j, c in enumerate(row)) + "</tr>")
        out.append("</table>")
        return "\n".join(out)

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    """A titled part of the report: paragraphs (plain text), tables and images (files beside the page)."""

    title: str
    paragraphs: Sequence[str] = ()
    tables: Sequence[Table] = ()
    images: Sequence[Path] = ()
    anchor: str = ""

    def to_html(self, root: Path) -> str:
        parts = [f"<section id='{html.escape(self.anchor or _slug(self.title))}'><h2>{html.escape(self.title)}</h2>"]
        parts += [f"<p>{html.escape(p)}</p>" for p in self.paragraphs]
        parts += [t.to_html() for t in self.tables]
        for img in self.images:
            rel = Path(img).resolve().relative_to(root.resolve()).as_posix()
            parts.append(f"<figure><img alt='{html.escape(Path(img).stem.replace('_', ' '))}' "
                         f"src='{html.escape(rel)}'></figure>")
        parts.append("</section>")
        return "\n".join(parts)


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def write_report(path: Path, title: str, sections: Sequence[Section], meta: dict[str, Any] | None = None,
                 intro: str = "") -> Path:
    """Write ``path`` (atomically: a temporary file, then a rename). Images must lie under ``path``'s folder."""
    root = path.parent
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    links = [f"<a href='#{html.escape(s.anchor or _slug(s.title))}'>{html.escape(s.title)}</a>" for s in sections]
    links += ["<a href='#run'>Run</a>"] if meta else []
    parts.append("<nav>" + " · ".join(links) + "</nav>")
    parts += [s.to_html(root) for s in sections]
    if meta:
        rows = [[str(k), v if isinstance(v, str) else repr(v)] for k, v in meta.items()]
        parts.append(Section("Run", tables=[Table(["field", "value"], rows)], anchor="run").to_html(root))
    parts.append("</body></html>")
    from ..atomic import atomic_write_text

    return atomic_write_text(path, "\n".join(parts))

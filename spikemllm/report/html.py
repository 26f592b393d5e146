"""A self-contained HTML report (plots embedded as base64 PNG) of a demo or eval run."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Sequence


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def write_report(path: Path, title: str, table_md: str, images: Sequence[Path], notes: Sequence[str] = (),
                 meta: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (atomically) with a title, the results table, the plots and notes."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}pre{background:#f5f5f5;"
             "padding:1em;overflow-x:auto}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<pre>{html.escape(table_md)}</pre>"]
    for p in images:
        parts.append(f"<h3>{html.escape(p.stem.replace('_', ' '))}</h3>{_img(p)}")
    if notes:
        parts.append("<h3>Notes</h3><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if meta:
        parts.append("<h3>Run</h3><pre>" + html.escape("\n".join(f"{k}: {v}" for k, v in meta.items())) + "</pre>")
    parts.append("</body></html>")
    from ..atomic import atomic_write_text

    return atomic_write_text(path, "\n".join(parts))

"""HTML tables: one renderer for report.html and for the objects Jupyter shows inline.

The report and a notebook show the same comparison and the same ranked grid; drawing
both from one function keeps them from drifting apart. Every cell is escaped: variant
names and verdict reasons come from user files.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from html import escape
from pathlib import Path

__all__ = ["STYLE", "bullet_list", "escape", "inline_png", "page", "table"]

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
    "padding:4px 8px;text-align:right}th{background:#f3f3f3}img{max-width:100%;"
    "display:block;margin:1em 0}"
)
"""The stylesheet of report.html (a notebook keeps its own)."""


def table(header: Sequence[str], body: Sequence[Sequence[object]], caption: str = "") -> str:
    """An HTML table of already formatted cells, escaped.

    Args:
        header: Column titles.
        body: Rows of cells; each is turned into text with ``str``.
        caption: A title shown above the table (none when empty).

    Returns:
        The ``<table>`` element as a string.
    """
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in body
    )
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def bullet_list(items: Sequence[tuple[str, str]]) -> str:
    """A list of (bold label, text) items, escaped; an empty label shows the text alone."""
    entries = "".join(
        f"<li><b>{html.escape(label)}</b>: {html.escape(text)}</li>"
        if label
        else f"<li>{html.escape(text)}</li>"
        for label, text in items
    )
    return f"<ul>{entries}</ul>"


def inline_png(path: Path) -> str:
    """An ``<img>`` carrying the PNG itself, so the page is one self-contained file."""
    encoded = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}">'


def page(title: str, parts: Sequence[str]) -> str:
    """A complete HTML document of the given body parts."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )

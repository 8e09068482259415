"""Self-contained HTML reports: text blocks and plotly figures in one file that opens without a network."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from ..io.files import atomic_write

__all__ = ["html_report"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
          "pre{background:#f6f6f6;padding:1em;overflow-x:auto} h2{border-bottom:1px solid #ddd;padding-bottom:.2em}")


def html_report(path: str | os.PathLike, title: str, blocks: Sequence[tuple[str, str | go.Figure]],
                intro: str = "") -> Path:
    """Write ``blocks`` — ``(heading, text or figure)`` pairs — under ``title`` to one HTML file.

    Text goes in a ``<pre>`` block (tables stay aligned); plotly.js is inlined once, with the
    first figure. The file is written atomically.
    """
    parts, first_figure = [], True
    for heading, content in blocks:
        if isinstance(content, go.Figure):
            body = content.to_html(full_html=False, include_plotlyjs=first_figure, default_height="460px")
            first_figure = False
        else:
            body = f"<pre>{html.escape(str(content))}</pre>"
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
           f"<style>{_STYLE}</style>\n</head><body>\n<h1>{html.escape(title)}</h1>\n"
           + (f"<p>{html.escape(intro)}</p>\n" if intro else "") + "\n".join(parts) + "\n</body></html>\n")
    path = Path(path)
    with atomic_write(path) as fh:
        fh.write(doc)
    return path

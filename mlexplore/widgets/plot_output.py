"""`PlotOutput`: a plotly figure drawn by JupyterLab's plotly renderer inside an ``Output`` widget.

Why not a ``FigureWidget`` for figures that change while a job runs: plotly ≥ 6 builds
``FigureWidget`` on anywidget, which sends a ~5 MB JavaScript module with every figure and
imports it anew for each one. anywidget gives that import 2 s; past that the widget model
in the page stops taking messages for good (every later update is dropped without an error).
On a busy machine, a panel that opens four figures at once then shows blank axes that never
fill in. An ``Output`` widget is a core ipywidget: its updates always arrive, and the plotly
MIME renderer loads plotly.js once per page. The price: each :meth:`show` redraws the whole
figure (zoom is reset), so use it for figures that are redrawn a few times a second at most,
and use :class:`~mlexplore.widgets.clickable_figure.ClickableFigure` where a click on a
point must reach Python.
"""

from __future__ import annotations

import json

import ipywidgets as w
import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["PlotOutput", "PLOTLY_MIME"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"


class PlotOutput(w.Output):
    """Show ``figure`` (a ``go.Figure`` kept as :attr:`figure`); call :meth:`show` after changing it."""

    def __init__(self, figure: go.Figure, **kwargs) -> None:
        super().__init__(**kwargs)
        self.figure = figure
        self.show()

    def show(self) -> None:
        """Send the figure as it is now to the page, replacing what was drawn before."""
        spec = json.loads(pio.to_json(self.figure, validate=False))
        self.outputs = ({"output_type": "display_data", "metadata": {},
                         "data": {PLOTLY_MIME: spec, "text/plain": f"<plotly figure: {len(self.figure.data)} traces>"}},)

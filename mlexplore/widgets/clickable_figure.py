"""`ClickableFigure`: a plotly ``FigureWidget`` that survives a slow first load in the page.

A plain ``FigureWidget`` (plotly ≥ 6) is an anywidget whose module is plotly's whole 5 MB
bundle, imported anew for every figure. anywidget gives a model 2 s to load and initialise
its module; past that it drops every message to the model for good, so on a busy machine
the figure stays blank (see :mod:`mlexplore.widgets.plot_output`). Here the anywidget module
is a small loader that returns at once: it imports plotly's bundle (sent as the
``_plotly_bundle`` trait) once per page, in the background, and hands it the model and the
views when it is there. Edits that reach the page before the bundle does are not lost
either: :meth:`ClickableFigure.sync` puts the whole figure into the model's state, which
a view starts from. Use it where a click must reach Python (``trace.on_click``); figures
that are only shown are simpler as :class:`~mlexplore.widgets.plot_output.PlotOutput`.
"""

from __future__ import annotations

import functools
from copy import deepcopy
from pathlib import Path

import plotly
import plotly.graph_objects as go
import traitlets

__all__ = ["ClickableFigure"]

_LOADER = """
const CACHE = (globalThis.__mlexplorePlotlyBundles ??= new Map());

function loadBundle(code) {
  const key = code.length + ":" + code.slice(-256);
  if (!CACHE.has(key)) {
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    CACHE.set(key, import(url).finally(() => URL.revokeObjectURL(url)));
  }
  return CACHE.get(key);
}

export default () => {
  let inner = null;
  let ready = null;
  return {
    initialize({ model }) {
      // not awaited: anywidget allows initialize 2 s, the first import of the bundle can take longer
      ready = loadBundle(model.get("_plotly_bundle")).then(async (mod) => {
        inner = await mod.default();
        await inner.initialize({ model });
      });
      ready.catch((error) => console.error("[mlexplore] plotly bundle failed to load", error));
    },
    async render({ model, el }) {
      await ready;
      return inner.render({ model, el });
    },
  };
};
"""


@functools.cache
def _plotly_bundle() -> str:
    return (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_text(encoding="utf-8")


class ClickableFigure(go.FigureWidget):
    """A ``go.FigureWidget`` with a module loader that cannot time out; call :meth:`sync` after edits."""

    _esm = _LOADER
    _plotly_bundle = traitlets.Unicode().tag(sync=True)

    @traitlets.default("_plotly_bundle")
    def _default_bundle(self) -> str:
        return _plotly_bundle()

    def sync(self) -> None:
        """Put the whole figure as it is now into the widget model's state.

        plotly sends edits as one-shot messages that only an initialised model applies; a view
        created later starts from this state, so it shows every edit even if such a message
        arrived before plotly's bundle had loaded in the page.
        """
        self._widget_layout = deepcopy(self._layout_obj._props)
        self._widget_data = deepcopy(self._data)

"""`PDFViewer`: radial distribution functions of datasets side by side, and error PDFs of models.

Left: g(r) (total or one element pair) of every chosen dataset or selection,
from :func:`mlexplore.analysis.rdf`. Right: the error PDFs of trained models —
for an ensemble the mean PDF with its ±1 std band (001 fig 5), from
:func:`mlexplore.analysis.error_band`. Add error sets with :meth:`add_errors`
(or :meth:`add_task_runs` after a :class:`TaskComparison`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from ..analysis import ensemble_error_stats, rdf
from ..data.dataset import StructureDataset
from ..errors import InputError
from ..viz import error_pdf_bands, rdf_comparison
from .plot_output import PlotOutput

__all__ = ["PDFViewer"]

_LAYOUT = dict(height=340, margin=dict(t=40))


class PDFViewer(w.VBox):
    """Display it in a notebook.

    Parameters
    ----------
    datasets:
        ``{name: dataset}`` (or one dataset) of periodic structures. Default: the
        EMT gold set split into its bulk FCC, bulk BCC and slab groups.
    errors:
        ``{name: [errors of model 1, errors of model 2, …]}`` (predicted − reference).
    unit:
        Unit of the errors, for the axis title.
    """

    def __init__(self, datasets: dict[str, StructureDataset] | StructureDataset | None = None,
                 errors: dict[str, Sequence[Any]] | None = None, unit: str = "") -> None:
        if datasets is None:
            datasets = _default_datasets()
        elif isinstance(datasets, StructureDataset):
            datasets = {datasets.name or "dataset": datasets}
        if not datasets:
            raise InputError("no datasets given", field="datasets")
        self.datasets = dict(datasets)
        self.errors: dict[str, list[np.ndarray]] = {}
        self.unit = unit
        self._cache: dict[tuple, Any] = {}
        style = {"description_width": "90px"}
        names = list(self.datasets)
        self.selected = w.SelectMultiple(options=names, value=tuple(names), description="datasets", style=style,
                                         rows=min(6, len(names)))
        self.pair = w.Dropdown(options=self._pair_options(), value="total", description="pair", style=style)
        self.r_max = w.FloatSlider(value=6.0, min=2.0, max=12.0, step=0.5, description="r max (Å)", style=style,
                                   continuous_update=False)
        self.bin_width = w.FloatLogSlider(value=0.02, base=10, min=-2.5, max=-0.5, step=0.05,
                                          description="bin (Å)", style=style, continuous_update=False)
        self.error_sets = w.SelectMultiple(options=[], value=(), description="models", style=style, rows=4)
        self.show_members = w.Checkbox(False, description="every model's PDF")
        self.status = w.HTML("")
        self.stats = w.HTML("")
        # plain figures through Output widgets (PlotOutput; see there why not FigureWidgets)
        self.rdf_view = PlotOutput(rdf_comparison({}).update_layout(_LAYOUT), layout=w.Layout(width="100%"))
        self.error_view = PlotOutput(error_pdf_bands({}).update_layout(_LAYOUT), layout=w.Layout(width="100%"))
        for c in (self.selected, self.pair, self.r_max, self.bin_width):
            c.observe(lambda _: self.update_rdf(), names="value")
        for c in (self.error_sets, self.show_members):
            c.observe(lambda _: self.update_errors(), names="value")
        left = w.VBox([w.HBox([self.selected, w.VBox([self.pair, self.r_max, self.bin_width])]), self.rdf_view],
                      layout=w.Layout(width="50%"))
        right = w.VBox([w.HBox([self.error_sets, self.show_members]), self.error_view, self.stats],
                       layout=w.Layout(width="50%"))
        super().__init__([w.HBox([left, right]), self.status])
        for name, errs in (errors or {}).items():
            self.add_errors(name, errs)
        self.update_rdf()
        self.update_errors()

    # -------------------------------------------------------------- Python API
    def add_dataset(self, name: str, dataset: StructureDataset) -> None:
        """Add (or replace) a dataset and show it."""
        self.datasets[name] = dataset
        shown = list(self.selected.value)
        self.selected.options = list(self.datasets)
        self.selected.value = tuple(dict.fromkeys(shown + [name]))
        self.pair.options = self._pair_options()

    def add_errors(self, name: str, errors: Sequence[Any], unit: str | None = None) -> None:
        """Add an error set: one array of errors (predicted − reference) per model; shows it."""
        if isinstance(errors, np.ndarray) and errors.ndim == 1:
            errors = [errors]
        arrays = [np.asarray(e.detach().cpu().numpy() if hasattr(e, "detach") else e, dtype=float).reshape(-1)
                  for e in errors]
        if not arrays or any(a.size < 2 for a in arrays):
            raise InputError(f"error set {name!r} needs at least one model with two or more errors", field=name)
        self.errors[name] = arrays
        if unit is not None:
            self.unit = unit
        shown = list(self.error_sets.value)  # setting options clears the selection
        self.error_sets.options = list(self.errors)
        self.error_sets.value = tuple(dict.fromkeys(shown + [name]))

    def add_task_runs(self, runs: Sequence[Any], target: str, unit: str = "") -> None:
        """Error sets from :class:`~mlexplore.training.TaskRun` results: one set per task
        combination that predicts ``target``, one PDF per repeated run."""
        by_combo: dict[str, list[np.ndarray]] = {}
        for run in runs:
            if target in run.tasks:
                by_combo.setdefault(f"{run.label} → {target}", []).append(run.errors(target))
        if not by_combo:
            raise InputError(f"no run predicts {target!r}", field="target")
        for name, errs in by_combo.items():
            self.add_errors(name, errs, unit=unit)

    # ----------------------------------------------------------------- drawing
    def _pair_options(self) -> list[str]:
        symbols = sorted({e for ds in self.datasets.values() for e in ds.elements})
        return ["total"] + ([f"{a}-{b}" for a in symbols for b in symbols] if len(symbols) > 1 else [])

    def rdf_of(self, name: str):
        """The :class:`~mlexplore.analysis.RDF` of one dataset at the current r max and bin width (cached)."""
        key = (name, round(self.r_max.value, 6), round(self.bin_width.value, 8))
        if key not in self._cache:
            self._cache[key] = rdf(self.datasets[name], r_max=self.r_max.value, bin_width=self.bin_width.value)
        return self._cache[key]

    @property
    def rdf_figure(self) -> go.Figure:
        """The g(r) figure as shown now (from :func:`mlexplore.viz.rdf_comparison`)."""
        return self.rdf_view.figure

    @property
    def error_figure(self) -> go.Figure:
        """The error-PDF figure as shown now (from :func:`mlexplore.viz.error_pdf_bands`)."""
        return self.error_view.figure

    def update_rdf(self) -> None:
        """Redraw g(r) of the chosen datasets for the chosen pair."""
        try:
            results = {name: self.rdf_of(name) for name in self.selected.value}
        except Exception as exc:
            self.status.value = f"<span style='color:crimson'>{type(exc).__name__}: {exc}</span>"
            return
        self.rdf_view.figure = rdf_comparison(results, pair=self.pair.value).update_layout(_LAYOUT)
        self.rdf_view.show()
        missing = [n for n, res in results.items() if self.pair.value not in res.g]
        self.status.value = f"no {self.pair.value} pairs in: {', '.join(missing)}" if missing else ""

    def update_errors(self) -> None:
        """Redraw the error PDFs of the chosen model sets on one common grid."""
        chosen = {n: self.errors[n] for n in self.error_sets.value if n in self.errors}
        self.error_view.figure = error_pdf_bands(chosen, unit=self.unit, show_members=self.show_members.value,
                                                 ).update_layout(_LAYOUT)
        self.error_view.show()
        if not chosen:
            self.stats.value = "<i>no models yet: viewer.add_errors(name, [errors per model])</i>"
            return
        rows = []
        for name, errs in chosen.items():
            st = ensemble_error_stats(errs)
            rows.append(f"<tr><td>{name}</td><td>{st['n_models']}</td><td>{st['mean_error']:.4g}</td>"
                        f"<td>{st['rmse_mean']:.4g} ± {st['rmse_std']:.2g}</td></tr>")
        self.stats.value = ("<table><tr><th>models</th><th>n</th><th>mean error</th><th>RMSE (mean ± std)</th></tr>"
                            + "".join(rows) + "</table>")


def _default_datasets() -> dict[str, StructureDataset]:
    from ..datasets import gold

    ds = gold(n_per_group=4, progress=False)
    out = {}
    for group in ("bulk-fcc", "bulk-bcc", "surface-111"):
        keep = [k for k, t in enumerate(ds.tags) if group in t]
        if keep:
            out[f"Au {group}"] = ds[keep]
    return out

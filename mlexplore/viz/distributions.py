"""Distributions side by side: the g(r) of several datasets, and the error PDFs of several sets of
models with their ensemble bands (what :class:`~mlexplore.widgets.PDFViewer` shows).

    from mlexplore.analysis import rdf
    from mlexplore.viz import error_pdf_bands, rdf_comparison

    rdf_comparison({"fcc": rdf(fcc), "bcc": rdf(bcc)}, pair="total")
    error_pdf_bands({"STL": [errors_1, errors_2], "MTL": [errors_3, errors_4]}, unit="meV/atom")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..analysis.errors import error_band, error_grid
from ..errors import InputError
from .figures import PALETTE, band_traces

__all__ = ["rdf_comparison", "error_pdf_bands"]


def rdf_comparison(results: Mapping[str, Any], pair: str = "total", title: str = "radial distribution"
                   ) -> go.Figure:
    """One g(r) curve per dataset: ``results`` maps a name to an :class:`~mlexplore.analysis.RDF`;
    those without ``pair`` (e.g. ``"Fe-Ni"`` in pure iron) are left out."""
    fig = go.Figure()
    k = 0
    for name, res in results.items():
        if pair in res.g:
            fig.add_trace(go.Scatter(x=res.r, y=res.g[pair], mode="lines", name=name,
                                     line=dict(color=PALETTE[k % len(PALETTE)])))
            k += 1
    fig.update_layout(title=title, xaxis_title="r (Å)", yaxis_title=f"g(r) {pair}")
    return fig


def error_pdf_bands(errors: Mapping[str, Sequence[Any]], unit: str = "", show_members: bool = False,
                    n_grid: int = 300, title: str = "error PDF (mean ± 1 std over models)") -> go.Figure:
    """Error PDFs of several sets of models on one common grid: per set the mean PDF and its ±1 std
    band over the models (001 fig 5, :func:`mlexplore.analysis.error_band`), named
    ``"<set> (<n> models)"``, and a dashed line at its mean error; ``show_members`` adds every
    model's own PDF. ``errors``: ``{name: [errors of model 1, …]}`` (predicted − reference, in ``unit``)."""
    fig = go.Figure()
    fig.update_layout(title=title, yaxis_title="density", xaxis_title=f"error{' (' + unit + ')' if unit else ''}")
    if not errors:
        return fig
    sets = {name: [np.asarray(e, dtype=float).reshape(-1) for e in errs] for name, errs in errors.items()}
    if any(not errs or any(e.size < 2 for e in errs) for errs in sets.values()):
        raise InputError("every error set needs at least one model with two or more errors", field="errors")
    grid = error_grid([e for errs in sets.values() for e in errs], n_grid)
    shapes = []
    for k, (name, errs) in enumerate(sets.items()):
        band = error_band(errs, grid=grid)
        c = PALETTE[k % len(PALETTE)]
        fig.add_traces(band_traces(band, f"{name} ({band.n_models} models)", c, alpha=0.2))
        if show_members:
            for p in band.pdfs:
                fig.add_trace(go.Scatter(x=grid, y=p, mode="lines", line=dict(color=c, width=0.5), opacity=0.5,
                                         showlegend=False, hoverinfo="skip"))
        centre = float(band.error_mean.mean())
        shapes.append(dict(type="line", x0=centre, x1=centre, y0=0, y1=1, yref="paper",
                           line=dict(color=c, dash="dash", width=1)))
    fig.update_layout(shapes=shapes)
    return fig

"""Figures of an LDOS surrogate (MALA-style; Ellis et al., Phys. Rev. B 104, 035120 (2021)).

- :func:`dos_figure` — densities of states against energy (DFT and one or more predictions), with
  each curve's Fermi level as a dotted line.
- :func:`density_slice` — one plane of the electron density on the grid: the reference, the
  prediction and their difference side by side, with the atoms lying in the plane marked.

They take computed arrays (from :mod:`mlexplore.analysis`'s LDOS observables) and compute no science.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import InputError

__all__ = ["dos_figure", "density_slice"]


def dos_figure(energies: Any, curves: Mapping[str, Any], fermi_levels: Mapping[str, float] | None = None,
               title: str = "density of states", yaxis_title: str = "DOS (states/eV)") -> go.Figure:
    """``curves`` = ``{name: DOS (states/eV) on energies (eV)}``; ``fermi_levels`` = ``{name: E_F (eV)}``.

    The same figure draws the LDOS at one point (``yaxis_title="LDOS (states/(eV Å³))"``)."""
    e = np.asarray(energies, float).ravel()
    if not curves:
        raise InputError("no DOS curves to draw", field="curves")
    fig = go.Figure()
    for k, (name, d) in enumerate(curves.items()):
        d = np.asarray(d, float).ravel()
        if d.shape != e.shape:
            raise InputError(f"DOS {name!r} has {d.size} values for {e.size} energies", field="curves")
        fig.add_trace(go.Scatter(x=e, y=d, name=name, mode="lines"))
    for name, ef in (fermi_levels or {}).items():
        fig.add_vline(x=float(ef), line=dict(dash="dot", width=1), annotation_text=f"E_F {name}",
                      annotation_position="top left")
    fig.update_layout(template="plotly_white", title=title, xaxis_title="E (eV)", yaxis_title=yaxis_title,
                      height=360, margin=dict(t=50, l=60, r=10, b=40))
    return fig


def density_slice(reference: Any, cell: Any, positions: Any, predicted: Any | None = None, axis: int = 2,
                  index: int | None = None, tolerance: float | None = None) -> go.Figure:
    """The density (electrons/Å³) on grid plane ``index`` normal to lattice vector ``axis``.

    ``reference`` and ``predicted`` are ``(nx, ny, nz)`` arrays on the same grid (point ``(i, j, k)``
    at fractional ``(i/nx, j/ny, k/nz)``, as :func:`mlexplore.descriptors.grid_points`). With a
    prediction the figure has three panels: reference, prediction and prediction − reference.
    Axes are the two in-plane lattice vectors' lengths (Å); for a non-orthogonal cell the plane is
    drawn sheared straight. Atoms within ``tolerance`` (Å; default half a grid spacing) of the
    plane, periodic images included, are marked.
    """
    ref = np.asarray(reference, float)
    if ref.ndim != 3:
        raise InputError(f"reference must be a (nx, ny, nz) grid, got shape {ref.shape}", field="reference")
    if axis not in (0, 1, 2):
        raise InputError(f"axis must be 0, 1 or 2, got {axis!r}", field="axis")
    pred = None if predicted is None else np.asarray(predicted, float)
    if pred is not None and pred.shape != ref.shape:
        raise InputError(f"predicted has shape {pred.shape}, the reference {ref.shape}", field="predicted")
    cell = np.asarray(cell, float).reshape(3, 3)
    n = ref.shape[axis]
    index = n // 2 if index is None else int(index)
    if not 0 <= index < n:
        raise InputError(f"index must be in 0…{n - 1} along axis {axis}, got {index}", field="index")
    u, v = [a for a in range(3) if a != axis]
    lu, lv, lw = (np.linalg.norm(cell[a]) for a in (u, v, axis))
    xs = np.arange(ref.shape[u]) / ref.shape[u] * lu
    ys = np.arange(ref.shape[v]) / ref.shape[v] * lv
    take = lambda grid: np.take(grid, index, axis=axis).T  # noqa: E731 - rows = v, columns = u
    frac = np.asarray(positions, float).reshape(-1, 3) @ np.linalg.inv(cell)
    tol = lw / n / 2 if tolerance is None else float(tolerance)
    off = ((frac[:, axis] - index / n + 0.5) % 1.0 - 0.5) * lw
    on = np.abs(off) <= tol + 1e-9
    ax_u, ax_v = (frac[on, u] % 1.0) * lu, (frac[on, v] % 1.0) * lv
    panels = [("DFT", take(ref))] + ([] if pred is None else [("prediction", take(pred)),
                                                                ("prediction − DFT", take(pred - ref))])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.08)
    lo, hi = float(min(p[1].min() for p in panels[:2])), float(max(p[1].max() for p in panels[:2]))
    for k, (name, z) in enumerate(panels, start=1):
        diff = name.endswith("DFT") and k == 3
        limit = float(np.abs(z).max()) if diff else None
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, colorscale="RdBu_r" if diff else "Viridis",
                                 zmin=-limit if diff else lo, zmax=limit if diff else hi, name=name,
                                 colorbar=dict(x=1.0 + 0.06 * (k - 1), len=0.8, title="e/Å³" if k == 1 else None),
                                 showscale=k in (1, 3)), row=1, col=k)
        fig.add_trace(go.Scatter(x=ax_u, y=ax_v, mode="markers", name="atoms in the plane", showlegend=k == 1,
                                 marker=dict(color="white", size=9, line=dict(color="black", width=1))), row=1, col=k)
    fig.update_layout(template="plotly_white", height=360, margin=dict(t=50, l=50, r=40, b=40),
                      title=f"density on plane {index} of {n} along lattice vector {axis}")
    fig.update_xaxes(title_text="Å")
    fig.update_yaxes(title_text="Å", scaleanchor="x")
    return fig

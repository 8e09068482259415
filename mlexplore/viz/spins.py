"""Figures of spin Monte Carlo runs (002 §4.3.1, figs 4.20–4.22): traces per sweep and the
magnetisation against temperature.

- :func:`spin_traces` — the net-spin ratio |M| (top) and the energy per atom (bottom) of every
  replica against the sweep, one colour per temperature.
- :func:`magnetisation_curve` — mean |M| with its error bar against temperature, one line per
  initial state or cell, with reference temperatures as vertical lines (e.g. the measured Curie
  temperature of iron, 1043 K).

The per-spin polar angles that colour a lattice's moments come from
:func:`mlexplore.analysis.polar_angles`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import InputError

__all__ = ["spin_traces", "magnetisation_curve", "relaxed_magnetisation"]


def spin_traces(net_spin_ratio: Any, energy_per_atom: Any, temperatures: Sequence[float],
                labels: Sequence[str] | None = None) -> go.Figure:
    """|M| and energy per atom (eV) of every replica against the sweep: arrays ``(sweeps, replicas)``;
    ``temperatures`` (K) per replica colour the lines; ``labels`` (e.g. the initial states) name them."""
    m = np.atleast_2d(np.asarray(net_spin_ratio, float))
    e = np.atleast_2d(np.asarray(energy_per_atom, float))
    temps = np.asarray(temperatures, float)
    if m.shape != e.shape or (m.size and m.shape[1] != len(temps)):
        raise InputError(f"net_spin_ratio {m.shape}, energy {e.shape} and {len(temps)} temperatures do not match",
                         field="net_spin_ratio")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    t_lo, t_hi = (temps.min(), temps.max()) if len(temps) else (0, 1)
    sweeps = np.arange(1, m.shape[0] + 1)
    for r in range(m.shape[1] if m.size else 0):
        frac = 0.0 if t_hi == t_lo else (temps[r] - t_lo) / (t_hi - t_lo)
        colour = f"rgb({int(40 + 200 * frac)}, 60, {int(230 - 190 * frac)})"
        name = f"{temps[r]:.0f} K" + (f", {labels[r]}" if labels is not None else "")
        fig.add_trace(go.Scatter(x=sweeps, y=m[:, r], mode="lines", line=dict(color=colour, width=1.5), name=name,
                                 legendgroup=str(r)), row=1, col=1)
        fig.add_trace(go.Scatter(x=sweeps, y=e[:, r], mode="lines", line=dict(color=colour, width=1.5), name=name,
                                 legendgroup=str(r), showlegend=False), row=2, col=1)
    fig.update_yaxes(title_text="|M| = |Σ s| / Σ |s|", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="energy (eV/atom)", row=2, col=1)
    fig.update_xaxes(title_text="sweep", row=2, col=1)
    fig.update_layout(template="plotly_white", height=460, margin=dict(t=30, l=60, r=10, b=40))
    return fig


def magnetisation_curve(curves: Mapping[str, tuple[Any, Any, Any]],
                        references: Mapping[str, float] | None = None) -> go.Figure:
    """Mean |M| against temperature: ``curves`` = ``{name: (temperatures K, mean |M|, error)}``;
    ``references`` = ``{label: temperature K}`` drawn as vertical lines."""
    fig = go.Figure()
    for name, (t, m, err) in curves.items():
        fig.add_trace(go.Scatter(x=np.asarray(t, float), y=np.asarray(m, float), mode="lines+markers", name=name,
                                 error_y=dict(type="data", array=np.asarray(err, float), visible=True)))
    for label, t in (references or {}).items():
        fig.add_vline(x=float(t), line=dict(dash="dash", color="grey"), annotation_text=label,
                      annotation_position="top")
    fig.update_layout(template="plotly_white", xaxis_title="temperature (K)", yaxis_title="|M| = |Σ s| / Σ |s|",
                      yaxis_range=[0, 1.02], height=380, margin=dict(t=40, l=60, r=10, b=40))
    return fig


def relaxed_magnetisation(final: Mapping[str, Any], temperature_K: float | None = None) -> go.Figure:
    """Bars of the mean relaxed |M| per initial state (``final`` = ``{state: per-replica |M|}``), with
    the standard error of the mean as error bars and each replica as a point."""
    if not final:
        raise InputError("no initial states to show", field="final")
    fig = go.Figure()
    names = list(final)
    values = [np.asarray(final[k], float).ravel() for k in names]
    means = [v.mean() for v in values]
    errs = [v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0 for v in values]
    fig.add_trace(go.Bar(x=names, y=means, error_y=dict(type="data", array=errs, visible=True), name="mean ± s.e.m.",
                         marker_color="lightsteelblue"))
    fig.add_trace(go.Scatter(x=[k for k, v in zip(names, values) for _ in v], y=np.concatenate(values),
                             mode="markers", name="replicas", marker=dict(color="black", size=6, opacity=0.6)))
    title = "relaxed |M| by initial state" + (f" at {temperature_K:g} K" if temperature_K is not None else "")
    fig.update_layout(template="plotly_white", title=title, xaxis_title="initial state",
                      yaxis_title="|M| = |Σ s| / Σ |s|", yaxis_range=[0, 1.02], height=360,
                      margin=dict(t=50, l=60, r=10, b=40))
    return fig

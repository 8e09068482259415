"""Plotly figures (SPEC §8). Each function takes arrays or library results and returns a ``go.Figure``.

- :func:`parity_plot` — prediction vs reference with point-density colouring and y = x (001 fig 4).
- :func:`error_pdf` — error PDFs of several models: mean curve and ±1 std band (001 fig 5).
- :func:`learning_curves` — train/validation loss or RMSE per task against epoch.
- :func:`rdf_plot` — g(r), total and partial.
- :func:`basis_over_rdf` — radial basis functions over the RDF (002 fig 2.17).
- :func:`cutoff_shapes`, :func:`angular_shapes` — cutoff functions and angular factors.
- :func:`pca_map` — a PCA map coloured by a value or a category, hover shows the structure.
- :func:`error_vs_reference` — error against the reference value, one trace per group (002 fig 4.6).
- :func:`task_table` — the STL/MTL comparison of :func:`mlexplore.training.compare_tasks` as a table.
- :func:`task_error_pdfs` — the test-error PDFs of its runs, one band per task combination.
- :func:`energy_volume_plot` — energy against volume per group, with a fitted equation of state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from scipy.stats import gaussian_kde

from ..analysis.errors import ErrorBand, error_band, error_grid
from ..analysis.metrics import r2, rmse
from ..errors import InputError
from ..training.labels import run_label

__all__ = ["parity_plot", "error_pdf", "band_traces", "learning_curves", "rdf_plot", "basis_over_rdf",
           "cutoff_shapes", "angular_shapes", "pca_map", "error_vs_reference", "task_table", "task_error_pdfs",
           "energy_volume_plot", "PALETTE"]


def _flat(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1)


def parity_plot(reference: Any, predicted: Any, title: str = "", unit: str = "", max_points: int = 20000,
                seed: int = 0) -> go.Figure:
    """Predicted against reference, points coloured by their local density (Gaussian KDE), with
    y = x and the RMSE and R² in the title. Large sets are subsampled to ``max_points`` for drawing
    (the scores use every point)."""
    y, p = _flat(reference), _flat(predicted)
    if y.shape != p.shape or y.size == 0:
        raise InputError(f"{y.size} reference values and {p.size} predictions", field="predicted")
    score = f"RMSE {rmse(y, p):.4g}{' ' + unit if unit else ''}, R² {r2(y, p):.4f}"
    idx = np.arange(y.size)
    if y.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(y.size, max_points, replace=False))
    ys, ps = y[idx], p[idx]
    try:
        density = gaussian_kde(np.vstack([ys, ps]))(np.vstack([ys, ps]))
    except (np.linalg.LinAlgError, ValueError):  # all points on a line: no 2-D density
        density = np.ones_like(ys)
    lo, hi = float(min(ys.min(), ps.min())), float(max(ys.max(), ps.max()))
    fig = go.Figure([
        go.Scattergl(x=ys, y=ps, mode="markers", name="samples",
                     marker=dict(color=density, colorscale="Viridis", size=4, colorbar=dict(title="density"))),
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(color="black", dash="dash")),
    ])
    label = f" ({unit})" if unit else ""
    fig.update_layout(title=f"{title} — {score}" if title else score, xaxis_title=f"reference{label}",
                      yaxis_title=f"predicted{label}")
    return fig


#: Line colours of the panels and reports (plotly's default sequence).
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def rgba(hex_color: str, alpha: float) -> str:
    """``rgba(r,g,b,alpha)`` from ``#rrggbb``."""
    r, g, b = (int(hex_color[k:k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def band_traces(band: ErrorBand, name: str, color: str = PALETTE[0], band_name: str | None = None,
                alpha: float = 0.25) -> list[go.Scatter]:
    """The two traces of an ensemble error PDF: the filled ±1 std band (in the legend only when
    ``band_name`` is given) and the mean PDF named ``name``."""
    grid = band.grid
    return [
        go.Scatter(x=np.concatenate([grid, grid[::-1]]), y=np.concatenate([band.mean + band.std,
                                                                          (band.mean - band.std)[::-1]]),
                   fill="toself", line=dict(width=0), fillcolor=rgba(color, alpha), hoverinfo="skip",
                   name=band_name, showlegend=band_name is not None),
        go.Scatter(x=grid, y=band.mean, mode="lines", name=name, line=dict(color=color)),
    ]


def error_pdf(errors: Any, title: str = "", unit: str = "", name: str = "error") -> go.Figure:
    """Error PDF across an ensemble: the mean PDF, a ±1 std band over the models and a vertical line
    at the mean error (001 fig 5). ``errors``: one array per model, or an
    :class:`mlexplore.analysis.ErrorBand`."""
    band = errors if isinstance(errors, ErrorBand) else error_band(errors)
    centre = float(band.error_mean.mean())
    fig = go.Figure(band_traces(band, f"mean PDF ({band.n_models} models)", band_name="±1 std"))
    fig.add_vline(x=centre, line=dict(color="black", dash="dash", width=1),
                  annotation_text=f"mean {centre:.3g}", annotation_position="top right")
    fig.update_layout(title=title, xaxis_title=f"{name}{' (' + unit + ')' if unit else ''}", yaxis_title="density")
    return fig


def learning_curves(history: Any, metrics: Sequence[str] | None = None, log_y: bool = True) -> go.Figure:
    """Loss (or the named metrics, e.g. ``val_energy_rmse``) against epoch for a training history."""
    epochs = list(history.epoch)
    series = {"train loss": history.train_loss, "validation loss": history.val_loss}
    if metrics is not None:
        missing = [m for m in metrics if m not in history.metrics]
        if missing:
            raise InputError(f"metrics {missing} not in the history (it has {list(history.metrics)})",
                             field="metrics")
        series = {m: history.metrics[m] for m in metrics}
    fig = go.Figure([go.Scatter(x=epochs, y=v, mode="lines", name=k) for k, v in series.items()])
    fig.update_layout(xaxis_title="epoch", yaxis_title="value", yaxis_type="log" if log_y else "linear")
    return fig


def rdf_plot(result: Any, pairs: Sequence[str] | None = None, title: str = "g(r)") -> go.Figure:
    """g(r) of an :class:`mlexplore.analysis.RDF` (all pairs by default)."""
    names = list(pairs) if pairs is not None else list(result.g)
    fig = go.Figure([go.Scatter(x=result.r, y=result.g[n], mode="lines", name=n) for n in names])
    fig.update_layout(title=title, xaxis_title="r (Å)", yaxis_title="g(r)")
    return fig


def basis_over_rdf(descriptor: Any, result: Any | None = None, r_max: float | None = None, n: int = 600,
                   pair: str = "total", density: Any | None = None, title: str | None = None,
                   show_counts: bool = False, layout: dict | None = None) -> go.Figure:
    """The radial basis functions of a descriptor (single-neighbour values, 002 fig 2.15–2.17) drawn
    over the g(r) of a dataset (second y axis); the cutoff radius as a dotted line.

    Parameters
    ----------
    descriptor:
        A :class:`~mlexplore.descriptors.SymmetryFunctions` (its radial terms are drawn).
    result:
        An :class:`~mlexplore.analysis.RDF`; its ``pair`` curve is drawn, named ``g(r) <pair>``.
    r_max, n:
        The curves on ``n`` points over [0, r_max] Å (default r_max: the descriptor's neighbour cutoff).
    density:
        Instead of ``result``: anything with ``r``, ``g`` and ``name`` (e.g.
        :func:`mlexplore.analysis.pair_density`), drawn under its own name.
    title:
        The figure title; ``show_counts`` appends the term and feature counts
        (``"8 radial + 12 angular terms, 84 features"``).
    layout:
        More layout (height, margins, legend) merged in.
    """
    if result is not None and density is not None:
        raise InputError("give result (an RDF) or density, not both", field="density")
    r_max = r_max or descriptor.neighbor_cutoff
    r = np.linspace(0.0, r_max, n)
    values = descriptor.radial_values(r)
    # plain dicts, validated once by go.Figure (this is redrawn on every slider move of the BasisTuner)
    traces: list[dict] = [dict(type="scatter", x=r, y=values[:, k], mode="lines", name=term.label())
                          for k, term in enumerate(descriptor.radial)]
    if result is not None:
        density_r, density_g, density_name = result.r, result.g[pair], f"g(r) {pair}"
    elif density is not None:
        density_r, density_g, density_name = density.r, density.g, density.name
    lay: dict[str, Any] = dict(xaxis_title="r (Å)", yaxis_title="basis value (one neighbour)",
                               shapes=[dict(type="line", x0=descriptor.cutoff, x1=descriptor.cutoff, y0=0, y1=1,
                                            yref="paper", line=dict(color="grey", dash="dot"))])
    if result is not None or density is not None:
        traces.append(dict(type="scatter", x=density_r, y=density_g, mode="lines", name=density_name, yaxis="y2",
                           line=dict(color="black", width=1)))
        lay["yaxis2"] = dict(title="g(r)", overlaying="y", side="right", showgrid=False)
    parts = [title] if title else []
    if show_counts:
        parts.append(f"{len(descriptor.radial)} radial + {len(descriptor.angular)} angular terms, "
                     f"{descriptor.n_features} features")
    if parts:
        lay["title"] = ": ".join(parts)
    lay.update(layout or {})
    return go.Figure(traces, layout=lay)


def cutoff_shapes(cutoff: float = 6.0, names: Sequence[str] | None = None, n: int = 400) -> go.Figure:
    """The cutoff functions f_c(r) by name (cosine, polynomial, tanh3) on [0, R_c + 0.5 Å]."""
    import torch

    from ..descriptors.cutoffs import CUTOFFS, cutoff_function

    r = np.linspace(0.0, cutoff + 0.5, n)
    fig = go.Figure()
    for name in names or list(CUTOFFS):
        y = cutoff_function(name)(torch.as_tensor(r), cutoff).numpy()
        fig.add_trace(go.Scatter(x=r, y=y, mode="lines", name=name))
    fig.update_layout(xaxis_title="r (Å)", yaxis_title="f_c(r)", title=f"cutoff functions, R_c = {cutoff} Å")
    return fig


def angular_shapes(descriptor: Any, n: int = 361) -> go.Figure:
    """The angular factors ``2^(1−ζ)(1 + λ cos θ)^ζ`` of a descriptor's BP angular terms against θ."""
    theta = np.linspace(0.0, np.pi, n)
    values = descriptor.angular_values(theta)
    terms = [t for t in descriptor.angular if hasattr(t, "zeta")]
    seen, fig = set(), go.Figure()
    for k, t in enumerate(terms):
        key = (t.zeta, t.lam)
        if key in seen:  # terms differing only in η share the angular factor
            continue
        seen.add(key)
        fig.add_trace(go.Scatter(x=np.degrees(theta), y=values[:, k], mode="lines", name=f"ζ={t.zeta:g}, λ={t.lam:+g}"))
    fig.update_layout(xaxis_title="θ (degrees)", yaxis_title="angular factor")
    return fig


def pca_map(scores: np.ndarray, color: Any = None, hover: Sequence[str] | None = None, title: str = "",
            color_name: str = "", customdata: Any = None, hovertemplate: str | None = None,
            explained_variance: Sequence[float] | None = None, name: str = "atoms", marker_size: int = 5,
            ) -> go.Figure:
    """First two PCA scores; ``color`` numeric (continuous scale) or categorical (one trace per
    category); ``hover`` texts (e.g. the structure index of every point).

    ``customdata``: per point, rows ``(n, k)`` handed to each trace for its own points (e.g.
    structure and atom index, which a click reads back); ``hovertemplate`` for the traces;
    ``explained_variance``: the components' variance ratios, shown in the axis titles
    (``PC 1 (34%)``); ``name`` of the one trace without categories.
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[1] < 2:
        raise InputError(f"need scores of shape (n, ≥2), got {s.shape}", field="scores")
    text = None if hover is None else list(hover)
    data = None if customdata is None else np.asarray(customdata)
    if data is not None and len(data) != len(s):
        raise InputError(f"{len(data)} customdata rows for {len(s)} points", field="customdata")
    c = None if color is None else np.asarray(color)
    if c is not None and len(c) != len(s):
        raise InputError(f"{len(c)} colour values for {len(s)} points", field="color")
    traces: list[dict] = []  # plain dicts, validated once by go.Figure
    if c is not None and c.dtype.kind in "OUSb":
        for cat in dict.fromkeys(c.tolist()):
            m = c == cat
            traces.append(dict(type="scattergl", x=s[m, 0], y=s[m, 1], mode="markers", name=str(cat),
                               text=None if text is None else [t for t, k in zip(text, m) if k],
                               customdata=None if data is None else data[m], hovertemplate=hovertemplate,
                               marker=dict(size=marker_size)))
    else:
        marker = dict(size=marker_size)
        if c is not None:
            marker.update(color=c, colorscale="Viridis", colorbar=dict(title=color_name))
        traces.append(dict(type="scattergl", x=s[:, 0], y=s[:, 1], mode="markers", text=text, marker=marker,
                           name=name, customdata=data, hovertemplate=hovertemplate))
    x_title, y_title = "PC 1", "PC 2"
    if explained_variance is not None:
        x_title += f" ({explained_variance[0]:.0%})"
        y_title += f" ({explained_variance[1]:.0%})"
    return go.Figure(traces, layout=dict(title=title, xaxis_title=x_title, yaxis_title=y_title))


def _grouped(x: Any, y: Any, groups: Sequence[str] | None,
             names: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``x`` and ``y`` flattened and checked to match, and a mask per group in order of first
    appearance (one group "all" without ``groups``). ``names``: what x and y are, y's field."""
    xf, yf = _flat(x), _flat(y)
    if xf.shape != yf.shape:
        raise InputError(f"{xf.size} {names[0]} and {yf.size} {names[1]}", field=names[2])
    g = np.asarray(["all"] * xf.size if groups is None else list(groups), dtype=object)
    if len(g) != xf.size:
        raise InputError(f"{len(g)} group labels for {xf.size} values", field="groups")
    return xf, yf, {name: g == name for name in dict.fromkeys(g.tolist())}


def error_vs_reference(reference: Any, predicted: Any, groups: Sequence[str] | None = None, title: str = "",
                       unit: str = "") -> go.Figure:
    """Prediction error against the reference value, one trace per group (e.g. the spin-state tag,
    002 fig 4.6–4.9)."""
    y, p, masks = _grouped(reference, predicted, groups, ("reference values", "predictions", "predicted"))
    fig = go.Figure()
    for name, m in masks.items():
        fig.add_trace(go.Scattergl(x=y[m], y=p[m] - y[m], mode="markers", name=f"{name} ({int(m.sum())})",
                                   marker=dict(size=5)))
    label = f" ({unit})" if unit else ""
    fig.update_layout(title=title, xaxis_title=f"reference{label}", yaxis_title=f"predicted − reference{label}")
    return fig


def energy_volume_plot(volumes: Any, energies: Any, groups: Sequence[str] | None = None,
                       curve: tuple[Any, Any] | None = None, curve_name: str = "equation of state",
                       title: str = "") -> go.Figure:
    """Energy per atom (eV) against volume per atom (Å³), one trace per group (e.g. the spin
    pattern), and ``curve`` = (volumes, energies) of a fitted equation of state as a line
    (e.g. ``ferromagnetic_bcc_eos(ds)["curve"]``)."""
    v, e, masks = _grouped(volumes, energies, groups, ("volumes", "energies", "energies"))
    fig = go.Figure()
    for k, (name, m) in enumerate(masks.items()):
        fig.add_trace(go.Scatter(x=v[m], y=e[m], mode="markers", name=f"{name} ({int(m.sum())})",
                                 marker=dict(size=6, color=PALETTE[k % len(PALETTE)])))
    if curve is not None:
        cv, ce = _flat(curve[0]), _flat(curve[1])
        fig.add_trace(go.Scatter(x=cv, y=ce, mode="lines", name=curve_name, line=dict(color="black")))
    fig.update_layout(title=title, xaxis_title="volume per atom (Å³)", yaxis_title="energy per atom (eV)")
    return fig


def task_table(rows: Sequence[dict], digits: int = 4) -> go.Figure:
    """The rows of :func:`mlexplore.training.compare_tasks` as a table (001 table 1 layout: one row per
    model and target, RMSE and R² as mean ± std, time and figure of merit)."""
    if not rows:
        raise InputError("no rows to show", field="rows")
    fmt = f"{{:.{digits}g}}"
    cols = {
        # " + " so long combinations wrap inside their cell instead of being clipped
        "model": [run_label(r["tasks"], separator=" + ") for r in rows],
        "target": [r["target"] for r in rows],
        "RMSE": [f"{fmt.format(r['rmse_mean'])} ± {fmt.format(r['rmse_std'])}" for r in rows],
        "R²": [f"{r['r2_mean']:.4f} ± {r['r2_std']:.4f}" for r in rows],
        "time (s)": [f"{r['seconds_mean']:.2f}" for r in rows],
        "FOM": [fmt.format(r["fom"]) for r in rows],
    }
    return go.Figure(go.Table(header=dict(values=list(cols)), cells=dict(values=list(cols.values())),
                              columnwidth=[2.2, 1.4, 1.4, 1.4, 0.8, 0.9]))


def task_error_pdfs(runs: Sequence[Any], target: str, unit: str = "") -> go.Figure:
    """One band per task combination that predicts ``target``: the test-error PDF of each of its
    runs (:class:`~mlexplore.training.TaskRun`), mean ± 1 std across runs (001 fig 5)."""
    sets: dict[str, list[np.ndarray]] = {}
    for r in runs:
        if target in r.tasks:
            sets.setdefault(r.label, []).append(r.errors(target))
    if not sets:
        raise InputError(f"no run predicts {target!r}", field="target")
    grid = error_grid([e for v in sets.values() for e in v], 300)
    fig = go.Figure()
    for k, (label, errs) in enumerate(sets.items()):
        if all(e.size > 1 for e in errs):
            band = error_band(errs, grid=grid)
            fig.add_traces(band_traces(band, f"{label} ({band.n_models} runs)", PALETTE[k % len(PALETTE)], alpha=0.2))
    fig.update_layout(xaxis_title=f"predicted − reference{f' ({unit})' if unit else ''}", yaxis_title="density",
                      title=f"{target}: test-error PDF, mean ± 1 std over runs")
    return fig

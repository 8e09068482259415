"""Figures of predicted uncertainties — a committee's spread, the training-domain measures — and the
per-atom values and colours that structure views show.

- :func:`parity_with_errors` — prediction against reference with an error bar of ±σ per point.
- :func:`calibration_curve` — observed RMS error in equal-count bins of predicted σ (pure numbers).
- :func:`calibration_figure` — that curve against the ideal y = x, with the Spearman rank
  correlation of σ and |error| in the title.
- :func:`atom_uncertainties` — the per-atom uncertainty quantities of a prediction
  (:meth:`mlexplore.training.Potential.predict` or an ASE calculator's ``results``), by name.
- :func:`uncertainty_colors` — colours of such non-negative values, the scale starting at 0.

The calibration check follows Levi et al., *Sensors* 22, 5540 (2022) ("Evaluating and calibrating
uncertainty prediction in regression tasks") and Tran et al., *Mach. Learn.: Sci. Technol.* 1,
025006 (2020): sort the points by predicted σ, cut them into bins of equal count and compare, per
bin, the root mean variance ``RMV = √⟨σ²⟩`` with the observed ``RMSE = √⟨error²⟩``. For errors
drawn from N(0, σ²), ``⟨error²⟩ = ⟨σ²⟩`` in every bin, so a calibrated model lies on y = x.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from scipy.stats import spearmanr

from ..analysis.metrics import rmse
from ..errors import InputError
from .colors import value_colors

__all__ = ["parity_with_errors", "CalibrationCurve", "calibration_curve", "calibration_figure",
           "UNCERTAINTY_QUANTITIES", "atom_uncertainties", "uncertainty_colors"]


def _flat(x: Any, field: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    v = np.asarray(x, dtype=float).reshape(-1)
    if not np.isfinite(v).all():
        raise InputError(f"{field} contains NaN or inf", field=field)
    return v


def _std(std: Any, n: int, what: str) -> np.ndarray:
    s = _flat(std, "std" if what == "std" else "predicted_std")
    if s.size != n:
        raise InputError(f"{s.size} standard deviations for {n} {what}", field="std" if what == "std"
                         else "predicted_std")
    if (s < 0).any():
        raise InputError(f"standard deviations must be ≥ 0, got {s.min():.3g}", field="std" if what == "std"
                         else "predicted_std")
    return s


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


# ------------------------------------------------------------------------------------- parity
def parity_with_errors(reference: Any, predicted: Any, std: Any, title: str = "", unit: str = "",
                       max_points: int = 2000, seed: int = 0) -> go.Figure:
    """Predicted against reference with an error bar of ±``std`` on every point, and y = x.

    Parameters
    ----------
    reference, predicted, std:
        Arrays of one shape (flattened; e.g. force components ``(N, 3)`` and the committee's
        ``forces_std`` ``(N, 3)``), in ``unit``.
    title, unit:
        The title's start and the axes' unit. The title adds the RMSE and the root mean
        variance ``√⟨σ²⟩`` (equal for a calibrated model) over every point.
    max_points, seed:
        More points than ``max_points`` are drawn as a random subset (seeded; the scores use every
        point), and the title says so: ``"2000 of 9570 points shown (random, seed 0)"``.

    Returns
    -------
    go.Figure
        ``data[0]`` the points (``error_y.array`` = their σ, hover shows σ), ``data[1]`` y = x.
    """
    y, p = _flat(reference, "reference"), _flat(predicted, "predicted")
    if y.shape != p.shape or y.size == 0:
        raise InputError(f"{y.size} reference values and {p.size} predictions", field="predicted")
    s = _std(std, y.size, "points")
    if int(max_points) < 1:
        raise InputError(f"max_points must be ≥ 1, got {max_points}", field="max_points")
    u = f" {unit}" if unit else ""
    parts = [f"RMSE {rmse(y, p):.4g}{u}, √⟨σ²⟩ {float(np.sqrt(np.mean(s ** 2))):.4g}{u}"]
    idx = np.arange(y.size)
    if y.size > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(y.size, int(max_points), replace=False))
        parts.append(f"{idx.size} of {y.size} points shown (random, seed {seed})")
    ys, ps, ss = y[idx], p[idx], s[idx]
    lo, hi = float(min(ys.min(), (ps - ss).min())), float(max(ys.max(), (ps + ss).max()))
    fig = go.Figure([
        go.Scatter(x=ys, y=ps, mode="markers", name=f"samples ±σ ({idx.size})", marker=dict(size=4),
                   error_y=dict(type="data", array=ss, visible=True, thickness=1, width=0),
                   customdata=ss, hovertemplate="reference %{x:.4g}<br>predicted %{y:.4g}<br>σ %{customdata:.3g}"
                                                "<extra></extra>"),
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(color="black", dash="dash")),
    ])
    head = "; ".join(parts)
    fig.update_layout(title=f"{title} — {head}" if title else head, xaxis_title=f"reference{_unit(unit)}",
                      yaxis_title=f"predicted{_unit(unit)}")
    return fig


# -------------------------------------------------------------------------------- calibration
@dataclass
class CalibrationCurve:
    """Observed error in equal-count bins of predicted σ (see the module's docstring).

    ``centres``: each bin's root mean predicted variance ``√⟨σ²⟩`` (its place on the x axis);
    ``rms_error``: each bin's observed ``√⟨error²⟩``; ``counts``: points per bin (they sum to the
    number of points); ``edges``: the smallest and largest σ of each bin ``(n_bins, 2)``;
    ``spearman``: the Spearman rank correlation of σ and |error| over all points (NaN when either
    is constant).
    """

    centres: np.ndarray
    rms_error: np.ndarray
    counts: np.ndarray
    edges: np.ndarray
    spearman: float

    @property
    def n_points(self) -> int:
        return int(self.counts.sum())


def calibration_curve(predicted_std: Any, abs_error: Any, n_bins: int = 10) -> CalibrationCurve:
    """The points sorted by ``predicted_std`` and cut into ``n_bins`` bins of equal count (sizes
    differ by at most one; fewer bins when there are fewer points), with each bin's
    root mean variance, RMS error and count.

    Parameters
    ----------
    predicted_std:
        Predicted standard deviations σ (any shape, flattened), ≥ 0.
    abs_error:
        The errors |predicted − reference| of the same points (signed errors give the same curve).
    n_bins:
        Number of bins, ≥ 1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sigma = rng.uniform(0.1, 1.0, 5000)
    >>> curve = calibration_curve(sigma, np.abs(rng.normal(0.0, sigma)))
    >>> bool(np.allclose(curve.rms_error, curve.centres, rtol=0.15))
    True
    """
    e = np.abs(_flat(abs_error, "abs_error"))
    if e.size == 0:
        raise InputError("no errors to bin", field="abs_error")
    s = _std(predicted_std, e.size, "errors")
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise InputError(f"n_bins must be a whole number ≥ 1, got {n_bins!r}", field="n_bins")
    order = np.argsort(s, kind="stable")
    bins = [b for b in np.array_split(order, min(int(n_bins), e.size)) if b.size]
    centres = np.array([np.sqrt(np.mean(s[b] ** 2)) for b in bins])
    rms = np.array([np.sqrt(np.mean(e[b] ** 2)) for b in bins])
    counts = np.array([b.size for b in bins], dtype=int)
    edges = np.array([[s[b].min(), s[b].max()] for b in bins])
    constant = np.ptp(s) == 0 or np.ptp(e) == 0
    rho = float("nan") if constant or e.size < 2 else float(spearmanr(s, e).statistic)
    return CalibrationCurve(centres, rms, counts, edges, rho)


def calibration_figure(predicted_std: Any, abs_error: Any, n_bins: int = 10, unit: str = "",
                       title: str = "") -> go.Figure:
    """Observed RMS |error| against predicted σ in equal-count bins (:func:`calibration_curve`),
    with the ideal y = x; hover shows each bin's count and σ range, the title the Spearman rank
    correlation of σ and |error| (how well σ orders the errors) and the number of points.

    Returns
    -------
    go.Figure
        ``data[0]`` the binned curve (``customdata``: count, smallest and largest σ per bin),
        ``data[1]`` the ideal y = x.
    """
    curve = calibration_curve(predicted_std, abs_error, n_bins)
    hi = float(max(curve.centres.max(), curve.rms_error.max())) * 1.05 or 1.0
    data = np.column_stack([curve.counts, curve.edges])
    fig = go.Figure([
        go.Scatter(x=curve.centres, y=curve.rms_error, mode="lines+markers", name="observed", marker=dict(size=8),
                   customdata=data,
                   hovertemplate="√⟨σ²⟩ %{x:.3g}<br>RMS |error| %{y:.3g}<br>%{customdata[0]} points, "
                                 "σ %{customdata[1]:.3g} … %{customdata[2]:.3g}<extra></extra>"),
        go.Scatter(x=[0.0, hi], y=[0.0, hi], mode="lines", name="ideal (y = x)",
                   line=dict(color="black", dash="dash")),
    ])
    head = (f"Spearman ρ(σ, |error|) = {curve.spearman:.3f}; {curve.n_points} points in {len(curve.counts)} "
            "equal-count bins")
    fig.update_layout(title=f"{title} — {head}" if title else head,
                      xaxis_title=f"predicted σ, √⟨σ²⟩ per bin{_unit(unit)}",
                      yaxis_title=f"observed RMS |error| per bin{_unit(unit)}")
    return fig


# ---------------------------------------------------------------------- per-atom uncertainty
#: The per-atom uncertainty quantities, by the name a view shows: the prediction's key and the unit.
#: ``force std`` is the norm of the per-component committee std ``‖σ_F‖ = √(σx² + σy² + σz²)``;
#: ``extrapolation`` the largest excess of a feature over its training range (in units of the
#: range; 0 inside); ``novelty`` the Mahalanobis distance over the training maximum (≤ 1 for
#: training atoms). See :class:`mlexplore.training.Potential`.
UNCERTAINTY_QUANTITIES: dict[str, tuple[str, str]] = {
    "force std": ("forces_std", "eV/Å"),
    "energy std": ("energies_std", "eV"),
    "extrapolation": ("extrapolation_grade", "× feature range"),
    "novelty": ("novelty", "training ≤ 1"),
}


def atom_uncertainties(prediction: Mapping[str, Any], n_atoms: int | None = None) -> dict[str, np.ndarray]:
    """The per-atom uncertainty quantities a prediction holds, one value per atom, by name
    (:data:`UNCERTAINTY_QUANTITIES`, in that order; only those present).

    Parameters
    ----------
    prediction:
        :meth:`mlexplore.training.Potential.predict` of a dataset, or ``atoms.calc.results`` of the
        ASE calculator (a committee gives ``forces_std``, ``energies_std``; a model with a recorded
        training domain ``extrapolation_grade``, ``novelty``).
    n_atoms:
        When given, every array must have this many atoms.
    """
    out: dict[str, np.ndarray] = {}
    for name, (key, _) in UNCERTAINTY_QUANTITIES.items():
        if key not in prediction:
            continue
        v = prediction[key]
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        v = np.asarray(v, dtype=float)
        if key == "forces_std":
            if v.ndim != 2 or v.shape[1] != 3:
                raise InputError(f"forces_std must have shape (N, 3), got {v.shape}", field=key)
            v = np.linalg.norm(v, axis=1)
        v = v.reshape(-1)
        if np.isnan(v).any():
            raise InputError(f"{key} contains NaN", field=key)
        if n_atoms is not None and v.size != n_atoms:
            raise InputError(f"{key} has {v.size} values but the structures have {n_atoms} atoms", field=key)
        out[name] = v
    return out


def uncertainty_colors(values: Any, colorscale: str = "Viridis",
                       vmax: float | None = None) -> tuple[list[str], float, float]:
    """Colours of non-negative per-atom values (a σ, a grade) on a scale from 0 to ``vmax``
    (default: the largest value; 1 when every value is (nearly) 0, so they show the scale's bottom):
    ``(hex colours, 0, vmax)``. An infinite value (a feature without training range) gets the top
    colour. Built on :func:`~mlexplore.viz.colors.value_colors`."""
    v = np.asarray(values, dtype=float).reshape(-1)
    if np.isnan(v).any():
        raise InputError("values to colour contain NaN", field="values")
    finite = v[np.isfinite(v)]
    if vmax is not None:
        hi = float(vmax)
        if not hi > 0:
            raise InputError(f"vmax must be > 0, got {vmax!r}", field="vmax")
    else:
        hi = float(finite.max()) if finite.size else 0.0
        hi = hi if hi > 1e-9 else 1.0
    return value_colors(np.minimum(v, hi), colorscale, vmin=0.0, vmax=hi, symmetric=False)

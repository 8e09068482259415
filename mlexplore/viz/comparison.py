"""Figures of an STL/MTL comparison over several targets at once (the TaskComparison panel's parity
grid and error PDFs): every target standardised (÷ its test-set standard deviation), so targets of
any unit share one axis. One-target figures in their own units: :func:`~mlexplore.viz.task_error_pdfs`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..analysis.errors import error_band, error_grid
from ..errors import InputError
from ..training.labels import run_label
from .figures import PALETTE, band_traces

__all__ = ["task_parity", "task_error_bands"]


def _targets_of(runs: Sequence[Any], targets: Sequence[str] | None) -> list[str]:
    if not runs:
        raise InputError("no runs to show", field="runs")
    return list(targets) if targets is not None else list(dict.fromkeys(t for r in runs for t in r.tasks))


def task_parity(runs: Sequence[Any], targets: Sequence[str] | None = None) -> go.Figure:
    """Predicted against reference on the test sets, one trace per (target, task combination) with
    every run of the combination pooled, standardised per target by the reference's mean and
    standard deviation, and the line y = x. ``runs``: :class:`~mlexplore.training.TaskRun` s;
    ``targets``: which (default: every target a run predicts)."""
    targets = _targets_of(runs, targets)
    combos = list(dict.fromkeys(r.tasks for r in runs))
    fig = go.Figure()
    lo, hi = np.inf, -np.inf
    for t in targets:
        for c in combos:
            mine = [r for r in runs if r.tasks == c and t in r.tasks]
            if not mine:
                continue
            ref = np.concatenate([np.asarray(r.reference[t], float).reshape(-1) for r in mine])
            pred = np.concatenate([np.asarray(r.predicted[t], float).reshape(-1) for r in mine])
            scale = ref.std() or 1.0
            ref_s, pred_s = (ref - ref.mean()) / scale, (pred - ref.mean()) / scale
            lo, hi = min(lo, ref_s.min(), pred_s.min()), max(hi, ref_s.max(), pred_s.max())
            fig.add_scattergl(x=ref_s, y=pred_s, mode="markers", marker=dict(size=4, opacity=0.6),
                              name=f"{t}: {run_label(c)}")
    if not fig.data:
        raise InputError(f"no run predicts any of {targets}", field="targets")
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="black", dash="dot"), name="y = x")
    fig.update_layout(title="parity (test sets)", xaxis_title="reference (standardised per target)",
                      yaxis_title="predicted (standardised per target)")
    return fig


def task_error_bands(runs: Sequence[Any], targets: Sequence[str] | None = None, n_grid: int = 200) -> go.Figure:
    """Test-error PDFs, one band (mean ± 1 std over runs) per (target, task combination), the errors
    divided by the standard deviation of the target's test references (every run pooled). A
    combination is left out of a target when a run of it has fewer than two test errors."""
    targets = _targets_of(runs, targets)
    combos = list(dict.fromkeys(r.tasks for r in runs))
    fig = go.Figure()
    k = 0
    for t in targets:
        sets = {c: [r.errors(t) for r in runs if r.tasks == c and t in r.tasks] for c in combos}
        sets = {c: e for c, e in sets.items() if e and all(x.size > 1 for x in e)}
        if not sets:
            continue
        scale = np.std(np.concatenate([np.asarray(r.reference[t]).reshape(-1) for r in runs if t in r.tasks])) or 1.0
        grid = error_grid([x / scale for e in sets.values() for x in e], n_grid)
        for c, errs in sets.items():
            band = error_band([e / scale for e in errs], grid=grid)
            fig.add_traces(band_traces(band, f"{t}: {run_label(c)} ({band.n_models})", PALETTE[k % len(PALETTE)]))
            k += 1
    fig.update_layout(title="test error PDF (mean ± 1 std over runs)", xaxis_title="error / std of the target",
                      yaxis_title="density")
    return fig

"""Error statistics across an ensemble of models (001 fig 5): per-model error PDFs on one grid,
their mean and ±1 std band."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["ErrorBand", "error_band", "error_grid", "ensemble_error_stats"]


def _flat(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float).reshape(-1)


@dataclass
class ErrorBand:
    """``grid`` (units of the errors); ``pdfs`` one density per model ``(n_models, n_grid)``;
    ``mean``/``std`` across models at every grid point; ``error_mean``/``error_std`` the mean
    signed error of every model (the PDFs' centres)."""

    grid: np.ndarray
    pdfs: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    error_mean: np.ndarray
    error_std: np.ndarray

    @property
    def n_models(self) -> int:
        return len(self.pdfs)


def error_grid(errors: Sequence[Any], n_grid: int = 200) -> np.ndarray:
    """A grid spanning every error of every array in ``errors`` with a 10 % margin on each side
    (unit width when all errors are equal) — the common axis for comparing error PDFs."""
    errs = [_flat(e) for e in errors]
    lo = min(e.min() for e in errs)
    hi = max(e.max() for e in errs)
    pad = 0.1 * (hi - lo or 1.0)
    return np.linspace(lo - pad, hi + pad, n_grid)


def error_band(errors: Sequence[Any], grid: np.ndarray | None = None, n_grid: int = 200,
               bandwidth: float | str | None = None) -> ErrorBand:
    """Gaussian-KDE density of every model's errors (predicted − reference) on a common grid.

    ``errors`` is a sequence with one array per model. The grid spans all errors
    with 10 % margin unless given. A model whose errors are all equal gets a
    spike one grid step wide (so the band still shows it).
    """
    from scipy.stats import gaussian_kde

    errs = [_flat(e) for e in errors]
    if not errs or any(e.size < 2 for e in errs):
        raise InputError("need at least one model with two or more errors", field="errors")
    if any(not np.isfinite(e).all() for e in errs):
        raise InputError("errors contain NaN or inf", field="errors")
    grid = np.asarray(error_grid(errs, n_grid) if grid is None else grid, dtype=float)
    step = grid[1] - grid[0] if len(grid) > 1 else 1.0
    pdfs = []
    for e in errs:
        if np.ptp(e) == 0:
            pdfs.append(np.exp(-0.5 * ((grid - e[0]) / step) ** 2) / (step * np.sqrt(2 * np.pi)))
        else:
            pdfs.append(gaussian_kde(e, bw_method=bandwidth)(grid))
    pdfs = np.array(pdfs)
    return ErrorBand(grid=grid, pdfs=pdfs, mean=pdfs.mean(axis=0), std=pdfs.std(axis=0),
                     error_mean=np.array([e.mean() for e in errs]), error_std=np.array([e.std() for e in errs]))


def ensemble_error_stats(errors: Sequence[Any]) -> dict[str, float]:
    """What a set of models' test errors (one array per model, the errors' units) says in numbers:
    ``n_models``, ``mean_error`` (the signed errors' mean over models, the bias), ``rmse_mean`` and
    ``rmse_std`` (each model's RMSE, averaged and spread over models)."""
    arrays = [_flat(e) for e in errors]
    if not arrays or any(a.size == 0 for a in arrays):
        raise InputError("ensemble_error_stats needs one non-empty array of errors per model", field="errors")
    rmses = np.array([np.sqrt(np.mean(a ** 2)) for a in arrays])
    return {"n_models": len(arrays), "mean_error": float(np.mean([a.mean() for a in arrays])),
            "rmse_mean": float(rmses.mean()), "rmse_std": float(rmses.std())}

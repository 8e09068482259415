"""Regression scores on arrays (SPEC §8): RMSE, MAE, R² (000 eq 10), per task and per group."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError

__all__ = ["rmse", "mae", "r2", "regression_report", "per_group"]


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=float).reshape(-1)
    b = np.asarray(y_pred, dtype=float).reshape(-1)
    if a.shape != b.shape:
        raise InputError(f"{a.size} reference values but {b.size} predictions", field="y_pred")
    if a.size == 0:
        raise InputError("no values to score", field="y_true")
    return a, b


def rmse(y_true, y_pred) -> float:
    """Root-mean-square error (units of the input; vectors are flattened, so for
    forces this is the RMSE over Cartesian components)."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination ``1 − Σ(y − ŷ)² / Σ(y − ȳ)²`` (000 eq 10)."""
    a, b = _pair(y_true, y_pred)
    ss_tot = np.sum((a - a.mean()) ** 2)
    if ss_tot == 0:
        return float("nan")
    return float(1 - np.sum((a - b) ** 2) / ss_tot)


def regression_report(y_true, y_pred) -> dict[str, float]:
    """``{"rmse", "mae", "r2", "n"}``."""
    a, b = _pair(y_true, y_pred)
    return {"rmse": rmse(a, b), "mae": mae(a, b), "r2": r2(a, b), "n": int(a.size)}


def per_group(y_true, y_pred, groups: Sequence) -> dict[str, dict[str, float]]:
    """:func:`regression_report` for each group label (one label per sample)."""
    a = np.asarray(y_true, dtype=float)
    b = np.asarray(y_pred, dtype=float)
    g = np.asarray(groups, dtype=object)
    if len(g) != len(a):
        raise InputError(f"{len(g)} group labels for {len(a)} samples", field="groups")
    return {str(k): regression_report(a[g == k], b[g == k]) for k in dict.fromkeys(g.tolist())}

"""PCA of per-atom features (scikit-learn), the map the descriptor panels draw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["PCAResult", "pca"]


@dataclass
class PCAResult:
    """``scores`` (n_samples, n_components); ``explained_variance_ratio`` per component (sums to 1
    when every component is kept); ``model`` the fitted ``sklearn.decomposition.PCA``; ``scale`` the
    per-feature standard deviations used when ``standardise`` was on."""

    scores: np.ndarray
    explained_variance_ratio: np.ndarray
    model: Any
    scale: np.ndarray | None


def pca(features: Any, n_components: int | None = 2, standardise: bool = True) -> PCAResult:
    """Principal components of ``features`` (rows are atoms or structures).

    ``standardise`` divides every column by its standard deviation first (constant
    columns are left as they are), so that no feature dominates by its units.
    """
    from sklearn.decomposition import PCA

    try:
        import torch

        if isinstance(features, torch.Tensor):
            features = features.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"PCA needs a 2-D array with at least two rows, got shape {x.shape}", field="features")
    if not np.isfinite(x).all():
        raise InputError("features contain NaN or inf", field="features")
    scale = None
    if standardise:
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        x = (x - x.mean(axis=0)) / scale
    k = min(n_components or min(x.shape), min(x.shape))
    # many rows, few columns (the panels' case): the d×d covariance eigenproblem is much
    # cheaper than the SVD of the n×d matrix, and gives the same components
    solver = "covariance_eigh" if x.shape[0] >= 10 * x.shape[1] else "auto"
    model = PCA(n_components=k, svd_solver=solver).fit(x)
    return PCAResult(scores=model.transform(x), explained_variance_ratio=model.explained_variance_ratio_,
                     model=model, scale=scale)

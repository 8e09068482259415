"""scikit-learn baselines on per-structure descriptor sums (000's comparison): ridge, kernel ridge,
gradient boosting and (if installed) XGBoost."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.metrics import regression_report
from ..errors import InputError

__all__ = ["structure_features", "fit_baseline", "BASELINES"]


def structure_features(dataset: StructureDataset, descriptor, device: Any = "cpu") -> np.ndarray:
    """Per-structure features for classical regressors: the sum of the atomic descriptor vectors
    (element-resolved descriptors keep the elements apart), shape ``(n, n_features)``."""
    g = descriptor.compute(dataset, device=device).cpu().numpy()
    out = np.zeros((len(dataset), g.shape[1]))
    np.add.at(out, dataset.structure_index, g)
    return out


def _make(kind: str, **kwargs):
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "ridge":
        return make_pipeline(StandardScaler(), Ridge(**{"alpha": 1e-3, **kwargs}))
    if kind == "kernel_ridge":
        return make_pipeline(StandardScaler(), KernelRidge(**{"kernel": "rbf", "alpha": 1e-4, "gamma": 0.01,
                                                             **kwargs}))
    if kind == "gradient_boosting":
        return GradientBoostingRegressor(**{"n_estimators": 300, "max_depth": 3, "random_state": 0, **kwargs})
    if kind == "xgboost":
        try:
            from xgboost import XGBRegressor
        except ImportError:
            raise InputError("xgboost is not installed (pip install xgboost)", field="kind") from None
        return XGBRegressor(**{"n_estimators": 300, "max_depth": 4, "random_state": 0, **kwargs})
    raise InputError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINES)}", field="kind")


#: The baselines, by name.
BASELINES = ("ridge", "kernel_ridge", "gradient_boosting", "xgboost")


def fit_baseline(kind: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray | None = None,
                 y_test: np.ndarray | None = None, **kwargs) -> tuple[Any, dict[str, float] | None]:
    """Fit a scikit-learn baseline (``ridge``, ``kernel_ridge``, ``gradient_boosting``; ``xgboost`` if
    installed); return the fitted estimator and, with test data, ``{"rmse", "mae", "r2", "n"}``."""
    x_train, y_train = np.asarray(x_train, float), np.asarray(y_train, float)
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise InputError(f"{len(x_train)} samples but {len(y_train)} targets", field="y_train")
    est = _make(kind, **kwargs).fit(x_train, y_train)
    if x_test is None:
        return est, None
    return est, regression_report(y_test, est.predict(np.asarray(x_test, float)))



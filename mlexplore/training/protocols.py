"""Evaluation protocols: the bag of models (002 §4.2.1–4.2.2) and scikit-learn baselines (000's comparison).

Repeated shuffled splits and independent initialisations of the multi-task
models live in :func:`mlexplore.training.compare_tasks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..analysis.metrics import regression_report
from ..data.dataset import StructureDataset
from ..data.splits import random_split
from ..errors import InputError

__all__ = ["bag_of_models", "structure_features", "fit_baseline", "BASELINES"]


def bag_of_models(dataset: StructureDataset, train_and_predict: Callable[[StructureDataset, StructureDataset, int],
                                                                        Callable[[StructureDataset], np.ndarray]],
                  n_models: int = 5, val_fraction: float = 0.2, seed: int = 0,
                  target: Callable[[StructureDataset], np.ndarray] | None = None) -> dict[str, Any]:
    """Train ``n_models`` models, each on its own random split (002 §4.2.1), and score the bag.

    Parameters
    ----------
    train_and_predict:
        ``(train, val, seed) -> predict`` where ``predict(dataset)`` returns one
        value per structure (same quantity as ``target``).
    target:
        Reference values per structure; default energy per atom (eV/atom).

    Returns
    -------
    ``aggregate``: metrics of the mean prediction over all models for every
    structure; ``concatenated_validation``: metrics of every model's
    validation predictions pooled; ``per_model``: each model's validation
    metrics; ``predictions``: array ``(n_models, n_structures)``;
    ``validation_ids``: each model's validation structure indices.
    """
    if n_models < 1:
        raise InputError("n_models must be ≥ 1", field="n_models")
    target = target or (lambda d: d.label("energy") / d.n_atoms)
    y = np.asarray(target(dataset), dtype=float)
    preds, val_ids, per_model, pooled_ref, pooled_pred = [], [], [], [], []
    position = {int(i): k for k, i in enumerate(dataset.ids)}
    for m in range(n_models):
        train, val = random_split(dataset, (1 - val_fraction, val_fraction), seed=seed + m)
        predict = train_and_predict(train, val, seed + m)
        p_all = np.asarray(predict(dataset), dtype=float)
        preds.append(p_all)
        rows = np.array([position[int(i)] for i in val.ids])
        val_ids.append(rows)
        per_model.append(regression_report(y[rows], p_all[rows]))
        pooled_ref.append(y[rows])
        pooled_pred.append(p_all[rows])
    preds = np.array(preds)
    return {
        "aggregate": regression_report(y, preds.mean(axis=0)),
        "concatenated_validation": regression_report(np.concatenate(pooled_ref), np.concatenate(pooled_pred)),
        "per_model": per_model,
        "predictions": preds,
        "validation_ids": val_ids,
    }


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



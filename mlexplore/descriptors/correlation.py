"""Basis choice by feature correlation (002 §F.2): how redundant a set of feature columns is, and a
random search for the parameters that make them least so."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["correlation_score", "correlation_search"]


def correlation_score(features: np.ndarray) -> float:
    """Mean |Pearson correlation| over all pairs of non-constant feature columns (lower is better)."""
    x = np.asarray(features, dtype=float)
    x = x[:, x.std(axis=0) > 1e-12]
    if x.shape[1] < 2:
        return 0.0
    c = np.corrcoef(x, rowvar=False)
    iu = np.triu_indices_from(c, k=1)
    return float(np.abs(c[iu]).mean())


def correlation_search(featurize: Callable[[dict], np.ndarray], space: dict[str, Sequence[float] | tuple],
                       n_trials: int = 30, seed: int = 0) -> tuple[dict, float, list[tuple[dict, float]]]:
    """Random search for the parameters that minimise the features' mutual |correlation| (002 §F.2).

    Parameters
    ----------
    featurize:
        ``params -> features (n_samples, n_features)``, e.g. a function that
        builds a :class:`SymmetryFunctions` from ``params`` and computes a dataset
        (a :class:`~mlexplore.descriptors.FeatureCache` makes each trial cheap).
    space:
        Per parameter either a list of choices or a ``(low, high)`` tuple
        (sampled uniformly).
    Returns
    -------
    (best params, best score, all (params, score) trials in order)
    """
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n_trials):
        params = {}
        for k, v in space.items():
            if isinstance(v, tuple) and len(v) == 2:
                params[k] = float(rng.uniform(*v))
            else:
                params[k] = v[int(rng.integers(len(v)))]
        trials.append((params, correlation_score(featurize(params))))
    best = min(trials, key=lambda t: t[1])
    return best[0], best[1], trials

"""Deprecated: the bag of models moved to :mod:`mlexplore.training.experiments`, the scikit-learn
baselines to :mod:`mlexplore.training.baselines`. This module re-exports them for one release."""

from __future__ import annotations

import warnings

from .baselines import BASELINES, fit_baseline, structure_features
from .experiments import bag_of_models

__all__ = ["bag_of_models", "structure_features", "fit_baseline", "BASELINES"]

warnings.warn("mlexplore.training.protocols is deprecated: import bag_of_models from "
              "mlexplore.training.experiments and fit_baseline, structure_features, BASELINES from "
              "mlexplore.training.baselines (or all of them from mlexplore.training)",
              DeprecationWarning, stacklevel=2)

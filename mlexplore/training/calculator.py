"""Deprecated module: the ASE calculator lives in :mod:`mlexplore.training.potential`
(``Potential(model).as_ase_calculator()``); import ``Potential`` and ``MLExploreCalculator`` from
:mod:`mlexplore.training`."""

from __future__ import annotations

import warnings

from .potential import MLExploreCalculator, Potential

__all__ = ["Potential", "MLExploreCalculator"]

warnings.warn("mlexplore.training.calculator is deprecated: import Potential and MLExploreCalculator from "
              "mlexplore.training (they live in mlexplore.training.potential)", DeprecationWarning, stacklevel=2)

"""Training engine: :func:`fit`, :func:`predict`, checkpoints, and the ASE calculator."""

from .calculator import MLExploreCalculator, Potential
from .checkpoint import load_model, save_model
from .fit import History, TrainingError, fit, predict, resolve_device

__all__ = ["fit", "predict", "History", "TrainingError", "resolve_device", "save_model", "load_model",
           "Potential", "MLExploreCalculator"]

"""Analysis on arrays: regression metrics (RDF and PCA come with the analysis issue)."""

from .metrics import mae, per_group, r2, regression_report, rmse

__all__ = ["rmse", "mae", "r2", "regression_report", "per_group"]

"""Analysis on arrays and datasets: regression metrics, radial distribution functions, PCA."""

from .metrics import mae, per_group, r2, regression_report, rmse
from .pca import PCAResult, pca
from .rdf import RDF, rdf

__all__ = ["rmse", "mae", "r2", "regression_report", "per_group", "rdf", "RDF", "pca", "PCAResult"]

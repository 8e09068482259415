"""Analysis on arrays and datasets: regression metrics, radial distribution functions, PCA,
feature diagnostics, ensemble error statistics, magnetic measures, physical properties from a calculator."""

from .errors import ErrorBand, ensemble_error_stats, error_band, error_grid
from .features import FeatureReport, feature_correlation, feature_report
from .featurisation import Featurisation, featurise, first_tags
from .magnetism import (magnetic_measures, moments_by_neighbours, net_spin_ratio, polar_angle_variance, polar_angles,
                        spin_vectors)
from .metrics import mae, per_group, r2, regression_report, rmse
from .pca import PCAResult, pca
from .properties import cubic_elastic_constants, equation_of_state, surface_energy
from .rdf import RDF, PairDensity, pair_density, rdf

__all__ = ["ensemble_error_stats", "rmse", "mae", "r2", "regression_report", "per_group", "rdf", "RDF", "PairDensity", "pair_density", "pca", "PCAResult",
           "feature_correlation", "feature_report", "FeatureReport", "error_band", "error_grid", "ErrorBand",
           "net_spin_ratio", "polar_angles", "polar_angle_variance", "magnetic_measures", "moments_by_neighbours", "spin_vectors", "equation_of_state",
           "cubic_elastic_constants", "surface_energy"]
__all__ += ["featurise", "Featurisation", "first_tags"]

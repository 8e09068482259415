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
from .ldos import (INTEGRATION_METHODS, LDOSObservables, band_energy, check_energy_grid, dos, electron_count,
                   electron_density, fermi_dirac, fermi_level, gaussian_dos, integration_weights, ldos_errors,
                   ldos_observables, LDOSErrors)

__all__ += ["dos", "fermi_level", "electron_count", "band_energy", "electron_density", "integration_weights",
            "fermi_dirac", "gaussian_dos", "check_energy_grid", "ldos_observables", "LDOSObservables", "ldos_errors", "LDOSErrors",
            "INTEGRATION_METHODS"]

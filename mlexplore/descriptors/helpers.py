"""Deprecated: the grab bag ``mlexplore.descriptors.helpers`` was split by topic.

Import from :mod:`mlexplore.descriptors` (every name is still there) or from the new modules:

- :mod:`mlexplore.descriptors.basis_parameters` — g2_maximum, g2_maxima, eta_from_attenuation,
  radial_grid, angular_grid, rs_at_rdf_modes;
- :mod:`mlexplore.descriptors.environment` — distance_histogram, neighbor_angles (and density_peaks);
- :mod:`mlexplore.descriptors.correlation` — correlation_score, correlation_search;
- :mod:`mlexplore.descriptors.parameter_count` — tpi, tpi_classwise.
"""

import warnings

from .basis_parameters import angular_grid, eta_from_attenuation, g2_maxima, g2_maximum, radial_grid, rs_at_rdf_modes
from .correlation import correlation_score, correlation_search
from .environment import distance_histogram, neighbor_angles
from .parameter_count import tpi, tpi_classwise

warnings.warn("mlexplore.descriptors.helpers is deprecated and will be removed: import from mlexplore.descriptors, "
              "or from mlexplore.descriptors.basis_parameters (g2_maximum, g2_maxima, eta_from_attenuation, "
              "radial_grid, angular_grid, rs_at_rdf_modes), .environment (distance_histogram, neighbor_angles), "
              ".correlation (correlation_score, correlation_search) or .parameter_count (tpi, tpi_classwise)",
              DeprecationWarning, stacklevel=2)

__all__ = ["g2_maximum", "g2_maxima", "eta_from_attenuation", "distance_histogram", "rs_at_rdf_modes", "neighbor_angles",
           "correlation_score", "correlation_search", "tpi", "tpi_classwise", "radial_grid", "angular_grid"]

"""Descriptors: atom-centred symmetry functions with forces, on CPU or GPU.

- :class:`SymmetryFunctions` — the torch module (``compute``, ``feature_names``,
  autograd to positions and spins); :func:`from_preset` for the papers' sets.
- Terms (:mod:`.terms`): G2, G4, G5, G9, Gauss-Fourier radial / bi-radial /
  angular 001 / 002, spin 000 / 000b / 001 / F1–F6.
- Cutoffs (:mod:`.cutoffs`): cosine, polynomial, tanh³, Fourier-spline window.
- Neighbour pairs and triplets (:mod:`.neighbors`): vesin on CPU, batched torch
  on any device; :class:`VerletList` (:mod:`.verlet`) keeps a list with a skin over MD steps.
- The BP angular sums: G5/G9 from per-centre tensor sums, linear in the neighbours
  (:mod:`.angular_tensors`); G4 (and ζ > 8) on dense per-element neighbour blocks
  (:mod:`.angular_blocks`), fused by ``torch.compile`` on request; non-integer ζ and the
  Gauss-Fourier three-body terms over explicit triplets (:mod:`.triplet_kernel`).
- :class:`FeatureCache` (:mod:`.feature_cache`): features of one set of structures for many
  descriptors, one neighbour list for the largest R_c and a block per term family reused.
- Choosing parameters (:mod:`.basis_parameters`): G2 maxima, η from attenuation, radial and
  angular grids, R_s at g(r) modes. Environment statistics (:mod:`.environment`): distance
  histograms, neighbour angles, density peaks. Correlation search (:mod:`.correlation`).
  Parameters per input (:mod:`.parameter_count`).
"""

from .cutoffs import CUTOFFS, cosine, cutoff_function, fourier_spline, polynomial, tanh3
from .neighbors import Neighbors, neighbor_pairs, pair_vectors, triplets
from .presets import LOEFFLER_AU_AS_PRINTED, PRESETS, from_preset, preset_terms, resolve_basis
from .symmetry import SymmetryFunctions, chunk_bounds, neighbor_reach, structure_tensors
from .verlet import DEFAULT_SKIN, VerletList
from .terms import (G2, G4, G5, G9, SPIN_LOCAL_KINDS, SPIN_PAIR_KINDS, GaussFourierAngular001,
                    GaussFourierAngular002, GaussFourierBiRadial, GaussFourierRadial, SpinGaussPair,
                    SpinGaussSelf, SpinLocal, SpinPair, SpinSelf, Term)

__all__ = [
    "SymmetryFunctions", "from_preset", "preset_terms", "resolve_basis", "PRESETS", "LOEFFLER_AU_AS_PRINTED",
    "G2", "G4", "G5", "G9", "GaussFourierRadial", "GaussFourierBiRadial", "GaussFourierAngular001",
    "GaussFourierAngular002", "SpinSelf", "SpinPair", "SpinGaussSelf", "SpinGaussPair", "SpinLocal", "Term",
    "SPIN_PAIR_KINDS", "SPIN_LOCAL_KINDS", "cosine", "polynomial", "tanh3", "fourier_spline",
    "cutoff_function", "CUTOFFS", "Neighbors", "neighbor_pairs", "pair_vectors", "triplets", "chunk_bounds", "neighbor_reach", "structure_tensors",
    "VerletList", "DEFAULT_SKIN",
]
from .basis_parameters import (angular_grid, eta_from_attenuation, g2_maxima, g2_maximum, radial_grid,
                               rs_at_rdf_modes)
from .correlation import correlation_score, correlation_search
from .environment import density_peaks, distance_histogram, neighbor_angles
from .parameter_count import tpi, tpi_classwise
from .scalers import SCALER_KINDS, EnergyBaseline, Scaler

__all__ += ["g2_maximum", "g2_maxima", "eta_from_attenuation", "distance_histogram", "rs_at_rdf_modes", "neighbor_angles",
            "correlation_score", "correlation_search", "tpi", "tpi_classwise", "radial_grid", "angular_grid", "Scaler", "SCALER_KINDS",
            "EnergyBaseline", "density_peaks"]
from .config import descriptor_from_config, descriptor_to_config, load_basis, save_basis

__all__ += ["descriptor_to_config", "descriptor_from_config", "save_basis", "load_basis"]
from .feature_cache import FeatureCache, environment_sample

__all__ += ["FeatureCache", "environment_sample"]
from .points import grid_points, point_features, point_neighbors

__all__ += ["point_features", "point_neighbors", "grid_points"]

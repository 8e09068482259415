"""Built-in datasets: model data to learn and teach with.

All of them are generated here, with a seed, a size knob, a progress bar and
an on-disk cache (see :mod:`mlexplore.datasets.cache`). EMT is a fitted
classical potential, **not DFT**: these sets show how methods behave, not
what a material does.

=================  ===========================================  ============
name               what                                         size knob
=================  ===========================================  ============
``lattice_alloy``  binary alloy on a fixed FCC/BCC lattice       n_per_composition
``gold``           Au bulk (strained), slabs, clusters           n_per_group
``ising_lattice``  Ising spins on a cubic lattice (E and S)      n_per_composition
=================  ===========================================  ============
"""

from __future__ import annotations

from .alloys import lattice_alloy
from .cache import cache_dir
from .dft_data import fe_noncollinear_dft, fe_spin_dft, fept_dft
from .gold import GOLD_GROUPS, gold
from .ising import ising_energy, ising_lattice
from .sampling import sample_occupations
from .spin_sampling import spin_directions
from .generate import generate_dataset
from .registry import REGISTRY, BuiltinDataset

__all__ = ["lattice_alloy", "gold", "ising_lattice", "fept_dft", "fe_spin_dft", "fe_noncollinear_dft", "ising_energy", "sample_occupations", "spin_directions", "cache_dir",
           "GOLD_GROUPS", "REGISTRY", "BuiltinDataset", "generate_dataset"]

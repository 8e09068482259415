"""DFT labelling with GPAW (optional: ``scripts/install_gpaw.sh`` installs it).

``label(structures, out="run.jsonl", settings=DFTSettings(...))`` computes
spin-polarised PBE energies, forces, stress, per-atom magnetic moments and
Hirshfeld charges, appending one record per configuration so that a killed
run resumes where it stopped. ``compute_ldos(calc)`` gives the local density of states on the
real-space grid of a converged GPAW calculation, with GPAW's references (for the LDOS surrogate).
"""

from .label import failed_records, failure_summary, gpaw_calculator, label, pattern_kept
from .records import append_record, latest_records, read_new_records, read_records, records_to_dataset
from .settings import DEFAULT_MAGMOMS, DFTSettings
from .options import parse_kpts, parse_magmoms, parse_mixer
from .ldos import LDOS_FORMAT, LDOSResult, compute_ldos, default_energy_grid
from .ldos_energy import (density_energy_terms, fermi_dirac_entropy_energy, harris_foulkes_energy_terms,
                          total_energy_from_density)
from .ldos_data import (AL_LATTICE_CONSTANT_933K, KT_933K, LDOSSettings, LDOSSnapshot, aluminium_ldos_card,
                        aluminium_snapshots, broaden, coarsen, gpaw_ldos, label_ldos, ldos_scf, ldos_checks, load_aluminium_ldos,
                        load_ldos_set, load_plan, save_plan, write_small_set)

__all__ = ["label", "DFTSettings", "DEFAULT_MAGMOMS", "gpaw_calculator", "failed_records", "failure_summary", "pattern_kept",
           "read_records", "read_new_records", "latest_records", "append_record", "records_to_dataset", "parse_kpts", "parse_magmoms", "parse_mixer",
           "compute_ldos", "LDOSResult", "default_energy_grid", "LDOS_FORMAT", "aluminium_snapshots", "LDOSSettings",
           "label_ldos", "gpaw_ldos", "ldos_scf", "coarsen", "broaden", "total_energy_from_density", "density_energy_terms",
           "harris_foulkes_energy_terms", "fermi_dirac_entropy_energy", "ldos_checks", "load_ldos_set", "load_aluminium_ldos",
           "aluminium_ldos_card", "LDOSSnapshot", "write_small_set", "save_plan", "load_plan",
           "AL_LATTICE_CONSTANT_933K", "KT_933K"]

"""The real-DFT datasets shipped with mlexplore (GPAW; spin-polarised PBE, and non-collinear LDA).

Made by ``scripts/generate_dft.py`` with :mod:`mlexplore.dft`; the data card
is in the README. Loading needs no GPAW.
"""

from __future__ import annotations

from pathlib import Path

from ..data.dataset import StructureDataset
from ..errors import InputError

__all__ = ["fept_dft", "fe_spin_dft", "fe_noncollinear_dft", "DATA_DIR"]

DATA_DIR = Path(__file__).resolve().parent / "data"


def _load(name: str) -> StructureDataset:
    from ..io import read_extxyz

    path = DATA_DIR / f"{name}_dft.extxyz.gz"
    if not path.exists():
        raise InputError(f"the shipped dataset file is missing; regenerate it with "
                         f"scripts/generate_dft.py {name}", path=path)
    ds = read_extxyz(path, check=False, name=f"{name}_dft")
    return ds


def fept_dft() -> StructureDataset:
    """FePt on a 16-site BCC cell at fixed volume (a = 2.98 Å), GPAW PBE.

    Every composition, each structure once: no two are related by the cell's symmetry
    (:func:`mlexplore.dft.configs.fept_configurations`); the B2 order of Fe8Pt8 is tagged
    ``ordered-B2``.

    Labels: ``energy`` (eV), ``mixing_energy`` (eV/atom, vs the pure Fe16 and
    Pt16 cells), ``forces`` (eV/Å), ``stress`` (eV/Å³), ``magmoms`` (μ_B per
    atom), ``magmom`` (total), ``charges`` (Hirshfeld Z − N_e, e),
    ``charge_transfer`` (N_e − Z, e), ``initial_magmoms``, ``pattern_kept``
    (0 flags a cell whose SCF left the seeded ferromagnetic state).
    """
    return _load("fept")


def fe_spin_dft() -> StructureDataset:
    """Iron (BCC/FCC, 2/4/16-atom cells, strained, rattled) with collinear moment patterns, GPAW PBE.

    Tags name the initial pattern (``FM``, ``AFM-B2``, ``AFM-layer``,
    ``AFM-L10``, ``random``) and the cell (``Fe2``, ``Fe4``, ``Fe16``).
    Labels: ``energy``, ``forces``, ``stress``, ``magmoms`` (final),
    ``initial_magmoms``, ``magmom``, ``charges``, ``charge_transfer`` and
    ``pattern_kept`` (1 when the SCF kept the initial pattern).
    """
    return _load("fe_spin")


def fe_noncollinear_dft() -> StructureDataset:
    """BCC iron (2- and 4-atom cells, strained, rattled) with non-collinear spins, GPAW LDA.

    Each geometry carries the thesis' spin states (002 §3.3.3), named by a tag: ``FM``,
    ``perturbed-FM`` (with ``sigma0.015`` … ``sigma0.2``), ``PM``, ``AFM-B2``, ``AFM-layer``;
    each atom's moment was held along its seeded direction by a penalty
    (:func:`mlexplore.dft.configs.fe_noncollinear_configurations`, ``SHIPPED_SETTINGS``).
    Labels: ``energy`` (eV, without the penalty term), ``forces`` (eV/Å), ``magmoms``
    (μ_B 3-vectors, the moments reached), ``initial_magmoms`` (the seeds, 3-vectors),
    ``magmom`` (length of the total moment) and ``direction_deviation`` (rad, the largest angle
    between a seed and its reached moment). No stress: GPAW has none for non-collinear runs.
    LDA energies: do not mix them with the PBE sets.

    The set grows while ``scripts/generate_dft.py fe_noncollinear`` runs (resumable; the
    README's data card says how many are in this copy).
    """
    return _load("fe_noncollinear")

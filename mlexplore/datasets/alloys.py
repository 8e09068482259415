"""Binary alloys on a fixed lattice, labelled with EMT (seed 000 §3.1, seed 001 §3)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from ase.build import bulk
from ase.data import atomic_numbers

from ..data.dataset import StructureDataset
from ..errors import InputError
from .cache import cached
from .emt import check_emt_metal, emt_label_many, emt_lattice_constant
from .sampling import lattice_permutations, sample_occupations

__all__ = ["lattice_alloy", "parse_pair"]


def parse_pair(pair: str | Sequence[str]) -> tuple[str, str]:
    """``"CuAu"`` or ``("Cu", "Au")`` → ``("Cu", "Au")``."""
    if isinstance(pair, str):
        symbols = re.findall(r"[A-Z][a-z]?", pair)
        if "".join(symbols) != pair or len(symbols) != 2:
            raise InputError(f"{pair!r} is not a pair of element symbols such as 'CuAu'", field="pair")
    else:
        symbols = list(pair)
    if len(symbols) != 2 or symbols[0] == symbols[1]:
        raise InputError(f"need two different elements, got {symbols}", field="pair")
    for s in symbols:
        if s not in atomic_numbers:
            raise InputError(f"unknown element {s!r}", field="pair")
    return symbols[0], symbols[1]


def _random_strain(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Symmetric strain tensor with components uniform in ±amplitude."""
    e = rng.uniform(-amplitude, amplitude, (3, 3))
    return (e + e.T) / 2


def lattice_alloy(
    pair: str | Sequence[str] = "CuAu",
    lattice: str = "fcc",
    repeat: tuple[int, int, int] = (2, 2, 2),
    n_per_composition: int = 1000,
    compositions: Sequence[int] | None = None,
    rattle: float = 0.0,
    strain: float = 0.0,
    vegard: bool = True,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
    cache: bool = True,
    distinct: bool = False,
) -> StructureDataset:
    """A binary alloy A–B on a fixed lattice, every composition sampled, EMT labels.

    Sampling follows seed 000 §3.1: for each number ``k`` of B atoms, all
    configurations when at most ``n_per_composition`` exist, otherwise
    ``n_per_composition`` distinct random ones (symmetry duplicates allowed).
    FCC 2×2×2 (32 sites) with 1000 per composition gives 28 058 structures.

    Parameters
    ----------
    pair:
        The two elements, ``"CuAu"`` or ``("Cu", "Au")``; A first. EMT covers
        Ag, Al, Au, Cu, Ni, Pd, Pt.
    lattice:
        ``"fcc"`` or ``"bcc"`` (conventional cubic cell, repeated ``repeat``).
    n_per_composition:
        At most this many configurations per composition (the size knob).
    compositions:
        Numbers of B atoms to include (default all, ``0 … n_sites``).
    rattle:
        Standard deviation (Å) of Gaussian displacements of every atom.
    strain:
        Amplitude of a random symmetric strain applied to each cell (e.g.
        0.02 = ±2 %).
    vegard:
        Lattice constant linear in composition between the EMT equilibrium
        lattice constants of pure A and pure B (Vegard's law); otherwise
        every structure uses the composition-weighted value at 50 %.
    seed:
        Seed for sampling, rattling and straining.
    distinct:
        Count symmetry classes instead of occupations: each composition gets up to
        ``n_per_composition`` different structures (all when fewer exist), none an image of
        another under the cell's symmetry (see :func:`lattice_permutations`). The paper's rule
        (default) repeats structures on small cells: a single B atom on 32 sites gives 32 copies
        of one structure, which a random split spreads over training and test sets.
    n_jobs:
        Processes for the EMT labelling (default: all cores).

    Returns
    -------
    StructureDataset with labels ``energy`` (eV), ``mixing_energy`` (eV/atom:
    ``E/N − Σ c_el e_el`` against the pure A and pure B cells of the same
    lattice at their EMT equilibrium, 001 eq 12), ``energies`` (per-atom EMT
    energies, eV) and ``forces`` (eV/Å). Tag: the lattice name; structures
    that were rattled or strained are tagged ``"rattled"`` / ``"strained"``.
    The mixing energy of unrattled, unstrained pure A and pure B is 0.
    """
    a_sym, b_sym = parse_pair(pair)
    check_emt_metal(a_sym)
    check_emt_metal(b_sym)
    if lattice not in ("fcc", "bcc"):
        raise InputError(f"unknown lattice {lattice!r}: use 'fcc' or 'bcc'", field="lattice")
    repeat = tuple(int(r) for r in repeat)
    if len(repeat) != 3 or min(repeat) < 1:
        raise InputError(f"repeat must be three positive integers, got {repeat}", field="repeat")
    if rattle < 0 or strain < 0:
        raise InputError("rattle and strain must be ≥ 0", field="rattle" if rattle < 0 else "strain")
    params = dict(pair=[a_sym, b_sym], lattice=lattice, repeat=repeat,
                  n_per_composition=n_per_composition,
                  compositions=None if compositions is None else list(compositions),
                  rattle=rattle, strain=strain, vegard=vegard, seed=seed)
    if distinct:  # (the cache key of the default stays what it was)
        params["distinct"] = True

    def build() -> StructureDataset:
        rng = np.random.default_rng(seed)
        a_a, a_b = emt_lattice_constant(a_sym, lattice), emt_lattice_constant(b_sym, lattice)
        template = bulk(a_sym, lattice, a=1.0, cubic=True).repeat(repeat)  # unit lattice constant
        n_sites = len(template)
        z_a, z_b = atomic_numbers[a_sym], atomic_numbers[b_sym]
        perms = lattice_permutations(template) if distinct else None
        groups = sample_occupations(n_sites, n_per_composition, compositions, rng, permutations=perms)
        images = []
        for k, occupations in groups:
            c = k / n_sites
            a = (1 - c) * a_a + c * a_b if vegard else 0.5 * (a_a + a_b)
            for occ in occupations:
                atoms = template.copy()
                atoms.numbers = np.where(occ, z_b, z_a)
                cell = template.cell.array * a
                if strain > 0:
                    cell = cell @ (np.eye(3) + _random_strain(rng, strain))
                atoms.set_cell(cell, scale_atoms=True)
                if rattle > 0:
                    atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
                images.append(atoms)
        energy, energies, forces = emt_label_many(images, n_jobs=n_jobs, progress=progress,
                                                  desc=f"{a_sym}{b_sym} EMT")
        # pure-element references: same lattice and cell size, each at its own EMT equilibrium
        refs = {}
        for sym, a in ((a_sym, a_a), (b_sym, a_b)):
            pure = bulk(sym, lattice, a=a, cubic=True).repeat(repeat)
            e_ref, _, _ = emt_label_many([pure], n_jobs=1, progress=False)
            refs[sym] = e_ref[0] / n_sites
        n_b = np.concatenate([np.full(len(occ), k) for k, occ in groups])
        n_a = n_sites - n_b
        mixing = energy / n_sites - (n_a * refs[a_sym] + n_b * refs[b_sym]) / n_sites
        tags = tuple([lattice] + (["rattled"] if rattle > 0 else []) + (["strained"] if strain > 0 else []))
        n = len(images)
        return StructureDataset(
            numbers=np.concatenate([im.numbers for im in images]),
            positions=np.concatenate([im.positions for im in images]),
            cells=np.array([im.cell.array for im in images]),
            pbc=np.ones((n, 3), dtype=bool),
            n_atoms=np.full(n, n_sites),
            structure_labels={"energy": energy, "mixing_energy": mixing},
            atom_labels={"energies": energies, "forces": forces},
            tags=[tags] * n,
            meta=[{} for _ in range(n)],
            name=f"{a_sym}{b_sym} {lattice} {'x'.join(map(str, repeat))} (EMT)",
        )

    return cached("lattice_alloy", params, build, cache=cache)

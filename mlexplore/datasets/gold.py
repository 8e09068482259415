"""Gold in bulk, surface and cluster environments, EMT labels (after seed 004 §2.1)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc100, fcc111
from ase.cluster import Decahedron, Icosahedron, Octahedron

from ..data.dataset import StructureDataset
from ..errors import InputError
from .cache import cached
from .emt import emt_label_many, emt_lattice_constant

__all__ = ["gold", "GOLD_GROUPS"]

#: The structure families of :func:`gold`, also its tags.
GOLD_GROUPS = ("bulk-fcc", "bulk-bcc", "surface-100", "surface-111", "cluster")


def _strained_bulk(lattice: str, a0: float, repeat: int, rng: np.random.Generator,
                   volumetric: float, shear: float) -> tuple[Atoms, dict]:
    atoms = bulk("Au", lattice, a=a0, cubic=True).repeat(repeat)
    if rng.random() < 0.5:
        kind, eps = "volumetric", np.eye(3) * rng.uniform(-volumetric, volumetric)
    else:
        off = rng.uniform(-shear, shear, (3, 3))
        kind, eps = "shear", (off + off.T) / 2 * (1 - np.eye(3)) + np.eye(3) * rng.uniform(-0.01, 0.01)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return atoms, {"strain_type": kind, "strain": [float(x) for x in eps.ravel()]}


def _slab(facet: str, a0: float, layers: int, rng: np.random.Generator, in_plane: float) -> tuple[Atoms, dict]:
    build = fcc100 if facet == "100" else fcc111
    atoms = build("Au", size=(2, 2, layers), a=a0, vacuum=7.5, periodic=True)
    s = rng.uniform(-in_plane, in_plane)
    cell = atoms.cell.array.copy()
    cell[:2] *= 1 + s
    atoms.set_cell(cell, scale_atoms=True)
    return atoms, {"strain_type": "in-plane", "strain": [float(s)]}


def _cluster(a0: float, rng: np.random.Generator) -> tuple[Atoms, dict]:
    shapes = [("icosahedron", lambda: Icosahedron("Au", noshells=2, latticeconstant=a0)),
              ("icosahedron", lambda: Icosahedron("Au", noshells=3, latticeconstant=a0)),
              ("octahedron", lambda: Octahedron("Au", length=3, cutoff=0, latticeconstant=a0)),
              ("octahedron", lambda: Octahedron("Au", length=4, cutoff=1, latticeconstant=a0)),
              ("decahedron", lambda: Decahedron("Au", p=2, q=2, r=0, latticeconstant=a0))]
    kind, make = shapes[rng.integers(len(shapes))]
    atoms = make()
    name = f"{kind}-{len(atoms)}"
    scale = 1 + rng.uniform(-0.03, 0.03)
    atoms.positions = (atoms.positions - atoms.positions.mean(axis=0)) * scale
    atoms.set_cell(np.zeros((3, 3)))
    atoms.pbc = False
    return Atoms(atoms.numbers, atoms.positions), {"shape": name, "scale": float(scale)}


def gold(
    n_per_group: int = 40,
    groups: tuple[str, ...] = GOLD_GROUPS,
    rattle: float = 0.05,
    volumetric_strain: float = 0.06,
    shear_strain: float = 0.04,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
    cache: bool = True,
) -> StructureDataset:
    """Gold structures for fitting and testing a potential (after seed 004 §2.1).

    Families (each also a tag): ``bulk-fcc`` (2×2×2 conventional cells, 32
    atoms) and ``bulk-bcc`` (3×3×3, 54 atoms) under random volumetric
    (±``volumetric_strain`` linear) or shear (±``shear_strain``) strain around
    the EMT equilibrium; ``surface-100`` and ``surface-111`` slabs (2×2, 6
    layers, 7.5 Å vacuum each side, in-plane strain ±2 %); ``cluster``
    (icosahedra of 13/55, octahedra of 19/38 atoms and a decahedron, scaled
    ±3 %). Every structure is rattled by Gaussian displacements of standard
    deviation ``rattle`` Å.

    Returns
    -------
    StructureDataset with labels ``energy`` (eV), ``energies`` (per-atom, eV)
    and ``forces`` (eV/Å); ``meta`` holds the strain or cluster shape.
    """
    unknown = [g for g in groups if g not in GOLD_GROUPS]
    if unknown:
        raise InputError(f"unknown group(s) {unknown}; choose from {GOLD_GROUPS}", field="groups")
    if n_per_group < 1:
        raise InputError(f"n_per_group must be ≥ 1, got {n_per_group}", field="n_per_group")
    params = dict(n_per_group=n_per_group, groups=list(groups), rattle=rattle,
                  volumetric_strain=volumetric_strain, shear_strain=shear_strain, seed=seed)

    def build() -> StructureDataset:
        rng = np.random.default_rng(seed)
        a_fcc, a_bcc = emt_lattice_constant("Au", "fcc"), emt_lattice_constant("Au", "bcc")
        images, tags, metas = [], [], []
        for group in groups:
            for _ in range(n_per_group):
                if group == "bulk-fcc":
                    atoms, meta = _strained_bulk("fcc", a_fcc, 2, rng, volumetric_strain, shear_strain)
                elif group == "bulk-bcc":
                    atoms, meta = _strained_bulk("bcc", a_bcc, 3, rng, volumetric_strain, shear_strain)
                elif group == "surface-100":
                    atoms, meta = _slab("100", a_fcc, 6, rng, 0.02)
                elif group == "surface-111":
                    atoms, meta = _slab("111", a_fcc, 6, rng, 0.02)
                else:
                    atoms, meta = _cluster(a_fcc, rng)
                atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
                images.append(atoms)
                tags.append((group,))
                metas.append(meta)
        energy, energies, forces = emt_label_many(images, n_jobs=n_jobs, progress=progress, desc="Au EMT")
        n = len(images)
        return StructureDataset(
            numbers=np.concatenate([im.numbers for im in images]),
            positions=np.concatenate([im.positions for im in images]),
            cells=np.array([im.cell.array for im in images]).reshape(n, 3, 3),
            pbc=np.array([im.pbc for im in images]).reshape(n, 3),
            n_atoms=np.array([len(im) for im in images]),
            structure_labels={"energy": energy},
            atom_labels={"energies": energies, "forces": forces},
            tags=tags,
            meta=metas,
            name="Au (EMT)",
        )

    return cached("gold", params, build, cache=cache)

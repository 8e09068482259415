"""Ising-type lattice data for multi-task tests (after HydraGNN's Ising example).

Sites of an ``L×L×L`` simple-cubic lattice (periodic) carry spins
``σ_i = ±1``, optionally scaled by ``u_i ~ U[0, 1)`` to ``c_i = σ_i u_i``
(unscaled: ``c_i = σ_i``). Each site gets the value ``S_i = sin(π c_i / 2)``
and the structure the energy

    E = −(1/6) Σ_i S_i (S_i + Σ_{j ∈ 6 nearest neighbours of i} S_j)

— a graph-level target (E) and a node-level target (S) that depend on each
other, which is what makes the set useful for comparing single- and
multi-task models (HydraGNN tests train on exactly this pair; Lupo Pasini et
al., HydraGNN). E and S are dimensionless model quantities, not eV.
"""

from __future__ import annotations

import numpy as np

from ..data.dataset import StructureDataset
from ..errors import InputError
from .cache import cached
from .sampling import sample_occupations

__all__ = ["ising_lattice", "ising_energy"]


def ising_energy(site_values: np.ndarray) -> np.ndarray:
    """E = −(1/6) Σ_i S_i (S_i + Σ_nn S_j) for site values of shape ``(n, L, L, L)``, periodic."""
    s = np.asarray(site_values, dtype=float)
    nn = sum(np.roll(s, shift, axis=ax) for ax in (1, 2, 3) for shift in (1, -1))
    return -(s * (s + nn)).sum(axis=(1, 2, 3)) / 6.0


def ising_lattice(
    L: int = 3,
    n_per_composition: int = 100,
    scaled: bool = False,
    spacing: float = 1.0,
    symbols: tuple[str, str] = ("H", "He"),
    seed: int = 0,
    progress: bool = True,
    cache: bool = True,
) -> StructureDataset:
    """Spin configurations on an ``L×L×L`` periodic simple-cubic lattice.

    Configurations are sampled per composition (number of up spins) as in
    :func:`mlexplore.datasets.lattice_alloy`.

    Parameters
    ----------
    L:
        Sites per edge (``L³`` sites).
    n_per_composition:
        At most this many configurations per number of up spins (size knob).
    scaled:
        Scale each spin by ``U[0, 1)`` (continuous site values).
    spacing:
        Lattice spacing (Å) of the site positions.
    symbols:
        Placeholder species for spin down and spin up, so that models that
        read atomic numbers see the spin direction; the spin value itself is
        the per-atom label ``spin``.

    Returns
    -------
    StructureDataset with labels ``energy`` (per structure, dimensionless,
    formula above), ``spin`` (per site, ``c_i``) and ``site_value``
    (per site, ``S_i``). Tag ``"ising"``.
    """
    if L < 2:
        raise InputError(f"L must be ≥ 2, got {L}", field="L")
    if spacing <= 0:
        raise InputError(f"spacing must be positive, got {spacing}", field="spacing")
    from ase.data import atomic_numbers

    for s in symbols:
        if s not in atomic_numbers:
            raise InputError(f"unknown element {s!r}", field="symbols")
    params = dict(L=L, n_per_composition=n_per_composition, scaled=scaled, spacing=spacing,
                  symbols=list(symbols), seed=seed)

    def build() -> StructureDataset:
        from tqdm.auto import tqdm

        rng = np.random.default_rng(seed)
        n_sites = L ** 3
        groups = sample_occupations(n_sites, n_per_composition, None, rng)
        up = np.concatenate([occ for _, occ in tqdm(groups, desc="Ising", disable=not progress)])
        n = len(up)
        sigma = np.where(up, 1.0, -1.0)
        c = sigma * rng.random(sigma.shape) if scaled else sigma
        s = np.sin(np.pi * c / 2)
        energy = ising_energy(s.reshape(n, L, L, L))
        grid = np.stack(np.meshgrid(np.arange(L), np.arange(L), np.arange(L), indexing="ij"),
                        axis=-1).reshape(-1, 3) * spacing
        z_down, z_up = atomic_numbers[symbols[0]], atomic_numbers[symbols[1]]
        return StructureDataset(
            numbers=np.where(up, z_up, z_down).reshape(-1),
            positions=np.tile(grid, (n, 1)),
            cells=np.broadcast_to(np.eye(3) * L * spacing, (n, 3, 3)),
            pbc=np.ones((n, 3), dtype=bool),
            n_atoms=np.full(n, n_sites),
            structure_labels={"energy": energy},
            atom_labels={"spin": c.reshape(-1), "site_value": s.reshape(-1)},
            tags=[("ising",)] * n,
            meta=[{} for _ in range(n)],
            name=f"Ising {L}x{L}x{L}{' scaled' if scaled else ''}",
        )

    return cached("ising_lattice", params, build, cache=cache)

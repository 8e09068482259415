"""What labelled iron (``fe_spin_dft`` or your own collinear-spin Fe data) says about known physics.

Each geometry of :func:`mlexplore.dft.configs.fe_spin_configurations` is computed with several
initial moment patterns (tags ``FM``, ``AFM-B2``, ``AFM-layer``, ``AFM-L10``, ``random``), so the
energy of one order relative to another can be read at fixed geometry; and the ferromagnetic BCC
cells span ±4 % in lattice constant, enough for an equation of state.

    from mlexplore.datasets import fe_spin_dft
    from mlexplore.dft.iron_physics import pattern_energy_gaps, ferromagnetic_bcc_eos

    ds = fe_spin_dft()
    gaps = pattern_energy_gaps(ds)            # {("bcc", "AFM-B2"): eV/atom above FM, ...}
    eos = ferromagnetic_bcc_eos(ds)           # a0 (Å), V0 (Å³/atom), B (GPa), moment at V0 (μB)

Reference values: PBE gives BCC Fe a0 ≈ 2.83 Å (Haas, Tran & Blaha, PRB 79, 085104 (2009)), a
bulk modulus of roughly 170–200 GPa and ≈ 2.2 μB per atom; experiment: 2.867 Å, 172 GPa,
2.22 μB. Ferromagnetism is the BCC ground state, so every antiparallel order costs energy, the
more the more nearest-neighbour pairs it makes antiparallel (AFM-B2: all 8, AFM-layer: 4 of 8).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ..data.dataset import StructureDataset
from ..errors import InputError

__all__ = ["PATTERNS", "pattern_of", "same_geometry", "pattern_energy_gaps", "bcc_site_displacements", "two_sublattice_exchange",
           "ferromagnetic_bcc_eos"]

#: The collinear initial moment patterns of the fe_spin configurations (a structure's tag).
PATTERNS = ("FM", "AFM-B2", "AFM-layer", "AFM-L10", "random")


def pattern_of(tags: tuple[str, ...]) -> str | None:
    """The moment pattern a structure was seeded with (its tag in :data:`PATTERNS`), or None."""
    found = [t for t in tags if t in PATTERNS]
    return found[0] if found else None


def _lattice_of(tags: tuple[str, ...]) -> str | None:
    return "bcc" if "bcc" in tags else "fcc" if "fcc" in tags else None


def same_geometry(ds: StructureDataset, decimals: int = 6) -> list[np.ndarray]:
    """Groups of structures with the same cell, elements and positions (to ``decimals`` Å), in
    order of first appearance: the spin patterns computed for one geometry."""
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i in range(len(ds)):
        atoms = ds.atom_slice(i)
        key = b"|".join((np.round(ds.cells[i], decimals).tobytes(), ds.numbers[atoms].tobytes(),
                         np.round(ds.positions[atoms], decimals).tobytes()))
        groups[key].append(i)
    return [np.array(g) for g in groups.values()]


def _require(ds: StructureDataset, labels: tuple[str, ...]) -> None:
    missing = [name for name in labels if name not in ds]
    if missing:
        raise InputError(f"the data have no {', '.join(repr(m) for m in missing)} label "
                         f"(labels: {', '.join(ds.label_names) or 'none'})", field=missing[0])


def pattern_energy_gaps(ds: StructureDataset, reference: str = "FM",
                        kept_only: bool = True) -> dict[tuple[str, str], np.ndarray]:
    """Energy of each pattern minus that of ``reference`` at the same geometry (eV/atom).

    Returns ``{(lattice, pattern): gaps}`` over every geometry computed with both, lattice
    ``"bcc"``/``"fcc"`` from the tags. With ``kept_only`` (and a ``pattern_kept`` label) only
    pairs where the SCF kept both seeded patterns count: a cell that fell back to FM would
    otherwise show a gap of ≈ 0 under an AFM name.
    """
    _require(ds, ("energy",))
    if reference not in PATTERNS:
        raise InputError(f"unknown reference pattern {reference!r}; choose from {', '.join(PATTERNS)}",
                         field="reference")
    e = ds.label("energy") / ds.n_atoms
    kept = ds.label("pattern_kept").astype(bool) if kept_only and "pattern_kept" in ds else np.ones(len(ds), bool)
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for group in same_geometry(ds):
        members = [(pattern_of(ds.tags[i]), i) for i in group if kept[i]]
        refs = [i for pattern, i in members if pattern == reference]
        if not refs:
            continue
        for pattern, i in members:  # (a geometry may have several random patterns: each counts)
            if pattern is not None and pattern != reference:
                out[(_lattice_of(ds.tags[i]), pattern)].append(e[i] - e[refs[0]])
    return {k: np.array(v) for k, v in sorted(out.items(), key=lambda kv: (str(kv[0][0]), PATTERNS.index(kv[0][1])))}


def bcc_site_displacements(cell: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Displacements (Å) of atoms from the nearest sites of a strained BCC cell built from the
    cubic conventional cell repeated along its axes (as ``fe_spin_configurations`` builds them),
    net translation removed. The repeats follow from the cell lengths and the volume per atom;
    each atom's site is the nearer of its conventional cube's corner and body centre."""
    cell = np.asarray(cell, float)
    positions = np.asarray(positions, float)
    a = (2 * abs(np.linalg.det(cell)) / len(positions)) ** (1 / 3)  # conventional lattice constant
    repeat = np.maximum(np.round(np.linalg.norm(cell, axis=1) / a), 1)
    conventional = positions @ np.linalg.inv(cell) * repeat  # in units of the conventional cube
    candidates = np.stack([np.round(conventional), np.floor(conventional) + 0.5])  # corner, body centre
    d = (conventional[None] - candidates) / repeat @ cell
    nearest = np.argmin(np.linalg.norm(d, axis=2), axis=0)
    u = d[nearest, np.arange(len(positions))]
    u -= u.mean(axis=0)
    worst = np.linalg.norm(u, axis=1).max()
    if worst > 0.3 * a * np.sqrt(3) / 2:
        raise InputError(f"an atom lies {worst:.2f} Å from its BCC site (over 30 % of the "
                         f"nearest-neighbour distance): not a rattled conventional BCC cell", field="positions")
    return u


def ferromagnetic_bcc_eos(ds: StructureDataset, include_sheared: bool = False,
                          harmonic_correction: bool = True) -> dict[str, Any]:
    """Fit a Birch-Murnaghan equation of state (ASE's ``EquationOfState``) to the ferromagnetic BCC cells.

    Uses the structures tagged ``bcc`` and ``FM`` whose SCF kept the pattern (all cell sizes,
    energy and volume per atom), without the sheared ones unless ``include_sheared``.

    Rattled positions put each cell a few tens of meV/atom above its lattice energy. With
    ``harmonic_correction`` (needs ``forces``) that is removed to second order: with u the
    displacements from the lattice sites (:func:`bcc_site_displacements`) and F = −K u the
    forces, E(sites) ≈ E − ½ uᵀK u = E + ½ u·F. (Measured on ``fe_spin_dft``: the fit's RMS
    residual drops from 26 to 5 meV/atom.)

    Returns ``{"n", "v0" (Å³/atom), "a0" (Å, cubic BCC), "e0" (eV/atom), "bulk_modulus"
    (GPa), "rms_residual" (meV/atom), "moment_at_v0" (μB, mean |m| from a straight line
    through the moments against volume), "moment_volume_slope" (μB per Å³/atom),
    "volumes", "energies" (corrected, if so), "moments", "curve" (the fitted E(V) on 200 volumes)}``.
    """
    from ase.eos import EquationOfState
    from ase.units import GPa

    _require(ds, ("energy", "magmoms") + (("forces",) if harmonic_correction else ()))
    kept = ds.label("pattern_kept").astype(bool) if "pattern_kept" in ds else np.ones(len(ds), bool)
    sel = [i for i in range(len(ds)) if "bcc" in ds.tags[i] and pattern_of(ds.tags[i]) == "FM" and kept[i]
           and (include_sheared or "sheared" not in ds.tags[i])]
    if len(sel) < 5:
        raise InputError(f"an equation of state needs ≥ 5 ferromagnetic BCC structures, the data have {len(sel)}",
                         field="tags")
    volumes = np.array([abs(np.linalg.det(ds.cells[i])) / ds.n_atoms[i] for i in sel])
    energies = ds.label("energy")[sel].astype(float)
    if harmonic_correction:
        forces = ds.label("forces")
        for k, i in enumerate(sel):
            atoms = ds.atom_slice(i)
            u = bcc_site_displacements(ds.cells[i], ds.positions[atoms])
            energies[k] += 0.5 * np.sum(u * forces[atoms])
    energies /= ds.n_atoms[sel]
    magmoms = ds.label("magmoms")
    moments = np.array([np.abs(magmoms[ds.atom_slice(i)]).mean() for i in sel])
    fit = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, b = fit.fit()
    residual = energies - fit.func(volumes, *fit.eos_parameters)
    slope, intercept = np.polyfit(volumes, moments, 1)
    grid = np.linspace(volumes.min(), volumes.max(), 200)
    return {"n": len(sel), "v0": float(v0), "a0": float((2 * v0) ** (1 / 3)), "e0": float(e0),
            "bulk_modulus": float(b / GPa), "rms_residual": float(1000 * np.sqrt(np.mean(residual ** 2))),
            "moment_at_v0": float(slope * v0 + intercept), "moment_volume_slope": float(slope),
            "volumes": volumes, "energies": energies, "moments": moments,
            "curve": (grid, fit.func(grid, *fit.eos_parameters))}


def two_sublattice_exchange(ds: StructureDataset, reference: str = "FM", max_angle: float = np.pi,
                            min_moment: float = 0.5) -> dict[str, Any]:
    """The exchange energy scale of non-collinear 2-atom BCC cells (``fe_noncollinear_dft``).

    In a 2-atom BCC cell every atom of one sublattice sees the other only through one relative
    angle θ (from the reached moments), so a classical Heisenberg model gives, per atom,
    ``E(θ) − E_FM = J (1 − cos θ)`` with ``J = ½ Σ_{j ∈ other sublattice} J_0j`` (eV/atom). ``J`` is
    fitted by least squares through the origin over every geometry computed with its ``reference``
    state, using the states whose angle is at most ``max_angle`` (rad); the residual says how far
    the data are from that form. Iron is not a rigid-moment magnet: the moments shrink as θ grows
    (AFM-B2 Fe2 ≈ 1.7 against 2.1 μB FM in LDA), so a fit over all angles, led by the AFM states at
    1 − cos θ = 2, gives a larger J than the small-angle (spin-wave) fit; compare both. A state whose
    moments collapsed below ``min_moment`` (μB; compressed AFM cells end non-magnetic) has no angle
    and is left out.

    The mean-field Curie temperature of the inter-sublattice couplings alone is
    ``k_B T_C^MF = 2J/3`` (``(1/3) Σ_j J_0j`` without the same-sublattice terms, which the 2-atom
    cell cannot see); for nearest-neighbour classical Heisenberg BCC, Monte Carlo gives about 0.77
    of the mean-field value (k_B T_C / J₁ = 2.054 against z/3 = 2.67).

    Returns ``{"J" (eV/atom), "J_error" (standard error), "r2", "n", "rms_residual" (meV/atom),
    "tc_mean_field" (K), "one_minus_cos", "energy_above_reference" (eV/atom)}``.
    """
    from ase.units import kB

    _require(ds, ("energy", "magmoms"))
    if not 0 < max_angle <= np.pi:
        raise InputError(f"max_angle must be in (0, π] rad, got {max_angle}", field="max_angle")
    m = ds.label("magmoms")
    if m.ndim != 2:
        raise InputError("needs 3-vector moments (a non-collinear set such as fe_noncollinear_dft)", field="magmoms")
    e = ds.label("energy") / ds.n_atoms
    x, y = [], []
    for group in same_geometry(ds):
        group = [i for i in group if ds.n_atoms[i] == 2]
        refs = [i for i in group if reference in ds.tags[i]]
        if not refs:
            continue
        for i in group:
            if i == refs[0]:
                continue
            a, b = m[ds.atom_slice(i)]
            if min(np.linalg.norm(a), np.linalg.norm(b)) < min_moment:
                continue
            cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            if np.arccos(np.clip(cos, -1, 1)) <= max_angle + 1e-9:
                x.append(1 - cos)
                y.append(e[i] - e[refs[0]])
    if len(x) < 2:
        raise InputError(f"needs ≥ 2 two-atom structures beside their {reference} state, found {len(x)}",
                         field="tags")
    x, y = np.array(x), np.array(y)
    J = float(x @ y / (x @ x))
    residual = y - J * x
    dof = max(len(x) - 1, 1)
    J_error = float(np.sqrt(residual @ residual / dof / (x @ x)))
    r2 = float(1 - residual @ residual / ((y - y.mean()) @ (y - y.mean()))) if len(x) > 2 else float("nan")
    return {"J": J, "J_error": J_error, "r2": r2, "n": len(x),
            "rms_residual": float(1000 * np.sqrt(np.mean(residual ** 2))), "tc_mean_field": float(2 * J / 3 / kB),
            "one_minus_cos": x, "energy_above_reference": y}

"""Physical properties from any ASE calculator (004 §2.3, SPEC §8): equation of state, cubic
elastic constants, surface energies — to compare a trained potential with its reference.

Units: Å, eV; moduli in GPa; surface energies in eV/Å² (and J/m² in the returned dict).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase.build import bulk, fcc100, fcc111
from ase.units import GPa, J, m

from ..errors import InputError

__all__ = ["equation_of_state", "cubic_elastic_constants", "surface_energy"]


def equation_of_state(calc: Any, symbol: str = "Au", lattice: str = "fcc", a_guess: float = 4.08,
                      spread: float = 0.03, n: int = 9, eos: str = "birchmurnaghan") -> dict[str, Any]:
    """Energy–volume curve of the cubic conventional cell and its fit (ASE's ``EquationOfState``).

    Returns ``{"a0" (Å), "B" (GPa), "e0" (eV/atom), "volumes" (Å³/atom), "energies" (eV/atom)}``
    over lattice constants ``a_guess × (1 ± spread)``.
    """
    from ase.eos import EquationOfState

    if n < 5:
        raise InputError("an equation-of-state fit needs at least 5 points", field="n")
    vols, energies = [], []
    for a in np.linspace(a_guess * (1 - spread), a_guess * (1 + spread), n):
        atoms = bulk(symbol, lattice, a=a, cubic=True)
        atoms.calc = calc
        vols.append(atoms.get_volume() / len(atoms))
        energies.append(atoms.get_potential_energy() / len(atoms))
    v0, e0, b = EquationOfState(vols, energies, eos=eos).fit()
    per_cell = {"fcc": 4, "bcc": 2, "sc": 1}.get(lattice)
    if per_cell is None:
        raise InputError(f"lattice must be fcc, bcc or sc, got {lattice!r}", field="lattice")
    return {"a0": float((v0 * per_cell) ** (1 / 3)), "B": float(b / GPa), "e0": float(e0),
            "volumes": np.array(vols), "energies": np.array(energies)}


def cubic_elastic_constants(calc: Any, symbol: str = "Au", lattice: str = "fcc", a0: float = 4.08,
                            strain: float = 0.005) -> dict[str, float]:
    """C11, C12, C44 (GPa) from the stress of ± ``strain`` deformations of the relaxed cubic cell
    (central differences; atoms not relaxed, exact for one-atom-basis FCC/BCC by symmetry), and
    ``B = (C11 + 2 C12) / 3``. Needs a calculator that gives stress."""
    base = bulk(symbol, lattice, a=a0, cubic=True)

    def stress(eps: np.ndarray) -> np.ndarray:
        atoms = base.copy()
        atoms.set_cell(base.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        atoms.calc = calc
        return atoms.get_stress(voigt=True)  # xx yy zz yz xz xy, eV/Å³

    e = np.zeros((3, 3))
    e[0, 0] = strain
    d_normal = (stress(e) - stress(-e)) / (2 * strain)
    s = np.zeros((3, 3))
    s[1, 2] = s[2, 1] = strain / 2  # engineering shear γ_yz = strain
    d_shear = (stress(s) - stress(-s)) / (2 * strain)
    c11, c12, c44 = d_normal[0] / GPa, d_normal[1] / GPa, d_shear[3] / GPa
    return {"C11": float(c11), "C12": float(c12), "C44": float(c44), "B": float((c11 + 2 * c12) / 3)}


def surface_energy(calc: Any, symbol: str = "Au", facet: str = "111", a0: float = 4.08, layers: int = 7,
                   vacuum: float = 8.0) -> dict[str, float]:
    """Unrelaxed surface energy ``γ = (E_slab − N E_bulk) / 2A`` of a (100) or (111) slab (1×1
    in-plane, ``layers`` thick); returns ``{"gamma" (eV/Å²), "gamma_J_m2"}``."""
    build = {"100": fcc100, "111": fcc111}.get(facet)
    if build is None:
        raise InputError(f"facet must be '100' or '111', got {facet!r}", field="facet")
    slab = build(symbol, size=(1, 1, layers), a=a0, vacuum=vacuum, periodic=True)
    slab.calc = calc
    ref = bulk(symbol, "fcc", a=a0, cubic=True)
    ref.calc = calc
    e_bulk = ref.get_potential_energy() / len(ref)
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    gamma = (slab.get_potential_energy() - len(slab) * e_bulk) / (2 * area)
    return {"gamma": float(gamma), "gamma_J_m2": float(gamma / (J / m ** 2))}

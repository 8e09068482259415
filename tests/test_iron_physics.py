"""mlexplore.dft.iron_physics on made-up iron with known answers (the shipped DFT data are checked
against published numbers in test_shipped_dft_data.py)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import GPa

from mlexplore import InputError, StructureDataset
from mlexplore.dft.iron_physics import (bcc_site_displacements, ferromagnetic_bcc_eos, pattern_energy_gaps,
                                        pattern_of, same_geometry)

V0, B0, BP, E0 = 11.4, 180 * GPa, 5.0, -8.8  # Å³/atom, eV/Å³, –, eV/atom
K = 6.0  # eV/Å², the made-up harmonic force constant of each atom about its site


def _birch_murnaghan(v):
    eta = (V0 / v) ** (2 / 3)
    return E0 + 9 * V0 * B0 / 16 * ((eta - 1) ** 3 * BP + (eta - 1) ** 2 * (6 - 4 * eta))


def _iron(n_geometries=12, rattle=0.05, seed=0):
    """BCC cells (2 and 4 atoms) over ±4 % in a: FM on the equation of state plus a harmonic
    rattle energy ½K|u|², AFM-B2 0.4 eV/atom above; one AFM-B2 flagged as fallen back to FM."""
    rng = np.random.default_rng(seed)
    images, tags, energies, forces, magmoms, kept = [], [], [], [], [], []
    for g in range(n_geometries):
        rep = (1, 1, 1 + g % 2)
        atoms = bulk("Fe", "bcc", a=2.84, cubic=True).repeat(rep)
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.04, 0.04)), scale_atoms=True)
        u = rng.normal(0, rattle, atoms.positions.shape)
        u -= u.mean(axis=0)
        atoms.positions += u
        v = atoms.get_volume() / len(atoms)
        e_fm = len(atoms) * _birch_murnaghan(v) + 0.5 * K * np.sum(u ** 2)
        moment = 2.2 + 0.2 * (v - V0)
        for pattern, de, signs in (("FM", 0.0, 1), ("AFM-B2", 0.4, (-1) ** np.arange(len(atoms)))):
            images.append(atoms.copy())
            tags.append(("bcc", pattern, "strained", "rattled"))
            energies.append(e_fm + de * len(atoms))
            forces.append(-K * u)
            magmoms.append(moment * np.ones(len(atoms)) * signs)
            kept.append(0 if (g == 3 and pattern == "AFM-B2") else 1)
    ds = StructureDataset.from_atoms(images, tags=tags)
    ds.add_label("energy", np.array(energies))
    ds.add_label("forces", np.concatenate(forces))
    ds.add_label("magmoms", np.concatenate(magmoms))
    ds.add_label("pattern_kept", np.array(kept))
    return ds


def test_geometries_and_gaps():
    ds = _iron()
    groups = same_geometry(ds)
    assert len(groups) == 12 and all(len(g) == 2 for g in groups)
    assert pattern_of(ds.tags[1]) == "AFM-B2" and pattern_of(("bcc", "strained")) is None
    gaps = pattern_energy_gaps(ds)
    assert list(gaps) == [("bcc", "AFM-B2")]
    assert len(gaps[("bcc", "AFM-B2")]) == 11  # the one that fell back to FM is left out
    np.testing.assert_allclose(gaps[("bcc", "AFM-B2")], 0.4, atol=1e-12)
    assert len(pattern_energy_gaps(ds, kept_only=False)[("bcc", "AFM-B2")]) == 12
    # two random patterns on one geometry both count
    two = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.84, cubic=True)] * 3,
                                      tags=[("bcc", "FM"), ("bcc", "random"), ("bcc", "random")])
    two.add_label("energy", np.array([-17.0, -16.0, -16.5]))
    np.testing.assert_allclose(pattern_energy_gaps(two)[("bcc", "random")], [0.5, 0.25])
    with pytest.raises(InputError, match="unknown reference pattern"):
        pattern_energy_gaps(ds, reference="ferro")


def test_site_displacements_of_a_strained_repeated_cell():
    atoms = bulk("Fe", "bcc", a=2.9, cubic=True).repeat((1, 1, 2))
    atoms.set_cell(atoms.cell.array @ np.array([[1.02, 0.01, 0], [0.01, 0.98, 0], [0, 0, 1.03]]), scale_atoms=True)
    u = np.random.default_rng(1).normal(0, 0.06, atoms.positions.shape)
    u -= u.mean(axis=0)
    np.testing.assert_allclose(bcc_site_displacements(atoms.cell.array, atoms.positions + u + 0.3), u, atol=1e-12)
    # an atom moved most of the way to an empty octahedral site (1.45 Å away) is nobody's rattle
    moved = atoms.positions.copy()
    moved[1, 0] += 1.2
    with pytest.raises(InputError, match="from its BCC site"):
        bcc_site_displacements(atoms.cell.array, moved)


def test_equation_of_state_recovers_the_made_up_iron():
    ds = _iron(n_geometries=16)
    eos = ferromagnetic_bcc_eos(ds)
    assert eos["n"] == 16
    # the harmonic correction removes the rattle energy exactly (it is harmonic here)
    assert eos["rms_residual"] < 1e-3
    assert eos["v0"] == pytest.approx(V0, rel=1e-4) and eos["a0"] == pytest.approx((2 * V0) ** (1 / 3), rel=1e-4)
    assert eos["bulk_modulus"] == pytest.approx(180, rel=1e-3)
    assert eos["moment_at_v0"] == pytest.approx(2.2, abs=1e-6) and eos["moment_volume_slope"] == pytest.approx(0.2)
    grid, curve = eos["curve"]
    np.testing.assert_allclose(curve, _birch_murnaghan(grid), atol=1e-6)
    raw = ferromagnetic_bcc_eos(ds, harmonic_correction=False)
    assert raw["rms_residual"] > 3  # meV/atom: the rattle energy (~½K⟨u²⟩ ≈ 7), uncorrected
    with pytest.raises(InputError, match="needs ≥ 5 ferromagnetic BCC"):
        ferromagnetic_bcc_eos(ds.select(np.arange(6)))
    no_forces = StructureDataset.from_atoms([Atoms(a.numbers, a.positions, cell=a.cell, pbc=True)
                                             for a in ds.to_atoms()], tags=ds.tags)
    no_forces.add_label("energy", ds.label("energy"))
    no_forces.add_label("magmoms", ds.label("magmoms"))
    with pytest.raises(InputError, match="no 'forces' label"):
        ferromagnetic_bcc_eos(no_forces)

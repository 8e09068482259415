"""The MD-grade ASE calculator: a neighbour list kept between steps with a skin gives the energies
and forces of a new list at every step — over MD trajectories whose atoms cross the cell
boundaries, after wrapping, after a change of cell — for single models and committees, for the
G5/G9 tensor route and the G4 blocks; the stress only when asked, equal either way."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from mlexplore import InputError
from mlexplore.descriptors import G2, G4, G5, G9, SymmetryFunctions, VerletList
from mlexplore.models import BPNN, Committee
from mlexplore.training import Potential


def _model(committee: bool = False):
    sf = SymmetryFunctions([G2(0.5, 2.5), G2(0.1, 0.0), G4(0.02, 2, -1), G5(0.01, 1, 1), G9(0.03, 3, 1, 1.0)],
                           cutoff=4.5, cutoff_function="polynomial", elements=["Cu", "Au"])
    torch.manual_seed(0)
    model = Committee(sf, n_members=3, hidden=(8,)) if committee else BPNN(sf, hidden=(8,))
    return model.double()


def _hot_cell(seed: int = 0):
    """A small CuAu cell at 3000 K: atoms leave the cell within a few steps."""
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(2)
    rng = np.random.default_rng(seed)
    atoms.symbols = ["Cu" if x else "Au" for x in rng.random(len(atoms)) < 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        MaxwellBoltzmannDistribution(atoms, temperature_K=3000, rng=rng)
    return atoms


def _trajectory(model, skin, steps=40, wrap_at=(15,), strain_at=(30,)):
    atoms = _hot_cell()
    calc = Potential(model, extrapolation="ignore", min_distance=0).as_ase_calculator(skin=skin)
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, 4 * units.fs)
    frames = []
    for step in range(steps):
        dyn.run(1)
        if step in wrap_at:
            atoms.wrap()
        if step in strain_at:
            atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
        frames.append((atoms.get_potential_energy(), atoms.get_forces().copy(), atoms.positions.copy()))
    return frames, calc


@pytest.mark.parametrize("committee", [False, True])
def test_kept_list_gives_the_energies_and_forces_of_a_new_list(committee):
    model = _model(committee)
    kept, calc = _trajectory(model, skin=1.0)
    fresh, calc0 = _trajectory(model, skin=0.0)
    assert calc.neighbors.builds < calc.neighbors.calls  # the list was reused …
    assert calc.neighbors.builds >= 3  # … and rebuilt: first step, after the wrap, after the strain
    assert calc0.neighbors.builds == calc0.neighbors.calls
    start = fresh[0][2]
    left = max(((p < -0.01) | (p > 7.41)).any() for _, _, p in fresh[:15])  # outside the 7.4 Å cell
    assert left and not np.allclose(fresh[-1][2], start)
    for (e1, f1, p1), (e0, f0, p0) in zip(kept, fresh):
        np.testing.assert_allclose(p1, p0, atol=1e-9)  # the same trajectory …
        assert e1 == pytest.approx(e0, abs=1e-10)  # … with the same energies and forces
        np.testing.assert_allclose(f1, f0, atol=1e-10)


def test_an_atom_moving_half_the_skin_forces_a_rebuild():
    model = _model()
    atoms = _hot_cell()
    pot = Potential(model, extrapolation="ignore")
    track = VerletList(skin=0.4)
    pot.calculate(atoms, neighbors=track)
    atoms.positions[3, 0] += 0.19
    pot.calculate(atoms, neighbors=track)
    assert (track.builds, track.calls) == (1, 2)
    atoms.positions[3, 0] += 0.02  # 0.21 Å from where the list was built: more than skin / 2
    out = pot.calculate(atoms, neighbors=track)
    assert (track.builds, track.calls) == (2, 3)
    ref = pot.calculate(atoms)
    np.testing.assert_allclose(out["forces"], ref["forces"], atol=1e-12)


def test_stress_only_when_asked_and_the_same_either_way():
    model = _model()
    atoms = _hot_cell()
    atoms.rattle(0.05, seed=1)
    pot = Potential(model, extrapolation="ignore")
    full = pot.calculate(atoms)
    lean = pot.calculate(atoms, stress=False)
    assert "stress" in full and "stress" not in lean
    np.testing.assert_allclose(lean["forces"], full["forces"], atol=1e-13)
    atoms.calc = pot.as_ase_calculator()
    forces = atoms.get_forces()
    assert "stress" not in atoms.calc.results  # MD asks for forces only
    np.testing.assert_allclose(atoms.get_stress(), full["stress"], atol=1e-13)
    np.testing.assert_allclose(forces, full["forces"], atol=1e-13)


def test_a_kept_list_still_checks_overlaps():
    model = _model()
    atoms = _hot_cell()
    atoms.calc = Potential(model, extrapolation="ignore").as_ase_calculator(skin=1.0)
    atoms.get_forces()
    atoms.positions[1] = atoms.positions[0] + [0.2, 0.0, 0.0]  # moved 1.3 Å: rebuilt anyway, so …
    with pytest.raises(InputError, match="atoms 0 and 1"):
        atoms.get_forces()
    atoms = _hot_cell()
    atoms.positions[1] = atoms.positions[0] + [0.925, 0.925, 0.925]  # a tetrahedral site, 1.60 Å away
    atoms.calc = Potential(model, extrapolation="ignore").as_ase_calculator(skin=2.0)
    atoms.get_forces()
    atoms.positions[1] = atoms.positions[0] + [0.6, 0.6, 0.6]  # 0.56 Å moved, under skin / 2: kept
    with pytest.raises(InputError, match="atoms 0 and 1"):
        atoms.get_forces()
    assert atoms.calc.neighbors.builds == 1


@pytest.mark.parametrize("skin", [-1.0, float("nan"), "1"])
def test_a_bad_skin_is_named(skin):
    with pytest.raises(InputError, match="skin"):
        VerletList(skin)

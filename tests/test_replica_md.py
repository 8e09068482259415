"""Replica MD: many replicas in one batch follow exactly the trajectories ASE's velocity Verlet gives
each alone; Langevin holds each replica at its own temperature; bad input and blown-up dynamics are
named."""

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
from mlexplore.descriptors import G2, G4, G9, SymmetryFunctions
from mlexplore.models import BPNN, Committee
from mlexplore.simulation import ReplicaMD
from mlexplore.training import Potential


def _model(committee=False):
    sf = SymmetryFunctions([G2(0.5, 2.5), G2(0.1, 0.0), G4(0.02, 2, -1), G9(0.03, 3, 1, 1.0)], cutoff=4.5,
                           cutoff_function="polynomial", elements=["Cu", "Au"])
    torch.manual_seed(1)
    model = Committee(sf, n_members=2, hidden=(8,)) if committee else BPNN(sf, hidden=(8,))
    return model.double()


def _cells():
    """Three replicas of two sizes and compositions, with 600 K velocities."""
    out = []
    for k, rep in enumerate(((2, 2, 2), (2, 2, 1), (2, 2, 2))):
        a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(rep)
        rng = np.random.default_rng(k)
        a.symbols = ["Cu" if x else "Au" for x in rng.random(len(a)) < 0.5]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            MaxwellBoltzmannDistribution(a, temperature_K=600, rng=rng)
        out.append(a)
    return out


@pytest.mark.parametrize("committee", [False, True])
def test_batched_velocity_verlet_follows_ase_on_each_replica(committee):
    model = _model(committee)
    pot = Potential(model, extrapolation="ignore", min_distance=0)
    cells = _cells()
    md = ReplicaMD(pot, cells, timestep_fs=2.0).run(25)
    assert md.energies_.shape == (25, 3)
    for start, end in zip(cells, md.to_atoms()):
        ref = start.copy()
        ref.calc = Potential(model, extrapolation="ignore", min_distance=0).as_ase_calculator()
        VelocityVerlet(ref, 2.0 * units.fs).run(25)
        np.testing.assert_allclose(end.positions, ref.positions, atol=1e-10)
        np.testing.assert_allclose(end.get_momenta(), ref.get_momenta(), atol=1e-10)
    total = md.energies_ + md.kinetic_  # NVE: conserved to the integrator's error
    assert np.abs(total - total[0]).max() < 2e-3 * len(cells[0])
    assert md.neighbors.builds < md.neighbors.calls


def test_langevin_holds_each_replica_at_its_temperature():
    """Equipartition holds whatever the potential: a radial model keeps the test fast. Relaxation
    time 1/γ = 20 fs = 10 steps; 100 steps after 50 of equilibration, 6 replicas of 16–32 atoms:
    the mean temperature's error is ~5 %, the tolerance 25 %."""
    sf = SymmetryFunctions([G2(0.5, 2.5), G2(0.1, 0.0)], cutoff=4.5, elements=["Cu", "Au"])
    torch.manual_seed(2)
    pot = Potential(BPNN(sf, hidden=(8,)).double(), extrapolation="ignore", min_distance=0)
    cells = [c for c in _cells() for _ in range(2)]
    targets = [300, 900] * 3
    md = ReplicaMD(pot, cells, timestep_fs=2.0, temperature_K=targets, friction=0.05, seed=3).run(150)
    mean = md.temperatures_[50:].mean(axis=0)
    for t, m in zip(targets, mean):
        assert m == pytest.approx(t, rel=0.25)
    assert mean[1::2].mean() > 2 * mean[0::2].mean()
    again = ReplicaMD(pot, cells, timestep_fs=2.0, temperature_K=targets, friction=0.05, seed=3).run(150)
    np.testing.assert_array_equal(again.energies_, md.energies_)  # seeded
    other = ReplicaMD(pot, cells, timestep_fs=2.0, temperature_K=targets, friction=0.05, seed=4).run(5)
    assert not np.allclose(other.energies_, md.energies_[:5])


def test_bad_input_and_blown_up_dynamics_are_named():
    pot = Potential(_model(), extrapolation="ignore", min_distance=0)
    with pytest.raises(InputError, match="temperature_K"):
        ReplicaMD(pot, _cells(), friction=0.02)
    with pytest.raises(InputError, match="temperature_K"):
        ReplicaMD(pot, _cells(), temperature_K=[300, 400], friction=0.02)  # 3 replicas
    with pytest.raises(InputError, match="timestep_fs"):
        ReplicaMD(pot, _cells(), timestep_fs=-1)
    with pytest.raises(InputError, match="replicas"):
        ReplicaMD(pot, [])
    md = ReplicaMD(pot, _cells())
    md._batch["positions"][40, 0] = float("nan")  # as a blown-up step leaves it
    with pytest.raises(InputError, match="structure 1.*non-finite"):
        md.run(1)

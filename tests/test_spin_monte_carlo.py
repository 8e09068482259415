"""Spin Monte Carlo: detailed balance against enumerated and integrated Boltzmann distributions, only
downhill at T = 0, batched replicas equal to each replica alone, the model's invariance under a
global spin rotation, a resumed run equal to an uninterrupted one, and bad input named."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from ase.build import bulk
from scipy.spatial.transform import Rotation

from mlexplore import InputError
from mlexplore.descriptors import G2, SpinGaussPair, SpinGaussSelf, SymmetryFunctions
from mlexplore.models import BPNN
from mlexplore.simulation import SpinMonteCarlo, equilibration_sweep, initial_spins, integrated_autocorrelation_time
from mlexplore.training import Potential

KB = 8.617333262e-5  # eV/K


def _potential(seed=0, scale=1.0):
    """A spin-aware BPNN (the thesis' kinds of spin terms: S·S self, S_i·S_j pairs) with random weights."""
    sf = SymmetryFunctions([G2(0.5, 2.5), G2(0.1, 0.0), SpinGaussSelf(0.05, 2, 4.0),
                            SpinGaussPair("dot", 0.05, 2.0), SpinGaussPair("dot", 0.02, -3.0)],
                           cutoff=3.5, elements=["Fe"])
    torch.manual_seed(seed)
    model = BPNN(sf, hidden=(8,)).double()
    with torch.no_grad():
        model.energy_scale.fill_(scale)
    return Potential(model, extrapolation="ignore")


def _cell(repeat=(2, 1, 1), seed=0):
    a = bulk("Fe", "bcc", a=2.83, cubic=True).repeat(repeat)
    a.rattle(0.05, seed=seed)
    return a


def _state_index(spins):
    """The collinear state of each replica as an integer (bit k: atom k points down)."""
    down = spins[:, :, 2] < 0
    return (down * (1 << np.arange(down.shape[1]))).sum(axis=1)


def test_flips_sample_the_enumerated_boltzmann_distribution():
    """4 collinear spins, 16 states: the frequencies of the states visited at the end of each sweep
    match exp(−E/kT)/Z within their statistical error."""
    pot = _potential(seed=3, scale=3.0)
    cell = _cell()
    mc = SpinMonteCarlo(pot, [cell] * 8, temperature_K=1.0, initial="FM", magnitude=2.2, move="flip",
                        collinear=True, seed=1)
    energies = []
    for state in range(16):
        s = initial_spins("FM", 4, 2.2)
        s[[k for k in range(4) if state >> k & 1], 2] *= -1
        mc._spins = torch.as_tensor(np.tile(s, (8, 1)))
        energies.append(float(mc.energy()[0]))
    energies = np.array(energies)
    spread = energies.max() - energies.min()
    assert spread > 1e-3  # the test means something
    T = spread / 2 / KB
    mc = SpinMonteCarlo(pot, [cell] * 8, temperature_K=T, initial="FM", magnitude=2.2, move="flip", collinear=True,
                        seed=1)
    counts = np.zeros(16)
    for _ in range(1200):
        mc.run(1)
        np.add.at(counts, _state_index(mc.spins), 1)
    p = np.exp(-(energies - energies.min()) / (KB * T))
    p /= p.sum()
    freq = counts / counts.sum()
    sigma = np.sqrt(p * (1 - p) / counts.sum() * 4)  # samples one sweep apart are correlated: 4× the variance
    assert np.all(np.abs(freq - p) < 5 * sigma + 1e-3), (freq, p)


@pytest.mark.parametrize("move", ["cone", "sphere"])
def test_direction_moves_sample_the_boltzmann_distribution_of_the_relative_angle(move):
    """2 spins of 2.2 μB (not ASE's 2.3 for bulk Fe): with directions uniform on the sphere the
    cosine c of their angle is uniform on [−1, 1] a priori, so it must be distributed as
    exp(−E(c)/kT) — E(c) integrated on a grid."""
    pot = _potential(seed=5, scale=3.0)
    cell = bulk("Fe", "bcc", a=2.83, cubic=True)
    probe = SpinMonteCarlo(pot, [cell], temperature_K=300, move=move, seed=0)
    grid = np.linspace(-1, 1, 201)
    e = []
    for c in grid:
        s = np.array([[0, 0, 2.2], [2.2 * math.sqrt(1 - c * c), 0, 2.2 * c]])
        probe._spins = torch.as_tensor(s)
        e.append(float(probe.energy()[0]))
    e = np.array(e)
    T = (e.max() - e.min()) / (2 * KB)
    mc = SpinMonteCarlo(pot, [cell] * 16, temperature_K=T, move=move, max_angle=1.2, initial="PM", magnitude=2.2,
                        seed=2)
    cos = []
    for _ in range(500):
        mc.run(1)
        s = mc.spins
        cos.append((s[:, 0] * s[:, 1]).sum(1) / (np.linalg.norm(s[:, 0], axis=1) * np.linalg.norm(s[:, 1], axis=1)))
    cos = np.concatenate(cos[20:])
    w = np.exp(-(e - e.min()) / (KB * T))
    edges = np.linspace(-1, 1, 6)
    expected = np.array([np.trapezoid(w[(grid >= a) & (grid <= b)], grid[(grid >= a) & (grid <= b)])
                         for a, b in zip(edges[:-1], edges[1:])])
    expected /= expected.sum()
    observed = np.histogram(cos, bins=edges)[0] / len(cos)
    assert expected.max() / expected.min() > 2  # the energy shapes the distribution
    np.testing.assert_allclose(observed, expected, atol=0.025)


def test_at_zero_temperature_the_energy_only_goes_down():
    mc = SpinMonteCarlo(_potential(), [_cell((2, 2, 2))] * 3, temperature_K=0.0, initial="PM", move="cone", seed=0)
    start = mc.energy()
    mc.run(6)
    e = np.vstack([start, mc.energies_])
    assert np.all(np.diff(e, axis=0) <= 1e-12)
    assert np.all(e[-1] < e[0])  # and it did move


def test_batched_replicas_equal_each_replica_alone():
    pot = _potential(seed=1)
    cells = [_cell((2, 2, 1), seed=k) for k in range(3)]
    temps, starts = [200.0, 800.0, 2000.0], ["FM", "PM", "AFM"]
    together = SpinMonteCarlo(pot, cells, temperature_K=temps, initial=starts, move="cone",
                              magnitude_step=0.1, seed=7).run(4)
    for r in range(3):
        alone = SpinMonteCarlo(pot, [cells[r]], temperature_K=temps[r], initial=starts[r], move="cone",
                               magnitude_step=0.1, seed=7 + r).run(4)
        np.testing.assert_allclose(alone.spins[0], together.spins[r], atol=1e-10)
        np.testing.assert_allclose(alone.energies_[:, 0], together.energies_[:, r], atol=1e-10)


def test_a_global_spin_rotation_leaves_the_energy_unchanged():
    mc = SpinMonteCarlo(_potential(), [_cell((2, 2, 2))], initial="PM", seed=4)
    e0 = mc.energy()
    spins = mc.spins[0]
    for seed in range(3):
        R = Rotation.random(random_state=seed).as_matrix()
        mc._spins = torch.as_tensor(spins @ R.T)
        np.testing.assert_allclose(mc.energy(), e0, rtol=1e-12, atol=1e-12)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    pot = _potential()
    kw = dict(temperature_K=[500.0, 1500.0], initial="PM", move="cone", seed=2)
    straight = SpinMonteCarlo(pot, [_cell()] * 2, **kw).run(6)
    first = SpinMonteCarlo(pot, [_cell()] * 2, **kw).run(3)
    first.save(tmp_path / "mc.pt")
    resumed = SpinMonteCarlo(pot, [_cell()] * 2, **kw).load(tmp_path / "mc.pt").run(3)
    np.testing.assert_array_equal(resumed.spins, straight.spins)
    np.testing.assert_array_equal(resumed.net_spin_ratio_, straight.net_spin_ratio_)
    other = SpinMonteCarlo(pot, [_cell()] * 2, temperature_K=[300.0, 1500.0], initial="PM", seed=2)
    with pytest.raises(InputError, match="other settings"):
        other.load(tmp_path / "mc.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a state")
    with pytest.raises(InputError, match="not a spin Monte Carlo state"):
        other.load(tmp_path / "junk.pt")


def test_measures_of_the_initial_states_and_statistics():
    cell = bulk("Fe", "bcc", a=2.83, cubic=True).repeat(3)
    pot = _potential()
    from mlexplore.analysis.magnetism import net_spin_ratio, polar_angle_variance

    mc = SpinMonteCarlo(pot, [cell] * 3, temperature_K=1e-3, initial=["FM", "AFM", "PM"], move="cone",
                        max_angle=1e-4, seed=0).run(2)
    ratio, var = mc.net_spin_ratio_[-1], mc.polar_angle_variance_[-1]
    assert ratio[0] == pytest.approx(1, abs=1e-3) and var[0] == pytest.approx(0, abs=1e-3)
    assert ratio[1] == pytest.approx(0, abs=1e-3)
    assert ratio[2] < 0.5 and var[2] == pytest.approx(math.pi ** 2 / 4 - 2, abs=0.25)
    hot = SpinMonteCarlo(pot, [cell] * 3, temperature_K=5000, initial=["FM", "AFM", "PM"], seed=1).run(2)
    for r, spins in enumerate(hot.spins):  # the batched measures equal the analysis layer's, replica by replica
        assert hot.net_spin_ratio_[-1, r] == pytest.approx(net_spin_ratio(spins), abs=1e-12)
        assert hot.polar_angle_variance_[-1, r] == pytest.approx(polar_angle_variance(spins), abs=1e-9)
    stats = mc.statistics(burn_in=1)
    assert set(stats) == {"burn_in", "energy", "net_spin_ratio", "polar_angle_variance", "acceptance"}
    with pytest.raises(InputError, match="burn_in"):
        mc.statistics(burn_in=5)
    rng = np.random.default_rng(0)
    ar = np.zeros(20000)
    for t in range(1, len(ar)):  # AR(1) with φ = 0.8: τ = (1 + φ) / (2 (1 − φ)) = 4.5
        ar[t] = 0.8 * ar[t - 1] + rng.normal()
    assert integrated_autocorrelation_time(ar) == pytest.approx(4.5, rel=0.2)
    drift = np.concatenate([np.linspace(10, 0, 300), rng.normal(size=1700)])  # relaxes, then fluctuates
    assert 200 <= equilibration_sweep(drift) <= 500


@pytest.mark.parametrize("kwargs, field", [
    (dict(move="walk"), "move"), (dict(move="cone", collinear=True), "move"), (dict(max_angle=4.0), "max_angle"),
    (dict(temperature_K=[300, 400]), "temperature_K"), (dict(temperature_K=-5), "temperature_K"),
    (dict(initial="ferro"), "initial"), (dict(magnitude_step=-0.1), "magnitude_step"),
])
def test_bad_settings_are_named(kwargs, field):
    with pytest.raises(InputError, match=field):
        SpinMonteCarlo(_potential(), [_cell()], **kwargs)


def test_a_potential_without_spin_terms_is_refused():
    sf = SymmetryFunctions([G2(0.5, 2.5)], cutoff=3.5, elements=["Fe"])
    with pytest.raises(InputError, match="no spin terms"):
        SpinMonteCarlo(Potential(BPNN(sf, hidden=(4,))), [_cell()])
    with pytest.raises(InputError, match="same number of atoms"):
        SpinMonteCarlo(_potential(), [_cell(), _cell((2, 2, 1))])


def test_afm_initial_state_is_the_b2_order():
    cell = bulk("Fe", "bcc", a=2.83, cubic=True).repeat(2)
    s = initial_spins("AFM", len(cell), 2.0, cell.positions, np.asarray(cell.cell))
    assert abs(s[:, 2].sum()) < 1e-12
    # every nearest neighbour (√3/2 a) is antiparallel
    d = cell.get_all_distances(mic=True)
    near = np.isclose(d, 2.83 * math.sqrt(3) / 2, atol=1e-6)
    i, j = np.nonzero(near)
    assert len(i) and np.all(s[i, 2] * s[j, 2] < 0)
    assert list(itertools.islice(s[:, 2], 2)) == [2.0, -2.0]


def test_a_local_move_changes_the_energy_by_what_a_full_evaluation_says():
    """A move recomputes only the moved atom and its neighbours: on 54-atom cells (R_c 3.5 Å: 14
    neighbours each) the change equals the difference of two full evaluations, replica by replica."""
    mc = SpinMonteCarlo(_potential(seed=2), [_cell((3, 3, 3), seed=k) for k in range(3)], initial="PM", seed=0)
    assert mc.local_moves
    assert not SpinMonteCarlo(_potential(), [_cell((1, 1, 1))]).local_moves  # 2 atoms: every move touches both
    rng = np.random.default_rng(0)
    for _ in range(5):
        rows = torch.as_tensor(rng.integers(0, 54, 3) + 54 * np.arange(3))
        trial = mc._spins.index_copy(0, rows, -mc._spins[rows] + 0.3)
        with torch.no_grad():
            delta, atoms, _ = mc._local_change(trial, rows)
            full = mc._energies(trial)[0] - mc._energies(mc._spins)[0]
        np.testing.assert_allclose(delta, full, rtol=1e-10, atol=1e-10)
        assert 3 < len(atoms) < 3 * 54  # neighbours included, the rest left alone


def test_spins_the_model_never_saw_are_flagged_once_and_counted():
    """A model whose domain holds only ferromagnetic spins: PM sweeps warn once and count every sweep."""
    import warnings as _w

    from mlexplore.training import ExtrapolationWarning

    pot = _potential()
    cell = _cell((2, 2, 2))
    fm = SpinMonteCarlo(pot, [cell], initial="FM", seed=0)
    features = torch.cat([fm._geometric, pot.model.descriptor.spin_features(
        fm._batch["positions"], fm._batch["cells"], fm._batch["n_atoms"], fm._spins, fm._nb)], dim=1)
    pot.model.domain.fit(features, pot.model.element_index(fm._batch["numbers"]))
    pot.extrapolation = "warn"
    mc = SpinMonteCarlo(pot, [cell] * 2, temperature_K=3000, initial="PM", move="sphere", seed=0)
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        mc.run(3)
    assert sum(issubclass(c.category, ExtrapolationWarning) for c in caught) == 1
    assert mc.extrapolation.calls == 3 and mc.extrapolation.calls_extrapolating == 3
    assert "spin Monte Carlo sweep 1" in str(next(c.message for c in caught if issubclass(c.category, ExtrapolationWarning)))


def test_collinear_pm_starts_up_or_down():
    mc = SpinMonteCarlo(_potential(), [_cell((2, 2, 2))], initial="PM", move="flip", collinear=True, magnitude=2.0)
    z = mc.spins[0][:, 2]
    assert set(np.round(z, 9)) == {-2.0, 2.0} and np.abs(mc.spins[0][:, :2]).max() == 0

"""Non-collinear iron: the thesis' spin-state sampling, the constrained-direction DFT settings and
records (a stand-in calculator; GPAW itself in a slow test), and the shipped set."""

import importlib.util
import json

import numpy as np
import pytest
from dft_stand_in import fake_noncollinear

from mlexplore import InputError
from mlexplore.datasets.spin_sampling import spin_directions
from mlexplore.dft import DFTSettings, label, read_records
from mlexplore.dft.configs import SHIPPED_SETTINGS, fe_noncollinear_configurations, shipped_plan
from mlexplore.dft.export import direction_deviation, export_dataset
from mlexplore.io import read_extxyz

HAVE_GPAW = importlib.util.find_spec("gpaw") is not None
NC = DFTSettings(xc="LDA", ecut=300.0, kpt_density=1.5, hirshfeld=False, noncollinear=True, direction_penalty=0.8)


def test_pm_directions_are_uniform_on_the_sphere():
    u = spin_directions("PM", 200_000, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, atol=1e-12)
    # uniform on the sphere: every component has mean 0 and variance 1/3, and cos θ is U[-1, 1]
    np.testing.assert_allclose(u.mean(axis=0), 0.0, atol=5e-3)
    np.testing.assert_allclose(u.var(axis=0), 1 / 3, atol=5e-3)
    hist, _ = np.histogram(u[:, 2], bins=10, range=(-1, 1))
    np.testing.assert_allclose(hist / len(u), 0.1, atol=3e-3)


@pytest.mark.parametrize("sigma", [0.015, 0.05, 0.1, 0.2])
def test_perturbed_fm_tilts_grow_with_sigma(sigma):
    u = spin_directions("perturbed-FM", 100_000, np.random.default_rng(1), sigma)
    # 1 - cos θ = |N(0, σ)|: mean σ √(2/π)
    np.testing.assert_allclose((1 - u[:, 2]).mean(), sigma * np.sqrt(2 / np.pi), rtol=0.02)
    assert u[:, 2].min() > 1 - 6 * sigma
    # the azimuth is uniform: no preferred direction in the xy plane
    np.testing.assert_allclose(u[:, :2].mean(axis=0), 0.0, atol=3 * np.sqrt(2 * sigma) / np.sqrt(len(u)) * 3)


def test_spin_states_are_checked():
    np.testing.assert_array_equal(spin_directions("FM", 3), [[0, 0, 1.0]] * 3)
    np.testing.assert_array_equal(spin_directions("perturbed-FM", 2, sigma=0.0), [[0, 0, 1.0]] * 2)
    with pytest.raises(InputError, match="state"):
        spin_directions("canted", 3)
    with pytest.raises(InputError, match="sigma"):
        spin_directions("perturbed-FM", 3, sigma=-0.1)


def test_noncollinear_settings_are_checked_and_collinear_keys_unchanged():
    with pytest.raises(InputError, match="LDA"):
        DFTSettings(noncollinear=True, hirshfeld=False)  # PBE
    with pytest.raises(InputError, match="Hirshfeld"):
        DFTSettings(xc="LDA", noncollinear=True)
    with pytest.raises(InputError, match="noncollinear=True"):
        DFTSettings(direction_penalty=0.8)
    with pytest.raises(InputError, match="positive"):
        DFTSettings(xc="LDA", hirshfeld=False, noncollinear=True, direction_penalty=0.0)
    # a collinear run's settings (and so every record key made before these fields existed) are as before
    assert "noncollinear" not in DFTSettings().to_dict() and "direction_penalty" not in DFTSettings().to_dict()
    assert DFTSettings.from_dict(NC.to_dict()) == NC
    # a collinear run refuses 3-vector seeds instead of dropping their directions
    atoms = fe_noncollinear_configurations(n_bcc2=1, n_bcc4=0).to_atoms()[2]
    with pytest.raises(InputError, match="non-collinear"):
        DFTSettings().initial_magmoms(atoms)
    # scalar seeds become +z vectors in a non-collinear run
    from ase.build import bulk

    fe = bulk("Fe", "bcc", a=2.83, cubic=True)
    np.testing.assert_array_equal(NC.initial_magmoms(fe), np.c_[np.zeros((2, 2)), fe.get_initial_magnetic_moments()])


def test_shipped_collinear_plans_still_match_their_records():
    """Adding the non-collinear fields must not orphan a single computed collinear record."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "data" / "dft"
    for name in ("fe_spin", "fept"):
        _, _, keys = shipped_plan(name)
        have = {json.loads(line)["key"] for line in open(root / f"{name}.jsonl")}
        assert set(keys) <= have, name


def test_noncollinear_plan_states_cells_and_kpoints():
    configs = fe_noncollinear_configurations()
    assert len(configs) == 405
    states = [t[2] for t in configs.tags]
    assert {s: states.count(s) for s in set(states)} == {"FM": 45, "perturbed-FM": 210, "PM": 75, "AFM-B2": 60,
                                                       "AFM-layer": 15}
    seeds = configs.atom_labels["initial_magmoms"]
    assert seeds.shape == (configs.n_atoms.sum(), 3)
    settings = SHIPPED_SETTINGS["fe_noncollinear"]
    kpts = {tuple(settings.kpts_for(a)) for a in configs.to_atoms()}
    assert kpts == {(4, 4, 4), (4, 4, 2)}
    # the 2-atom geometries first (7 states each), then the 4-atom ones (6 each)
    assert [t[1] for t in configs.tags] == ["Fe2"] * 315 + ["Fe4"] * 90
    assert [t[2] for t in configs.tags[:7]] == ["FM"] + ["perturbed-FM"] * 4 + ["PM", "AFM-B2"]
    # the AFM seeds are collinear and antiparallel between nearest neighbours; PM seeds point anywhere
    per = configs.per_structure("initial_magmoms")
    afm = per[states.index("AFM-B2")]
    np.testing.assert_allclose(afm[0], -afm[1])
    pm = np.concatenate([p for p, s in zip(per, states) if s == "PM"])
    assert (pm[:, 2] < 0).mean() > 0.35
    # deterministic for a seed: the record keys are the resume points
    assert shipped_plan("fe_noncollinear")[2] == shipped_plan("fe_noncollinear")[2]


def test_noncollinear_records_export_and_load(tmp_path):
    configs = fe_noncollinear_configurations(n_bcc2=1, n_bcc4=1)
    out = tmp_path / "nc.jsonl"
    ds = label(configs, out, settings=NC, calculator=fake_noncollinear, progress=False)
    assert len(ds) == len(configs) and "stress" not in ds
    seeds = configs.atom_labels["initial_magmoms"]
    np.testing.assert_allclose(ds.atom_labels["magmoms"], 0.9 * seeds)
    np.testing.assert_allclose(ds.atom_labels["initial_magmoms"], seeds)
    r = read_records(out)[0]
    assert r["settings"]["noncollinear"] is True and r["settings"]["direction_penalty"] == 0.8
    path = export_dataset("fe_noncollinear", out, tmp_path / "nc.extxyz.gz")
    back = read_extxyz(path, check=False)
    np.testing.assert_allclose(back.atom_labels["magmoms"], ds.atom_labels["magmoms"])
    np.testing.assert_allclose(back.label("direction_deviation"), 0.0, atol=1e-7)
    assert [t[2] for t in back.tags] == [t[2] for t in configs.tags]
    # the FM state has the lowest stand-in energy of its geometry (−J Σ u_i·u_j)
    fe2 = back.label("energy")[:7]
    assert int(np.argmin(fe2 - (back.positions[:14] ** 2).reshape(7, 2, 3).sum(axis=(1, 2)))) == 0


def test_direction_deviation():
    a = np.array([[0, 0, 2.0], [1, 0, 0], [0, 0, 1]])
    b = np.array([[0, 0, 1.5], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(direction_deviation(a, b), [0, np.pi / 2, np.pi / 2])


@pytest.mark.skipif(not HAVE_GPAW, reason="needs GPAW (scripts/install_gpaw.sh)")
def test_gpaw_holds_canted_moments(tmp_path):
    """GPAW itself, smallest honest case (Fe2, 2×2×2 k, 200 eV; ~20 s): with the direction
    penalty the reached moments stay within 0.1 rad of seeds 0.6 rad apart, and the canted state
    costs energy against FM at the same geometry."""
    from ase.build import bulk

    settings = DFTSettings(xc="LDA", ecut=200.0, kpts=(2, 2, 2), hirshfeld=False, maxiter=60,
                           noncollinear=True, direction_penalty=0.8)
    fm = bulk("Fe", "bcc", a=2.83, cubic=True)
    fm.set_initial_magnetic_moments(None)
    fm.set_initial_magnetic_moments([[0, 0, 2.2], [0, 0, 2.2]])
    canted = fm.copy()
    canted.set_initial_magnetic_moments([[0, 0, 2.2], [2.2 * np.sin(0.6), 0, 2.2 * np.cos(0.6)]])
    ds = label([fm, canted], tmp_path / "nc.jsonl", settings=settings, progress=False)
    m = ds.per_structure("magmoms")
    seeds = ds.per_structure("initial_magmoms")
    assert direction_deviation(seeds[1], m[1]).max() < 0.1
    assert np.linalg.norm(m[1], axis=1).min() > 1.0
    e = ds.label("energy")
    assert e[1] > e[0]


def test_two_sublattice_exchange_recovers_a_heisenberg_coupling(tmp_path):
    """The stand-in's energy is −0.1 eV u_A·u_B per Fe2 cell: J = 0.05 eV/atom exactly, R² = 1."""
    from ase.units import kB

    from mlexplore.dft.iron_physics import two_sublattice_exchange

    configs = fe_noncollinear_configurations(n_bcc2=3, n_bcc4=1)
    ds = label(configs, tmp_path / "nc.jsonl", settings=NC, calculator=fake_noncollinear, progress=False)
    r = two_sublattice_exchange(ds)
    assert r["n"] == 18  # 3 geometries × 6 states beside FM; the Fe4 cells are not used
    assert r["J"] == pytest.approx(0.05, rel=1e-9) and r["r2"] == pytest.approx(1.0)
    assert r["tc_mean_field"] == pytest.approx(2 * 0.05 / 3 / kB)
    # a state whose moments collapsed (non-magnetic) has no angle: left out, J unchanged
    collapsed = ds.copy()
    i = next(k for k, t in enumerate(ds.tags) if t[2] == "AFM-B2")
    collapsed.atom_labels["magmoms"][collapsed.atom_slice(i)] *= 1e-4
    r_collapsed = two_sublattice_exchange(collapsed)
    assert r_collapsed["n"] == 17 and r_collapsed["J"] == pytest.approx(0.05, rel=1e-9)
    small = two_sublattice_exchange(ds, max_angle=np.pi / 3)
    assert 0 < small["n"] < 18 and small["one_minus_cos"].max() <= 0.5 + 1e-9
    assert small["J"] == pytest.approx(0.05, rel=1e-9)
    # collinear data cannot say: named, not a number from scalar moments
    from ase.build import bulk
    from dft_stand_in import fake

    collinear = label([bulk("Fe", "bcc", a=2.83, cubic=True)], tmp_path / "c.jsonl",
                      settings=DFTSettings(hirshfeld=False), calculator=fake, progress=False)
    with pytest.raises(InputError, match="3-vector"):
        two_sublattice_exchange(collinear)

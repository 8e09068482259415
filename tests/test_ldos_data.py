"""The aluminium-at-933 K LDOS data (mlexplore.dft.ldos_data): the snapshot plan, the settings,
resumable labelling (with a stand-in for GPAW), coarsening, the shipped small set, and one tiny
real GPAW run when GPAW is installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlexplore.analysis.ldos import fermi_dirac, gaussian_dos
from mlexplore.dft import LDOSResult, append_record, read_records
from mlexplore.dft.ldos_data import (AL_LATTICE_CONSTANT_933K, KT_933K, RECORDS_NAME, LDOSSettings, LDOSSnapshot,
                                     aluminium_ldos_card, aluminium_snapshots, broaden, coarsen, label_ldos, ldos_checks,
                                     load_aluminium_ldos, load_ldos_set, load_plan, save_plan, write_small_set)
from mlexplore.errors import InputError

HAVE_GPAW = importlib.util.find_spec("gpaw") is not None

#: short MD for the tests (the plan's defaults: 2 ps equilibration, 1 ps between snapshots)
FAST = dict(equilibration_ps=0.2, interval_ps=0.2)


# ----------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------

def test_plan_is_deterministic_for_a_seed_and_keeps_its_prefix():
    a = aluminium_snapshots(n_train=2, n_test=1, n_large=0, seed=3, **FAST)
    b = aluminium_snapshots(n_train=2, n_test=1, n_large=0, seed=3, **FAST)
    assert [s.info["tag"] for s in a] == ["train", "test", "train"]
    for x, y in zip(a, b):
        assert np.array_equal(x.positions, y.positions) and np.array_equal(x.cell.array, y.cell.array)
    other = aluminium_snapshots(n_train=2, n_test=1, n_large=0, seed=4, **FAST)
    assert not np.allclose(other[0].positions, a[0].positions)
    # asking for fewer (or more) of a tag does not change the ones both plans hold, nor the other tags
    fewer = aluminium_snapshots(n_train=1, n_test=1, n_large=0, seed=3, **FAST)
    assert np.array_equal(fewer[0].positions, a[0].positions) and np.array_equal(fewer[1].positions, a[1].positions)
    # the test trajectory is not the training one
    assert not np.allclose(a[1].positions, a[0].positions)


def test_snapshots_are_at_933K_on_average_and_do_not_overlap():
    snaps = aluminium_snapshots(n_train=5, n_test=5, n_large=1, seed=0, equilibration_ps=0.5, interval_ps=0.5)
    small = [s for s in snaps if s.info["tag"] != "large"]
    large = [s for s in snaps if s.info["tag"] == "large"]
    assert len(small) == 10 and all(len(s) == 32 for s in small)
    assert len(large) == 1 and len(large[0]) == 108
    assert np.allclose(small[0].cell.array, np.eye(3) * 2 * AL_LATTICE_CONSTANT_933K)
    assert np.allclose(large[0].cell.array, np.eye(3) * 3 * AL_LATTICE_CONSTANT_933K)
    # kinetic temperature averaged over the sampled MD (3N − 3 degrees of freedom). The mean over one
    # 0.5 ps interval of a 32-atom cell scatters by ~50 K (measured: 1 ps means 830–1006 K, 10-ps
    # averages 921, 932, 933 K for seeds 0, 1, 2): 11 intervals hold the average to ~15 K
    mean_t = np.mean([s.info["md_mean_temperature_K"] for s in snaps])
    assert abs(mean_t / 933.0 - 1) < 0.05, mean_t
    for s in snaps:
        d = s.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        assert d.min() > 2.0  # Å; nearest neighbours of the perfect crystal at 2.92 Å
        # hot but crystalline: each atom sits nearest a lattice site of its own (measured: rms
        # displacement 0.29–0.45 Å, 3D, for EMT at 933 K; largest single displacement ≈ 0.9 Å)
        a = AL_LATTICE_CONSTANT_933K
        sites = bulk("Al", "fcc", a=a, cubic=True).repeat(round(s.cell[0, 0] / a)).positions
        d = s.positions[:, None, :] - sites[None, :, :]
        d -= s.cell[0, 0] * np.round(d / s.cell[0, 0])
        dist = np.linalg.norm(d, axis=2)
        assert len(set(dist.argmin(1))) == len(s)
        u = d[np.arange(len(s)), dist.argmin(1)]
        u -= u.mean(0)
        assert 0.15 < np.sqrt((u ** 2).sum(1).mean()) < 0.6
        assert s.pbc.all() and s.calc is None


@pytest.mark.parametrize("kwargs, field", [
    (dict(n_train=-1), "n_train"), (dict(n_train=0, n_test=0, n_large=0), "n_train"), (dict(n_test=1.5), "n_test"),
    (dict(temperature_K=0), "temperature_K"), (dict(lattice_constant=-4.0), "lattice_constant"),
    (dict(interval_ps=0.0001), "interval_ps"), (dict(seed=-2), "seed"), (dict(large_repeat=0), "large_repeat"),
])
def test_plan_refuses_bad_input(kwargs, field):
    with pytest.raises(InputError) as info:
        aluminium_snapshots(**kwargs)
    assert info.value.field == field


def test_a_frozen_plan_reads_back_exactly(tmp_path):
    snaps = aluminium_snapshots(n_train=1, n_test=1, n_large=0, **FAST)
    back = load_plan(save_plan(snaps, tmp_path / "plan.json"))
    settings = LDOSSettings()
    assert [settings.key(a) for a in back] == [settings.key(a) for a in snaps]
    assert back[1].info["tag"] == "test"
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError):
        load_plan(tmp_path / "bad.json")


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------

def test_settings_give_one_fixed_energy_grid_and_the_same_kpoints_for_both_sizes():
    s = LDOSSettings()
    e = s.energies
    assert e[0] == pytest.approx(-5.5) and e[-1] == pytest.approx(8.0) and e.size == 271
    assert np.allclose(np.diff(e), 0.05)
    assert s.kT == pytest.approx(0.0804, abs=1e-4) == KT_933K
    a = AL_LATTICE_CONSTANT_933K
    assert s.kpts_for(bulk("Al", "fcc", a=a, cubic=True).repeat(2)) == (3, 3, 3)
    assert s.kpts_for(bulk("Al", "fcc", a=a, cubic=True).repeat(3)) == (2, 2, 2)
    assert LDOSSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_keys_follow_geometry_and_settings():
    atoms = bulk("Al", "fcc", a=4.124, cubic=True)
    s = LDOSSettings()
    assert s.key(atoms) == s.key(atoms.copy())
    moved = atoms.copy()
    moved.positions[0, 0] += 1e-6
    assert s.key(moved) != s.key(atoms)
    assert LDOSSettings(sigma=0.2, energy_spacing=0.1).key(atoms) != s.key(atoms)


@pytest.mark.parametrize("kwargs, field", [
    (dict(ecut=0), "ecut"), (dict(sigma=-0.1), "sigma"), (dict(energy_max=8.01), "energy_max"),
    (dict(energy_min=9.0), "energy_max"), (dict(nbands="lots"), "nbands"), (dict(kpts=(2, 2)), "kpts"),
    (dict(kpts=(2, 0, 2)), "kpts"), (dict(h=0), "h"), (dict(energy_min=float("nan")), "energy_min"),
    (dict(maxiter=0), "maxiter"),
])
def test_settings_refuse_bad_values(kwargs, field):
    with pytest.raises(InputError) as info:
        LDOSSettings(**kwargs)
    assert info.value.field == field


# ----------------------------------------------------------------------------------------------
# A stand-in for GPAW: a synthetic LDOS with known references
# ----------------------------------------------------------------------------------------------

GRID = (6, 6, 6)


def synthetic_result(atoms: Atoms, settings: LDOSSettings, n_states: int = 24, seed: int = 0,
                     band_limited: bool = False) -> LDOSResult:
    """LDOS = Σ_i w_i φ_i(r) g(E − ε_i) with φ_i ≥ 0 normalised on the grid; references exact.
    ``band_limited``: each φ_i holds only the lowest Fourier component (one period per cell
    length), so every uniform sub-grid of ≥ 3 points per axis integrates it exactly."""
    rng = np.random.default_rng(seed)
    energies, sigma, kT = settings.energies, settings.sigma, settings.kT
    eps = np.sort(rng.uniform(energies[0] + 1.0, energies[-1] - 1.0, n_states))
    w = np.full(n_states, 2.0)
    n_grid = int(np.prod(GRID))
    volume = abs(np.linalg.det(atoms.cell.array))
    voxel = volume / n_grid
    if band_limited:
        x = np.stack(np.meshgrid(*[np.arange(n) / n for n in GRID], indexing="ij"), -1)
        phase = rng.uniform(0, 2 * np.pi, (n_states, 3))
        amp = rng.uniform(0, 0.3, (n_states, 3))
        phi = 1 + np.einsum("sc,xyzsc->sxyz", amp, np.cos(2 * np.pi * x[..., None, :] + phase))
    else:
        phi = rng.uniform(0.1, 1.0, (n_states,) + GRID)
    phi = phi / (phi.reshape(n_states, -1).sum(1)[:, None, None, None] * voxel)
    g = np.exp(-0.5 * ((energies[None, :] - eps[:, None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    ldos = np.einsum("i,ixyz,ie->xyze", w, phi, g).astype(np.float32)
    e_fermi = float(eps[n_states // 2] + 0.01)
    f = fermi_dirac(eps, e_fermi, kT)
    return LDOSResult(
        ldos=ldos, energies=energies, sigma=sigma, kT=kT, cell=atoms.cell.array.copy(),
        positions=atoms.positions.copy(), numbers=atoms.numbers.copy(), spin=None, augmented=True,
        e_fermi=e_fermi, n_electrons=float((w * f).sum()), band_energy=float((w * f * eps).sum()),
        energy=-float(len(atoms)), free_energy=-float(len(atoms)) - 0.01,
        dos_reference=gaussian_dos(eps, w, energies, sigma), density_reference=np.einsum("i,ixyz->xyz", w * f, phi),
        eigenvalues=eps[None, :], state_weights=np.array([2.0]), occupations=f[None, :], seconds=0.01)


class StandIn:
    """``compute`` for label_ldos: counts its calls, fails on snapshots with info['fail']."""

    def __init__(self):
        self.calls = []

    def __call__(self, atoms, settings, txt):
        self.calls.append(atoms.info.get("snapshot"))
        if atoms.info.get("fail"):
            raise RuntimeError("SCF did not converge in 3 iterations")
        return synthetic_result(atoms, settings, seed=int(atoms.info.get("snapshot", 0)))


def _cells(n: int, fail: tuple = ()) -> list[Atoms]:
    out = []
    for i in range(n):
        a = bulk("Al", "fcc", a=4.124, cubic=True)
        a.positions += np.random.default_rng(i).normal(0, 0.05, a.positions.shape)
        a.info.update(tag="train" if i % 2 == 0 else "test", snapshot=i, fail=i in fail)
        out.append(a)
    return out


def test_labelling_is_resumable_and_records_failures(tmp_path):
    cells = _cells(5, fail=(3,))
    stand_in = StandIn()
    with pytest.warns(UserWarning, match="failed"):
        done = label_ldos(cells, tmp_path, compute=stand_in, progress=False)
    assert stand_in.calls == [0, 1, 2, 3, 4]
    assert [r["index"] for r in done] == [0, 1, 2, 4]
    records = read_records(tmp_path / RECORDS_NAME)
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 1 and "did not converge" in failed[0]["error"] and failed[0]["index"] == 3
    ok = done[0]
    assert ok["tag"] == "train" and ok["file"] == f"{ok['key']}.npz" and (tmp_path / ok["file"]).exists()
    assert ok["grid_shape"] == list(GRID) and ok["n_energies"] == 271
    assert set(ok["references"]) == {"e_fermi", "n_electrons", "band_energy", "energy", "free_energy"}
    assert ok["checks"]["dos_max_deviation"] < 1e-5
    assert ok["seconds"] >= ok["compute_seconds"] >= 0 and ok["ldos_seconds"] == pytest.approx(0.01)
    back = LDOSResult.load(tmp_path / ok["file"])
    assert back.ldos.dtype == np.float32 and back.n_electrons == pytest.approx(ok["references"]["n_electrons"])

    # a second run computes nothing: done snapshots skipped, the failure not retried
    again = StandIn()
    assert [r["key"] for r in label_ldos(cells, tmp_path, compute=again, progress=False)] == [r["key"] for r in done]
    assert again.calls == []
    # a lost file is computed again; a failure only when asked
    (tmp_path / done[1]["file"]).unlink()
    cells[3].info["fail"] = False
    third = StandIn()
    result = label_ldos(cells, tmp_path, compute=third, progress=False, retry_failed=True)
    assert sorted(third.calls) == [1, 3] and len(result) == 5
    assert len(load_ldos_set(tmp_path)) == 5 and len(load_ldos_set(tmp_path, tag="test")) == 2


def test_a_reverse_process_shares_the_work(tmp_path):
    """Another process's record appended meanwhile is read before each snapshot and skipped."""
    cells = _cells(4)
    settings = LDOSSettings()
    other = StandIn()
    keys = [settings.key(a) for a in cells]

    def forward_process_finishes_snapshot_0(atoms, s, txt):
        if not other.calls:  # the first snapshot this process takes: meanwhile the other one finishes 0
            result = synthetic_result(cells[0], s)
            result.save(tmp_path / f"{keys[0]}.npz")
            append_record(tmp_path / RECORDS_NAME, {"key": keys[0], "status": "ok", "file": f"{keys[0]}.npz",
                                                    "index": 0, "tag": "train"})
        return other(atoms, s, txt)

    done = label_ldos(cells, tmp_path, compute=forward_process_finishes_snapshot_0, progress=False, reverse=True)
    assert other.calls == [3, 2, 1]  # from the last one down, never 0
    assert [r["index"] for r in done] == [0, 1, 2, 3]


def test_labelling_refuses_bad_input(tmp_path):
    with pytest.raises(InputError) as info:
        label_ldos([bulk("Al", "fcc", a=4.124, cubic=True), "not atoms"], tmp_path, compute=StandIn(), progress=False)
    assert info.value.structure == 1
    slab = bulk("Al", "fcc", a=4.124, cubic=True)
    slab.pbc = (True, True, False)
    with pytest.raises(InputError, match="periodic"):
        label_ldos(slab, tmp_path, compute=StandIn(), progress=False)
    with pytest.raises(InputError) as info:
        label_ldos(_cells(1), tmp_path, settings={"ecut": 300}, compute=StandIn(), progress=False)
    assert info.value.field == "settings"


# ----------------------------------------------------------------------------------------------
# Coarsening
# ----------------------------------------------------------------------------------------------

def test_coarsen_keeps_the_grid_relationships_and_the_electron_count():
    atoms = _cells(1)[0]
    settings = LDOSSettings()
    fine = synthetic_result(atoms, settings, band_limited=True)
    coarse = coarsen(fine, 2)
    assert coarse.grid_shape == (3, 3, 3)
    assert coarse.voxel_volume == pytest.approx(8 * fine.voxel_volume)
    assert np.array_equal(coarse.ldos, fine.ldos[::2, ::2, ::2])
    assert np.array_equal(coarse.density_reference, fine.density_reference[::2, ::2, ::2])
    assert np.array_equal(coarse.energies, fine.energies)
    assert coarse.ldos.dtype == np.float32
    for name in ("e_fermi", "n_electrons", "band_energy", "energy", "free_energy", "sigma", "kT"):
        assert getattr(coarse, name) == getattr(fine, name)
    # a band-limited field: the coarse voxel sum is the exact integral
    checks = ldos_checks(coarse)
    assert checks["ldos_n_electrons"] == pytest.approx(fine.n_electrons, rel=1e-4)
    assert checks["dos_max_deviation"] < 1e-5
    # every second energy: the reference DOS re-evaluated on the coarse energies from the eigenvalues
    both = coarsen(fine, 3, energy_factor=2)
    assert both.grid_shape == (2, 2, 2) and np.array_equal(both.energies, fine.energies[::2])
    assert np.allclose(both.dos_reference, fine.dos_reference[::2], rtol=1e-12)
    assert both.ldos.shape == (2, 2, 2, fine.energies[::2].size)
    assert coarsen(fine, 1).ldos.shape == fine.ldos.shape


def test_coarsen_refuses_strides_that_do_not_fit():
    fine = synthetic_result(_cells(1)[0], LDOSSettings())
    with pytest.raises(InputError) as info:
        coarsen(fine, 4)  # 6 points per axis
    assert info.value.field == "factor"
    with pytest.raises(InputError) as info:
        coarsen(fine, 0)
    assert info.value.field == "factor"
    with pytest.raises(InputError) as info:
        coarsen(fine, 2, energy_factor=200)
    assert info.value.field == "energy_factor"
    with pytest.raises(InputError) as info:
        coarsen(fine.ldos, 2)
    assert info.value.field == "result"


def test_a_small_set_written_and_read_back(tmp_path):
    cells = _cells(3)
    label_ldos(cells, tmp_path / "full", compute=StandIn(), progress=False)
    snaps = load_ldos_set(tmp_path / "full")
    path = write_small_set(snaps, tmp_path / "small", factor=2, card={"name": "test set"})
    card = aluminium_ldos_card(path)
    assert card["card"]["name"] == "test set" and card["card"]["counts"] == {"train": 2, "test": 1, "large": 0}
    back = load_aluminium_ldos(path=path)
    assert [s.tag for s in back] == ["train", "test", "train"]
    assert back[0].result.grid_shape == (3, 3, 3) and back[0].record["factor"] == 2
    assert isinstance(back[0], LDOSSnapshot) and back[0].key == snaps[0].key
    assert len(load_aluminium_ldos("test", path=path)) == 1
    with pytest.raises(InputError) as info:
        load_aluminium_ldos("validation", path=path)
    assert info.value.field == "tag"


# ----------------------------------------------------------------------------------------------
# The shipped small set (no GPAW needed)
# ----------------------------------------------------------------------------------------------

def test_the_shipped_small_set_loads_and_integrates_to_its_references():
    card = aluminium_ldos_card()
    snaps = load_aluminium_ldos()
    assert snaps and len(snaps) == card["card"]["n_snapshots"]
    assert card["card"]["total_bytes"] <= 3.2e6  # 4 snapshots of 9³ points × 271 energies: 2.8 MB
    settings = LDOSSettings.from_dict(card["card"]["settings"])
    assert {s.tag for s in snaps} >= {"train", "test"}
    for s in snaps:
        r = s.result
        assert r.ldos.dtype == np.float32
        assert np.allclose(r.energies, settings.energies[:: card["card"]["energy_factor"]])
        assert r.n_electrons == pytest.approx(3 * len(r.numbers), abs=1e-6)  # Al: 3 valence electrons
        assert r.kT == pytest.approx(KT_933K, rel=1e-6)
        # the full grid's LDOS held GPAW's count at GPAW's Fermi level (measured: +0.007 % with the set's
        # k 3×3×3, +0.04 % with k 2×2×2: the broadening of discrete states); the coarse grid adds aliasing
        full = s.record["full_grid_checks"]
        assert abs(full["ldos_n_electrons"] / r.n_electrons - 1) < 2e-3
        assert full["dos_max_deviation"] < 1e-6
        coarse = ldos_checks(r)
        assert coarse["ldos_n_electrons"] == pytest.approx(s.record["coarse_grid_checks"]["ldos_n_electrons"],
                                                          rel=1e-9)
        # measured: 36³ → 9³ (stride 4) off by ≤ 2e-4, → 6³ (stride 6) by ≤ 0.8 %
        assert abs(coarse["ldos_n_electrons"] / r.n_electrons - 1) < 0.02


# ----------------------------------------------------------------------------------------------
# GPAW: one tiny real run
# ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAVE_GPAW, reason="GPAW not installed (scripts/install_gpaw.sh)")
def test_gpaw_run_reproduces_gpaws_electron_count(tmp_path):
    """A rattled 4-atom Al cell at 933 K's volume, PBE, PW 200 eV, k 6×6×6 (the k-point density of
    the set's 32-atom cells), through label_ldos with GPAW: the LDOS holds GPAW's electron count at
    GPAW's Fermi level within 0.1 % (measured −0.04 %, the σ = 0.05 eV broadening's bias; 12 s on a
    shared core)."""
    atoms = bulk("Al", "fcc", a=AL_LATTICE_CONSTANT_933K, cubic=True)
    atoms.positions += np.random.default_rng(1).normal(0, 0.1, atoms.positions.shape)
    atoms.info["tag"] = "test"
    settings = LDOSSettings(ecut=200.0, kpts=(6, 6, 6), gamma=False, nbands=12)
    (record,) = label_ldos(atoms, tmp_path, settings, progress=False)  # no timed assertion: a shared machine
    ref = record["references"]
    assert ref["n_electrons"] == pytest.approx(12.0, abs=1e-8)
    assert abs(record["checks"]["ldos_n_electrons"] / ref["n_electrons"] - 1) < 1e-3
    assert abs(record["checks"]["ldos_e_fermi"] - ref["e_fermi"]) < 0.02
    assert record["checks"]["dos_max_deviation"] < 1e-6
    assert record["grid_shape"] == [18, 18, 18]  # a / 18 with h = 0.23 Å
    result = LDOSResult.load(tmp_path / record["file"])
    assert np.allclose(result.energies, settings.energies)
    assert settings.energies[0] < result.eigenvalues.min() - 5 * settings.sigma
    assert result.e_fermi + 10 * settings.kT + 5 * settings.sigma < settings.energies[-1]


# ----------------------------------------------------------------------------------------------
# Broadening
# ----------------------------------------------------------------------------------------------

def test_broaden_gives_the_ldos_computed_with_the_wider_gaussian():
    """Gaussians compose: the σ = 0.05 eV LDOS broadened to 0.15 eV is the LDOS built with 0.15 eV
    from the same states (to the sampling of the kernel on the 0.05 eV grid), with the same charge."""
    atoms = _cells(1)[0]
    fine = synthetic_result(atoms, LDOSSettings())
    wide = synthetic_result(atoms, dataclasses.replace(LDOSSettings(), sigma=0.15))
    got = broaden(fine, 0.15)
    assert got.sigma == 0.15 and got.ldos.dtype == fine.ldos.dtype and got.ldos.shape == fine.ldos.shape
    np.testing.assert_allclose(got.ldos, wide.ldos, rtol=0, atol=2e-3 * wide.ldos.max())
    np.testing.assert_allclose(got.dos_reference, wide.dos_reference, rtol=1e-12)
    step = fine.energies[1] - fine.energies[0]
    np.testing.assert_allclose(got.ldos.sum(-1) * step, fine.ldos.sum(-1) * step, rtol=1e-5)
    assert got.e_fermi == fine.e_fermi and np.array_equal(got.density_reference, fine.density_reference)
    assert broaden(fine, fine.sigma) is fine
    with pytest.raises(InputError) as info:
        broaden(fine, 0.02)
    assert info.value.field == "sigma"

"""DFT labelling: resumable records, failures, settings; GPAW itself when installed."""

import importlib.util
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import all_changes
from dft_stand_in import FakeDFT, fake

from mlexplore import InputError
from mlexplore.dft import DFTSettings, append_record, failed_records, label, pattern_kept, read_records
from mlexplore.datasets.sampling import canonical_keys, distinct_occupations, lattice_permutations, sample_occupations
from mlexplore.dft.configs import fe_spin_configurations, fept_configurations, shipped_plan

HAVE_GPAW = importlib.util.find_spec("gpaw") is not None


NO_HIRSHFELD = DFTSettings(hirshfeld=False, kpt_density=2.0)


@pytest.fixture
def configs():
    return fe_spin_configurations(n_bcc2=2, n_bcc4=1, n_fcc4=1, n_bcc16=1)


def test_records_hold_labels_settings_and_tags(configs, tmp_path):
    out = tmp_path / "run.jsonl"
    with pytest.warns(UserWarning, match="failed"):
        ds = label(configs, out, settings=NO_HIRSHFELD, calculator=fake, progress=False)
    n_small = sum(1 for n in configs.n_atoms if n < 16)
    assert len(ds) == n_small
    records = read_records(out)
    assert len(records) == len(configs)
    for r in records:
        assert r["settings"] == NO_HIRSHFELD.to_dict()
        assert len(r["kpts"]) == 3
    first = configs[0]
    np.testing.assert_array_equal(ds.per_structure("forces")[0], -2 * first.positions)
    np.testing.assert_allclose(ds.per_structure("magmoms")[0], 0.9 * configs.per_structure("initial_magmoms")[0])
    assert ds.tags[0] == configs.tags[0]
    np.testing.assert_array_equal(ds.label("stress")[0], np.arange(6.0))


def test_failure_is_recorded_and_skipped(configs, tmp_path):
    out = tmp_path / "run.jsonl"
    with pytest.warns(UserWarning, match="SCF did not converge"):
        label(configs, out, settings=NO_HIRSHFELD, calculator=fake, progress=False)
    failed = failed_records(out)
    assert len(failed) == sum(configs.n_atoms == 16)
    assert "RuntimeError: SCF did not converge" in failed[0]["error"]
    assert "Traceback" in failed[0]["traceback"]
    # a second run does not retry failures unless asked
    FakeDFT.calls = 0
    label(configs, out, settings=NO_HIRSHFELD, calculator=fake, progress=False)
    assert FakeDFT.calls == 0
    with pytest.warns(UserWarning):
        label(configs, out, settings=NO_HIRSHFELD, calculator=fake, progress=False, retry_failed=True)
    assert FakeDFT.calls == len(failed)


class Frustrated(FakeDFT):
    """A magnet whose SCF only converges at a smearing < 0.2 eV when it starts from the density of
    a converged wider-smearing run (4-atom cells; 16-atom cells never converge). Energy: the
    harmonic one plus the current width, so the final numbers show which smearing made them."""

    def __init__(self, width):
        super().__init__()
        self.width, self.warm = width, False

    def set(self, **kwargs):
        occupations = kwargs.pop("occupations", None)
        if occupations is not None:
            assert occupations["name"] == "fermi-dirac"
            self.width = occupations["width"]
            self.results = {}
        return super().set(**kwargs)

    def calculate(self, atoms=None, properties=["energy"], system_changes=all_changes):
        if len(atoms) == 4 and self.width < 0.2 and not self.warm:
            FakeDFT.calls += 1
            raise RuntimeError("KohnShamConvergenceError: Did not converge!")
        super().calculate(atoms, properties, system_changes)
        self.results["energy"] += self.width
        self.warm = True


def frustrated(settings, atoms, kpts, txt):
    return Frustrated(settings.smearing)


def test_unconverged_scf_is_rescued_by_a_wider_smearing_first(configs, tmp_path):
    out = tmp_path / "run.jsonl"
    four = configs.n_atoms == 4
    with pytest.warns(UserWarning, match="Did not converge"):
        label(configs, out, settings=NO_HIRSHFELD, calculator=frustrated, progress=False)
    assert len(failed_records(out)) == sum(four) + sum(configs.n_atoms == 16)
    # a run with the rescue retries the earlier failures once, keeping their keys and settings
    FakeDFT.calls = 0
    with pytest.warns(UserWarning, match="SCF did not converge in 3"):  # the 16-atom cell stays failed
        ds = label(configs, out, settings=NO_HIRSHFELD, calculator=frustrated, progress=False,
                   rescue_smearing=0.3, log_dir=tmp_path / "logs")
    n_retried = sum(four) + sum(configs.n_atoms == 16)
    assert FakeDFT.calls == n_retried + sum(four)  # no second direct try: warm-up (+ final SCF where it works)
    assert len(ds) == sum(configs.n_atoms < 16)
    assert [r["index"] for r in failed_records(out)] == list(np.flatnonzero(configs.n_atoms == 16))
    last = {r["key"]: r for r in read_records(out)}
    rescued = [r for r in last.values() if r["status"] == "ok" and "rescue" in r]
    assert len(rescued) == sum(four)
    for r in rescued:
        assert r["settings"] == NO_HIRSHFELD.to_dict() and r["rescue"]["warmup_smearing"] == 0.3
        assert "Did not converge" in r["rescue"]["first_error"]
        # the numbers are those of the run's smearing, not of the warm-up
        pos = np.asarray(r["positions"])
        assert r["energy"] == pytest.approx((pos ** 2).sum() + NO_HIRSHFELD.smearing)
    assert sum("rescue" in m for m in ds.meta) == sum(four)
    # rescued or tried: a third run computes nothing
    FakeDFT.calls = 0
    label(configs, out, settings=NO_HIRSHFELD, calculator=frustrated, progress=False, rescue_smearing=0.3)
    assert FakeDFT.calls == 0
    # in a fresh run the rescue follows the failed direct try at once
    FakeDFT.calls = 0
    with pytest.warns(UserWarning, match="SCF did not converge in 3"):
        fresh = label(configs, tmp_path / "fresh.jsonl", settings=NO_HIRSHFELD, calculator=frustrated,
                      progress=False, rescue_smearing=0.3)
    assert len(fresh) == len(ds) and sum("rescue" in m for m in fresh.meta) == sum(four)
    assert FakeDFT.calls == sum(configs.n_atoms == 2) + 3 * sum(four) + 2 * sum(configs.n_atoms == 16)
    with pytest.raises(InputError, match="rescue_smearing"):
        label(configs, out, settings=NO_HIRSHFELD, calculator=frustrated, progress=False, rescue_smearing=0.05)


def test_killed_run_resumes_without_recomputing_or_duplicating(configs, tmp_path):
    out = tmp_path / "run.jsonl"
    small = configs.filter(mask=configs.n_atoms < 16)

    class Killer(FakeDFT):
        def calculate(self, *args, **kwargs):
            if FakeDFT.calls == 3:
                raise KeyboardInterrupt
            super().calculate(*args, **kwargs)

    FakeDFT.calls = 0
    with pytest.raises(KeyboardInterrupt):
        label(small, out, settings=NO_HIRSHFELD, calculator=lambda *a: Killer(), progress=False)
    assert len(read_records(out)) == 3
    # the kill may also have cut a line in half
    with open(out, "a") as fh:
        fh.write('{"key": "half a rec')
    assert len(read_records(out)) == 3
    FakeDFT.calls = 0
    ds = label(small, out, settings=NO_HIRSHFELD, calculator=fake, progress=False)
    assert FakeDFT.calls == len(small) - 3
    records = read_records(out)
    assert len(records) == len(small) and len({r["key"] for r in records}) == len(small)
    assert len(ds) == len(small)
    assert all(json.loads(line) for line in out.read_text().splitlines())


def test_on_record_sees_each_new_record_after_it_is_written(configs, tmp_path):
    out = tmp_path / "run.jsonl"
    small = configs.filter(mask=configs.n_atoms < 16)
    label(small[:2], out, settings=NO_HIRSHFELD, calculator=fake, progress=False)
    seen = []

    def on_record(record):  # the record is already on disk when the callback runs
        seen.append((record["index"], record["status"], len(read_records(out))))

    label(small, out, settings=NO_HIRSHFELD, calculator=fake, progress=False, on_record=on_record)
    assert seen == [(i, "ok", i + 1) for i in range(2, len(small))]


class SlowDFT(FakeDFT):
    def calculate(self, *args, **kwargs):
        import time

        time.sleep(0.05)
        super().calculate(*args, **kwargs)


def _label_in_a_process(structures, out, reverse):
    label(structures, out, settings=NO_HIRSHFELD, calculator=lambda *a: SlowDFT(), progress=False,
          reverse=reverse)


def test_two_processes_share_a_set_and_meet_in_the_middle(tmp_path):
    import multiprocessing

    from mlexplore.dft.export import export_dataset
    from mlexplore.io import read

    structures = fe_spin_configurations(n_bcc2=4, n_bcc4=2, n_fcc4=1, n_bcc16=0)
    structures = structures.filter(mask=structures.n_atoms < 16)
    keys = {NO_HIRSHFELD.key(a) for a in structures.to_atoms()}
    n = len(keys)  # (two random patterns may coincide: the same calculation)
    out = tmp_path / "run.jsonl"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_label_in_a_process, args=(structures, out, reverse)) for reverse in (False, True)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    records = read_records(out)
    assert all(json.loads(line) for line in out.read_text().splitlines())  # no interleaved lines
    assert {r["key"] for r in records} == keys
    assert all(r["status"] == "ok" for r in records)
    # each process skipped what the other had finished: alone, each would have computed all n
    assert n <= len(records) <= n + 2
    indices = [r["index"] for r in records]
    assert 0 in indices and len(structures) - 1 in indices
    shipped = read(export_dataset("fe_spin", out, tmp_path / "fe_spin_dft.extxyz.gz"))
    assert len(shipped) == n  # a configuration computed twice is exported once
    # a plan's keys choose and order what is exported; records off the plan stay out
    plan = [NO_HIRSHFELD.key(a) for a in structures.to_atoms()][::-1][:3]
    part = read(export_dataset("fe_spin", out, tmp_path / "part.extxyz.gz", keys=plan + ["not-computed"]))
    assert [m["key"] for m in part.meta] == plan
    # and a later run has nothing left to do
    FakeDFT.calls = 0
    label(structures, out, settings=NO_HIRSHFELD, calculator=fake, progress=False, reverse=True)
    assert FakeDFT.calls == 0


def test_new_records_are_read_from_an_offset(tmp_path):
    from mlexplore.dft import read_new_records

    out = tmp_path / "run.jsonl"
    append_record(out, {"key": "a", "status": "ok"})
    first, offset = read_new_records(out, 0)
    assert [r["key"] for r in first] == ["a"] and offset == out.stat().st_size
    assert read_new_records(out, offset) == ([], offset)
    with open(out, "a") as fh:
        fh.write('{"key": "b", "sta')  # another process half-way through a line
    assert read_new_records(out, offset) == ([], offset)
    with open(out, "a") as fh:
        fh.write('tus": "ok"}\n')
    news, offset2 = read_new_records(out, offset)
    assert [r["key"] for r in news] == ["b"] and offset2 == out.stat().st_size
    assert read_new_records(out, 10 ** 6)[0] == read_records(out)  # cut back after a kill: from the start


def test_changed_settings_are_a_new_calculation(configs, tmp_path):
    out = tmp_path / "run.jsonl"
    small = configs[:2]
    label(small, out, settings=NO_HIRSHFELD, calculator=fake, progress=False)
    FakeDFT.calls = 0
    label(small, out, settings=DFTSettings(hirshfeld=False, ecut=500.0), calculator=fake, progress=False)
    assert FakeDFT.calls == 2


def test_damaged_record_file_names_the_line(tmp_path):
    out = tmp_path / "run.jsonl"
    append_record(out, {"key": "a", "status": "ok"})
    with open(out, "a") as fh:
        fh.write("not json\n")
    with pytest.raises(InputError, match="line 2"):
        read_records(out)


def test_settings_validation_and_kpoints():
    with pytest.raises(InputError, match="ecut"):
        DFTSettings(ecut=-1)
    with pytest.raises(InputError, match="kpts"):
        DFTSettings(kpts=(0, 1, 1))
    fe2 = bulk("Fe", "bcc", a=2.83, cubic=True)
    assert DFTSettings(kpt_density=1.8).kpts_for(fe2) == (4, 4, 4)
    assert DFTSettings(kpt_density=1.8).kpts_for(fe2.repeat(2)) == (2, 2, 2)
    assert DFTSettings(kpts=(3, 3, 1)).kpts_for(fe2) == (3, 3, 1)
    assert DFTSettings().key(fe2) == DFTSettings().key(fe2.copy())
    assert DFTSettings().key(fe2) != DFTSettings(ecut=400).key(fe2)


def test_pattern_kept():
    assert pattern_kept([2.5, -2.5], [2.2, -2.1])
    assert not pattern_kept([2.5, -2.5], [2.2, 2.1])  # flipped to FM
    assert not pattern_kept([2.5, -2.5], [0.1, -0.1])  # collapsed
    assert pattern_kept([3.0, 0.5], [2.6, 0.3])  # small Pt moment is free


def test_configuration_sets_have_the_stated_sizes_and_patterns():
    fept = fept_configurations()
    assert len(fept) == 208 and set(fept.n_atoms) == {16}
    assert fept.formulas[:17] == sorted(set(fept.formulas), key=lambda f: fept.formulas.index(f))[:17]
    # every configuration a different structure: no two related by the cell's 768 symmetry operations
    perms = lattice_permutations(fept[0])
    occupations = fept.numbers.reshape(-1, 16) == 78
    assert len(perms) == 768 and len(set(canonical_keys(occupations, perms).tolist())) == 208
    assert fept.tags[-1] == ("bcc", "fixed-volume", "ordered-B2") and fept.formulas[-1] == "Fe8Pt8"
    # the first plan's distinct structures (whose records were computed) are all still there, as they were
    first = sample_occupations(16, 14, seed=0)
    planned = {o.tobytes() for o in occupations}
    for _, occ in first:
        firsts = occ[distinct_occupations(occ, perms)]
        assert all(o.tobytes() in planned for o in firsts)
    fe = fe_spin_configurations()
    assert len(fe) == 440 and set(fe.n_atoms) == {2, 4, 16}
    assert (fe.n_atoms[405:410] == 16).all() and (fe.n_atoms[:405] < 16).all() and (fe.n_atoms[410:] == 2).all()
    # the margin of extra Fe2 cells leaves the first 410 configurations (and their record keys) as they were
    np.testing.assert_array_equal(fe[:410].positions, fe_spin_configurations(n_extra_bcc2=0).positions)
    for i in range(len(fe)):
        m = fe.per_structure("initial_magmoms")[i] if i < 50 else None
        if m is not None and ("AFM-B2" in fe.tags[i] or "AFM-L10" in fe.tags[i] or "AFM-layer" in fe.tags[i]):
            assert abs(m.sum()) < 1e-12  # antiferromagnets start with zero net moment
    assert {"FM", "AFM-B2", "AFM-layer", "AFM-L10", "random"} <= set(fe.all_tags)
    # same seed, same configurations
    np.testing.assert_array_equal(fe.positions, fe_spin_configurations().positions)


def test_shipped_plans_and_their_settings():
    configs, settings, keys = shipped_plan("fept")
    assert len(configs) == len(keys) == len(set(keys)) == 208
    assert settings.kpts == (2, 2, 2) and keys[0] == settings.key(configs[0])
    with pytest.raises(InputError, match="unknown DFT set 'fecr'"):
        shipped_plan("fecr")


@pytest.mark.skipif(not HAVE_GPAW, reason="GPAW not installed (scripts/install_gpaw.sh)")
def test_label_reproduces_gpaw_called_directly(tmp_path):
    from gpaw import GPAW, PW, FermiDirac
    from gpaw.analyse.hirshfeld import HirshfeldPartitioning

    atoms = bulk("Fe", "bcc", a=2.85, cubic=True)
    atoms.positions[1] += [0.05, 0.0, -0.03]
    atoms.set_initial_magnetic_moments([2.0, 2.0])
    settings = DFTSettings(ecut=250.0, kpts=(2, 2, 2), smearing=0.2)
    ds = label(atoms, tmp_path / "fe2.jsonl", settings=settings, progress=False)

    ref = atoms.copy()
    ref.calc = GPAW(mode=PW(250.0), xc="PBE", kpts=[2, 2, 2], occupations=FermiDirac(0.2), spinpol=True,
                    txt=None, legacy_gpaw=True)
    assert ds.label("energy")[0] == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(ds.label("forces"), ref.get_forces(), atol=1e-5)
    np.testing.assert_allclose(ds.label("magmoms"), ref.get_magnetic_moments(), atol=1e-5)
    np.testing.assert_allclose(ds.label("stress")[0], ref.get_stress(), atol=1e-6)
    q = np.asarray(HirshfeldPartitioning(ref.calc).get_charges())
    np.testing.assert_allclose(ds.label("charges"), q, atol=1e-5)
    np.testing.assert_allclose(ds.label("charge_transfer"), -q, atol=1e-5)
    assert 1.5 < ds.label("magmoms").mean() < 3.0  # ferromagnetic iron


@pytest.mark.skipif(not HAVE_GPAW, reason="GPAW not installed (scripts/install_gpaw.sh)")
def test_gpaw_warm_start_from_a_wider_smearing_reaches_the_same_solution():
    """The rescue path (converge at 0.3 eV, then at 0.1 eV from that density) gives GPAW's
    direct answer at 0.1 eV where the spin state is robust (FM iron): same energy, forces and
    moments. (Weak moments can vanish in the warm-up: AFM Fe2 at a = 2.80 Å keeps 0.76 μ_B
    directly but ends non-magnetic, 0.25 eV higher, after it; the records say ``rescue``.)"""
    from mlexplore.dft.label import _compute, gpaw_calculator

    atoms = bulk("Fe", "bcc", a=2.85, cubic=True)
    atoms.positions[1] += [0.04, -0.02, 0.03]
    settings = DFTSettings(ecut=250.0, kpts=(2, 2, 2), smearing=0.1, hirshfeld=False)
    magmoms = np.array([2.2, 2.2])
    direct = _compute(atoms, settings, gpaw_calculator, (2, 2, 2), magmoms, None)
    warm = _compute(atoms, settings, gpaw_calculator, (2, 2, 2), magmoms, None, warmup_smearing=0.3)
    assert warm["energy"] == pytest.approx(direct["energy"], abs=2e-4)
    np.testing.assert_allclose(warm["forces"], direct["forces"], atol=2e-3)
    np.testing.assert_allclose(warm["magmoms"], direct["magmoms"], atol=2e-2)
    assert direct["magmoms"].min() > 1.5


@pytest.mark.skipif(not HAVE_GPAW, reason="GPAW not installed (scripts/install_gpaw.sh)")
def test_gpaw_failure_is_recorded(tmp_path):
    atoms = bulk("Fe", "bcc", a=2.85, cubic=True)
    settings = DFTSettings(ecut=200.0, kpts=(1, 1, 1), maxiter=2, hirshfeld=False)
    out = tmp_path / "fail.jsonl"
    with pytest.warns(UserWarning, match="failed"), pytest.raises(InputError, match="no configuration succeeded"):
        label(atoms, out, settings=settings, progress=False)
    assert "onvergence" in failed_records(out)[0]["error"] or "converge" in failed_records(out)[0]["error"]

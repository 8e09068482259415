"""Active learning: the selection (uncertainty, diversity, random), the explorers, the labellers, the loop on
tiny EMT gold (labels grow by k per iteration), resuming after an interruption without labelling anything
twice, bad arguments named, and the ``mlexplore learn`` command."""

from __future__ import annotations

import contextlib
import io
import json
import time

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT

from mlexplore import InputError, StructureDataset
from mlexplore.cli import main
from mlexplore.datasets import gold
from mlexplore.datasets.emt import emt_labels
from mlexplore.descriptors import G2, SpinSelf, SymmetryFunctions, save_basis
from mlexplore.dft import DFTSettings
from mlexplore.io import read
from mlexplore.models import Committee
from mlexplore.training import (MD, ActiveLearning, DFTLabeller, Pool, Potential, Rattle, fit_committee,
                                format_iteration, load_model, select, structure_uncertainty)
from mlexplore.training.active_learning import structure_keys

from dft_stand_in import fake


def _sf():
    return SymmetryFunctions([G2(1.0, 2.5), G2(0.5, 3.5)], cutoff=4.5, elements=["Au"])


@pytest.fixture(scope="module")
def au():
    """A starting set (5), a pool (10) and a test set (5) of EMT gold, disjoint (different seeds)."""
    return (gold(n_per_group=1, seed=0, progress=False, cache=False),
            gold(n_per_group=2, seed=1, progress=False, cache=False),
            gold(n_per_group=1, seed=2, progress=False, cache=False))


def _learner(**kw):
    options = dict(iterations=2, per_iteration=3, n_members=2, hidden=(4,), epochs=4, device="cpu", progress=False)
    return ActiveLearning(_sf(), **{**options, **kw})


def _dimers(n):
    """``n`` two-atom Au structures (1 Å apart in x times the index, so they differ)."""
    return StructureDataset.from_atoms([Atoms("Au2", positions=[[0, 0, 0], [2.5 + 0.1 * i, 0, 0]])
                                        for i in range(n)])


class CountingEMT:
    """A labeller function: EMT, remembering every structure it was asked to label (by key)."""

    def __init__(self):
        self.seen = []

    def __call__(self, images):
        self.seen += structure_keys(images)
        return [_with_emt(a) for a in images]


def _with_emt(atoms):
    from ase.calculators.singlepoint import SinglePointCalculator

    energy, _, forces = emt_labels(atoms)
    a = atoms.copy()
    a.calc = SinglePointCalculator(a, energy=energy, forces=forces)
    return a


# --- selection ----------------------------------------------------------------------------------------

def test_uncertainty_per_structure_is_the_max_or_mean_force_spread():
    cand = _dimers(2)
    std = np.array([[0.3, 0.0, 0.0], [0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1]])  # (4 atoms, 3)
    u_max = structure_uncertainty(cand, {"forces_std": std})
    np.testing.assert_allclose(u_max, [0.3 / np.sqrt(3), 0.1])
    np.testing.assert_allclose(structure_uncertainty(cand, {"forces_std": std}, "mean"), [0.15 / np.sqrt(3), 0.1])
    # without forces: the energy spread per atom
    np.testing.assert_allclose(structure_uncertainty(cand, {"energy_std": np.array([0.2, 0.4])}), [0.1, 0.2])
    both = {"forces_std": std, "energy_std": np.array([0.2, 0.4])}
    np.testing.assert_allclose(structure_uncertainty(cand, both, "energy"), [0.1, 0.2])
    with pytest.raises(InputError, match="reduce must be one of max, mean, energy") as exc:
        structure_uncertainty(cand, {"forces_std": std}, "median")
    assert exc.value.field == "uncertainty"
    with pytest.raises(InputError, match="no committee spread"):
        structure_uncertainty(cand, {"energy": np.zeros(2)})


def test_selection_takes_the_most_uncertain_then_the_most_different():
    """Five candidates: A (most uncertain), B (a near-duplicate of A, nearly as uncertain), C (uncertain,
    elsewhere in feature space), D (far away but certain), E (certain). k=2 from the top 3 → A, then C — not
    B (a duplicate) and not D (outside the shortlist)."""
    cand = _dimers(5)
    u = np.array([1.0, 0.95, 0.9, 0.1, 0.05])
    std = np.repeat(u, 2)[:, None] * np.ones((1, 3))  # per atom, the structure's spread
    feats = np.array([[0.0, 0.0], [0.01, 0.0], [5.0, 1.0], [10.0, 9.0], [0.5, 0.5]])  # (structures, F)
    pred = {"forces_std": std}
    assert list(select(cand, pred, 2, features=feats, top=3)) == [0, 2]
    assert list(select(cand, pred, 3, features=feats, top=5)) == [0, 3, 2]  # D joins once it is on the shortlist
    assert list(select(cand, pred, 2)) == [0, 1]  # no features: the k most uncertain
    # per-atom features give the same picks as their per-structure means
    per_atom = np.repeat(feats, 2, axis=0)
    assert list(select(cand, pred, 2, features=per_atom, top=3)) == [0, 2]
    assert list(select(cand, pred, 9, features=feats)) == [0, 1, 2, 3, 4]  # fewer candidates than k: all
    with pytest.raises(InputError, match="top .* must be at least k"):
        select(cand, pred, 3, features=feats, top=2)
    with pytest.raises(InputError, match="one row per structure"):
        select(cand, pred, 2, features=np.zeros((3, 2)))


def test_selection_counts_distances_from_what_is_labelled_already():
    """The same five candidates, with a labelled structure next to A and C: the k-centre step starts
    from the shortlisted candidate farthest from everything labelled (B, the duplicate of A, is as
    close as A), so with C and A covered the pick is the one the training set lacks."""
    cand = _dimers(5)
    u = np.array([1.0, 0.95, 0.9, 0.1, 0.05])
    pred = {"forces_std": np.repeat(u, 2)[:, None] * np.ones((1, 3))}
    feats = np.array([[0.0, 0.0], [0.01, 0.0], [5.0, 1.0], [10.0, 9.0], [0.5, 0.5]])
    labelled = np.array([[0.0, 0.0], [5.0, 1.0]])  # A and C themselves: B, 0.01 from A, is the least covered
    assert list(select(cand, pred, 1, features=feats, top=3, labelled_features=labelled)) == [1]
    assert list(select(cand, pred, 1, features=feats, top=4, labelled_features=labelled)) == [3]
    assert list(select(cand, pred, 2, features=feats, top=3)) == [0, 2]  # without: as before
    with pytest.raises(InputError, match="labelled_features"):
        select(cand, pred, 1, features=feats, labelled_features=np.zeros((2, 3)))


def test_random_selection_is_seeded_and_distinct():
    cand = _dimers(20)
    a, b = select(cand, {}, 5, "random", seed=3), select(cand, {}, 5, "random", seed=3)
    assert list(a) == list(b) and len(set(a)) == 5
    assert list(select(cand, {}, 5, "random", seed=4)) != list(a)
    with pytest.raises(InputError, match="strategy must be one of uncertainty, random") as exc:
        select(cand, {}, 5, "best")
    assert exc.value.field == "strategy"
    with pytest.raises(InputError, match="k must be a whole number"):
        select(cand, {}, 0, "random")


# --- explorers and labellers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_potential(au):
    start, _, _ = au
    committee = Committee(_sf(), n_members=2, hidden=(4,))
    fit_committee(committee, start, epochs=3, device="cpu", patience=None)
    return Potential(committee, extrapolation="ignore")


def test_rattle_is_seeded_vectorised_and_strains(au, small_potential):
    start, _, _ = au
    r = Rattle(n_candidates=7, stdev=0.05, strain=0.02)
    a = r.explore(start, small_potential, np.random.default_rng(1))
    b = r.explore(start, small_potential, np.random.default_rng(1))
    assert len(a) == 7 and "energy" not in a and all(m["source"].startswith("rattle of ") for m in a.meta)
    np.testing.assert_array_equal(a.positions, b.positions)
    periodic = a.pbc.all(axis=1)
    assert not np.allclose(a.cells[periodic], start.cells[:1].repeat(periodic.sum(), 0))
    none = Rattle(n_candidates=3, stdev=0.0, strain=0.0).explore(start, small_potential, np.random.default_rng(0))
    assert set(structure_keys(none)) <= set(structure_keys(start))  # no displacement, no strain: copies


def test_md_takes_snapshots_with_the_committee_calculator(au, small_potential):
    start, _, _ = au
    md = MD(temperatures=(300, 800), n_starts=1, steps=6, interval=3, timestep=1.0)
    out = md.explore(start, small_potential, np.random.default_rng(0))
    assert len(out) == 2 * 1 * 3  # steps 0, 3, 6 at each temperature
    assert [m["source"].split(",")[0].split(" from")[0] for m in out.meta][::3] == ["md 300 K", "md 800 K"]
    assert out.meta[1]["source"].endswith("step 3")
    with pytest.raises(InputError, match="temperatures must be positive"):
        MD(temperatures=(-5,)).explore(start, small_potential, np.random.default_rng(0))


def test_labellers_calculator_function_stored_and_dft(au, tmp_path):
    start, pool, test = au
    # an ASE calculator object, EMT's labels exactly
    learner = _learner(labeller=EMT(), explorers=[pool], iterations=1, per_iteration=2).fit(start)
    new = learner.labelled_[len(start):]
    for i in range(len(new)):
        e, _, f = emt_labels(new[i])
        assert new.label("energy")[i] == pytest.approx(e)
        np.testing.assert_allclose(new.label("forces")[new.atom_slice(i)], f, atol=1e-10)
    # "stored": the pool's own labels, no labeller call
    stored = _learner(labeller="stored", explorers=Pool(pool), iterations=1, per_iteration=2).fit(start)
    assert stored.n_labelled_ == 0 and len(stored.labelled_) == len(start) + 2
    with pytest.raises(InputError, match="labeller='stored' but the candidates have no energy"):
        _learner(labeller="stored", explorers="rattle", iterations=1).fit(start)
    # a function that returns other atoms is refused, naming the labeller
    with pytest.raises(InputError, match="returned other atoms") as exc:
        _learner(labeller=lambda images: [Atoms("Au") for _ in images], explorers=[pool], iterations=1).fit(start)
    assert exc.value.field == "labeller"
    # DFT through mlexplore.dft.label (a stand-in for GPAW): labels recorded in its own resumable file
    dft = DFTLabeller(tmp_path / "dft.jsonl", settings=DFTSettings(hirshfeld=False), calculator=fake)
    run = _learner(labeller=dft, explorers=[pool], iterations=1, per_iteration=2,
                   record_dir=tmp_path / "run").fit(start)
    added = run.labelled_[len(start):]
    assert len(added) == 2 and run.n_labelled_ == 2
    np.testing.assert_allclose(added.label("energy"), [(a.positions ** 2).sum() for a in added])
    np.testing.assert_allclose(added.label("forces"), -2 * added.positions)
    records = [json.loads(line) for line in (tmp_path / "dft.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "ok"]


# --- the loop ------------------------------------------------------------------------------------------------

def test_loop_on_tiny_gold_grows_by_k_per_iteration_and_records_everything(au, tmp_path):
    start, pool, test = au
    seen = []
    t0 = time.perf_counter()
    learner = _learner(labeller="emt", explorers=[pool], record_dir=tmp_path / "run",
                       callback=lambda r: seen.append(r["iteration"])).fit(start, test)
    seconds = time.perf_counter() - t0
    assert seconds < 30, seconds  # a few seconds on one core
    h = learner.history_
    assert [r["iteration"] for r in h] == seen == [0, 1, 2] and learner.start_iteration_ == 0
    assert [r["n_labels"] for r in h] == [5, 8, 11] and [r["n_added"] for r in h] == [0, 3, 3]
    assert [r["n_candidates"] for r in h] == [0, 10, 7]  # the pool, less what was labelled
    for r in h:
        assert r["energy_rmse"] > 0 and r["forces_rmse"] > 0
    assert h[1]["selected_uncertainty"] > 0 and h[1]["max_uncertainty"] >= h[1]["selected_uncertainty"]
    assert "iteration 1: 8 labels (+3), energy RMSE" in format_iteration(h[1])
    assert len(learner.labelled_) == 11 and len(set(structure_keys(learner.labelled_))) == 11
    assert all(m["source"].startswith("pool ") for m in learner.labelled_.meta[5:])
    # the records: every label, every iteration, each iteration's committee, the training set
    d = tmp_path / "run"
    labels = [json.loads(line) for line in (d / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 6 and [r["iteration"] for r in labels] == [1, 1, 1, 2, 2, 2]
    assert all(r["status"] == "ok" and len(r["forces"]) == len(r["numbers"]) for r in labels)
    assert [json.loads(line)["iteration"] for line in (d / "iterations.jsonl").read_text().splitlines()] == [0, 1, 2]
    assert sorted(p.name for p in (d / "models").iterdir()) == [f"iteration_{i:03d}.pt" for i in range(3)]
    assert isinstance(load_model(d / "models" / "iteration_002.pt"), Committee)
    saved = read(d / "labelled.xyz")
    np.testing.assert_allclose(saved.label("energy"), learner.labelled_.label("energy"))
    assert learner.potential_.predict(test)["forces_std"].shape == (test.n_total_atoms, 3)


def test_random_strategy_and_the_explorers_by_name(au):
    start, _, test = au
    learner = _learner(strategy="random", explorers="md,rattle", iterations=1, per_iteration=2).fit(start, test)
    assert [r["n_labels"] for r in learner.history_] == [5, 7] and learner.history_[1]["selected_uncertainty"] is None
    assert {m["source"].split()[0] for m in learner.labelled_.meta[5:]} <= {"md", "rattle"}
    again = _learner(strategy="random", explorers="md,rattle", iterations=1, per_iteration=2).fit(start, test)
    np.testing.assert_array_equal(again.labelled_.positions, learner.labelled_.positions)  # seeded


class Interrupt(Exception):
    pass


def test_a_rerun_resumes_after_the_last_finished_iteration_and_labels_nothing_twice(au, tmp_path):
    start, pool, test = au
    labeller = CountingEMT()

    def stop_after_1(record):
        if record["iteration"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        _learner(labeller=labeller, explorers=[pool], iterations=3, record_dir=tmp_path, callback=stop_after_1).fit(
            start, test)
    assert len(labeller.seen) == 3
    first = read(tmp_path / "labelled.xyz")
    done = []
    learner = _learner(labeller=labeller, explorers=[pool], iterations=3, record_dir=tmp_path,
                       callback=lambda r: done.append(r["iteration"])).fit(start, test)
    assert learner.start_iteration_ == 2 and done == [2, 3]
    assert [r["iteration"] for r in learner.history_] == [0, 1, 2, 3]
    assert [r["n_labels"] for r in learner.history_] == [5, 8, 11, 14]
    assert len(labeller.seen) == 9 and len(set(labeller.seen)) == 9  # 3 per iteration, none twice
    np.testing.assert_array_equal(learner.labelled_.positions[:first.n_total_atoms], first.positions)
    # finished: a rerun does nothing, more iterations go on from the last
    again = _learner(labeller=labeller, explorers=[pool], iterations=3, record_dir=tmp_path).fit(start, test)
    assert again.start_iteration_ == 4 and again.n_labelled_ == 0 and len(again.labelled_) == 14
    # the same directory with other settings or data is refused, naming what differs
    with pytest.raises(InputError, match="holds a run with other per_iteration"):
        _learner(labeller=labeller, explorers=[pool], per_iteration=4, record_dir=tmp_path).fit(start, test)
    with pytest.raises(InputError, match="holds a run with other data"):
        _learner(labeller=labeller, explorers=[pool], record_dir=tmp_path).fit(start[:4], test)


def test_labels_of_an_unfinished_iteration_are_kept(au, tmp_path):
    """Killed between labelling and the end of an iteration: the rerun keeps those labels and labels only
    the rest of the iteration's k."""
    start, pool, test = au
    labeller = CountingEMT()

    class DiesInTraining(ActiveLearning):
        def _train(self, labelled, previous):
            if len(labelled) > len(start):
                raise Interrupt
            return super()._train(labelled, previous)

    options = dict(iterations=1, per_iteration=3, n_members=2, hidden=(4,), epochs=4, device="cpu", progress=False,
                   labeller=labeller, explorers=[pool], record_dir=tmp_path)
    with pytest.raises(Interrupt):
        DiesInTraining(_sf(), **options).fit(start, test)
    assert len(labeller.seen) == 3 and not (tmp_path / "models" / "iteration_001.pt").exists()
    learner = ActiveLearning(_sf(), **options).fit(start, test)
    assert learner.n_labelled_ == 0 and len(labeller.seen) == 3
    assert [r["n_labels"] for r in learner.history_] == [5, 8] and learner.history_[1]["n_added"] == 3


def test_failed_labels_are_recorded_and_not_retried(au, tmp_path):
    start, pool, _ = au

    def half(images):
        return [_with_emt(a) if k % 2 else None for k, a in enumerate(images)]

    learner = _learner(labeller=half, explorers=[pool], iterations=1, per_iteration=4, record_dir=tmp_path).fit(start)
    assert learner.history_[1]["n_added"] == 2
    # every label failing is an iteration with nothing added, not the end of the loop
    nothing = _learner(labeller=lambda images: [None] * len(images), explorers=[pool], iterations=2).fit(start)
    assert [r["n_labels"] for r in nothing.history_] == [5, 5, 5]
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert [r["status"] for r in labels] == ["failed", "ok", "failed", "ok"]
    more = _learner(labeller=half, explorers=[pool], iterations=2, per_iteration=4, record_dir=tmp_path).fit(start)
    failed = {r["key"] for r in labels if r["status"] == "failed"}
    assert not failed & set(structure_keys(more.labelled_))
    again = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len({r["key"] for r in again}) == len(again)  # nothing asked for twice


# --- bad arguments ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field, message", [
    ({"strategy": "best"}, "strategy", "strategy must be one of uncertainty, random"),
    ({"uncertainty": "median"}, "uncertainty", "uncertainty must be one of max, mean, energy"),
    ({"diversity": "none"}, "diversity", "diversity must be one of labelled, picked"),
    ({"per_iteration": 0}, "per_iteration", "per_iteration must be a whole number ≥ 1"),
    ({"iterations": -1}, "iterations", "iterations must be a whole number ≥ 0"),
    ({"iterations": 1.5}, "iterations", "iterations must be a whole number"),
    ({"n_members": 1}, "n_members", "needs a committee of ≥ 2 members"),
    ({"top": 2}, "top", "top (2) must be at least per_iteration (3)"),
    ({"resample": "jackknife"}, "resample", "resample must be one of none, bootstrap"),
    ({"lr": -1.0}, "lr", "lr must be a positive number"),
    ({"seed": -2}, "seed", "seed must be a whole number ≥ 0"),
    ({"explorers": "walk"}, "explorers", "unknown explorer 'walk'"),
    ({"explorers": []}, "explorers", "no explorer"),
    ({"explorers": "pool"}, "explorers", "a pool is given as structures"),
    ({"labeller": "vasp"}, "labeller", "unknown labeller 'vasp'"),
    ({"labeller": 42}, "labeller", "labeller must be a name"),
    ({"labeller": "gpaw"}, "record_dir", "keeps its DFT records in record_dir"),
    ({"device": "tpu"}, "device", "is not a device"),
])
def test_bad_arguments_are_named(au, kwargs, field, message):
    start, _, _ = au
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        _learner(**kwargs).fit(start)
    assert exc.value.field == field


def test_bad_data_and_record_dir_are_named(au, tmp_path):
    start, _, _ = au
    unlabelled = StructureDataset(start.numbers, start.positions, start.cells, start.pbc, start.n_atoms)
    with pytest.raises(InputError, match="no per-structure 'energy'") as exc:
        _learner().fit(unlabelled)
    assert exc.value.field == "data"
    with pytest.raises(InputError, match="no per-structure 'energy'") as exc:
        _learner().fit(start, test=unlabelled)
    assert exc.value.field == "test"
    with pytest.raises(InputError, match="expected a StructureDataset"):
        _learner().fit("au.xyz")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file; record_dir wants a directory"):
        _learner(record_dir=tmp_path / "file").fit(start)
    spin = SymmetryFunctions([G2(1.0, 2.5), SpinSelf()], cutoff=4.5, elements=["Au"])
    with pytest.raises(InputError, match="spin terms"):
        ActiveLearning(spin).fit(start)


def test_parameters_come_from_the_signature():
    learner = _learner()
    params = learner.get_params()
    assert params["per_iteration"] == 3 and params["strategy"] == "uncertainty" and "callback" in params
    assert learner.set_params(per_iteration=5) is learner and learner.per_iteration == 5
    with pytest.raises(InputError, match="unknown parameter\\(s\\) k;"):
        learner.set_params(k=5)


# --- the command line ---------------------------------------------------------------------------------------

def _run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, out.getvalue()


def test_learn_command_prints_each_iteration_and_resumes(au, tmp_path, capsys):
    start, pool, test = au
    start.save(tmp_path / "start.xyz")
    pool.save(tmp_path / "pool.xyz")
    test.save(tmp_path / "test.xyz")
    save_basis(_sf(), tmp_path / "basis.json")
    argv = ["learn", str(tmp_path / "start.xyz"), "--basis", str(tmp_path / "basis.json"), "--pool",
            str(tmp_path / "pool.xyz"), "--test", str(tmp_path / "test.xyz"), "--per-iteration", "2",
            "--n-members", "2", "--hidden", "4", "--epochs", "3", "--device", "cpu", "--out", str(tmp_path / "run"),
            "--quiet"]
    rc, text = _run([*argv, "--iterations", "1"])
    assert rc == 0, capsys.readouterr().err
    lines = text.splitlines()
    assert lines[0].startswith("iteration 0: 5 labels (+0), energy RMSE") and "force RMSE" in lines[0]
    assert lines[1].startswith("iteration 1: 7 labels (+2)")
    rc, text = _run([*argv, "--iterations", "2"])  # the same directory: only iteration 2 runs
    assert rc == 0 and text.splitlines()[0].startswith("iteration 2: 9 labels (+2)")
    assert len(read(tmp_path / "run" / "labelled.xyz")) == 9
    # bad input: exit 2, one line naming the option's parameter
    rc, _ = _run([*argv, "--strategy", "best"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "strategy must be one of uncertainty, random" in err

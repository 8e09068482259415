"""Fixed-lattice STL/MTL networks (seed 000) and the task-combination comparison (001 table 1)."""

import numpy as np
import pytest
import torch

from mlexplore import InputError, StructureDataset
from mlexplore.analysis import r2
from mlexplore.data import stratified_split
from mlexplore.datasets import ising_lattice, lattice_alloy
from mlexplore.models import LatticeMLP, site_occupations
from mlexplore.training import (compare_tasks, fit_tasks, format_task_table, predict_tasks,
                                task_combinations)


@pytest.fixture(scope="module")
def ising():
    return ising_lattice(L=3, n_per_composition=20, progress=False)


def test_site_occupations_one_hot(ising):
    x = site_occupations(ising, ["H", "He"])
    assert x.shape == (len(ising), 27 * 2)
    np.testing.assert_array_equal(x.reshape(len(ising), 27, 2).sum(-1), 1)
    up = ising.numbers.reshape(len(ising), 27) == 2
    np.testing.assert_array_equal(x.reshape(len(ising), 27, 2)[..., 1], up)
    with pytest.warns(UserWarning, match="dropped"):
        mixed = StructureDataset.concatenate([ising[:2], lattice_alloy("CuAu", n_per_composition=1,
                                                                      compositions=[3], progress=False)])
    with pytest.raises(InputError, match="same lattice"):
        site_occupations(mixed, ["H", "He"])
    with pytest.raises(InputError, match="not one of"):
        site_occupations(ising, ["H"])


def test_architecture_stl_and_mtl():
    stl = LatticeMLP(32, ["Cu", "Au"], {"energy": "structure"}, width=200)
    mtl = LatticeMLP(32, ["Cu", "Au"], {"energy": "structure", "charge": "site"}, width=200)
    assert not stl.is_multitask and mtl.is_multitask
    assert mtl.heads["energy"][0].out_features == 100 and mtl.heads["charge"][2].out_features == 32
    out = mtl(torch.zeros((5, 64)))
    assert out["energy"].shape == (5,) and out["charge"].shape == (5 * 32,)  # sites flattened like atoms
    with pytest.raises(InputError, match="kind must be"):
        LatticeMLP(8, ["Cu"], {"x": "graph"})


def test_fit_tasks_learns_the_ising_energy(ising):
    train, val, test = stratified_split(ising, (0.7, 0.15, 0.15), seed=0)
    torch.manual_seed(0)
    model = LatticeMLP(27, ["H", "He"], {"energy": "structure"}, width=64)
    h = fit_tasks(model, train, val, epochs=200, lr=1e-3, device="cpu")
    p = predict_tasks(model, test)
    assert r2(test.label("energy"), p["energy"]) > 0.8
    assert h.best_epoch >= 0 and h.val_loss[h.best_epoch] == min(h.val_loss)
    with pytest.raises(InputError, match="declared 'structure'"):
        fit_tasks(LatticeMLP(27, ["H", "He"], {"site_value": "structure"}), train, epochs=1, device="cpu")


def test_compare_tasks_returns_every_combination_with_mean_and_std(ising):
    assert task_combinations(["H", "C", "M"]) == [("H",), ("C",), ("M",), ("H", "C"), ("H", "M"), ("C", "M"),
                                                  ("H", "C", "M")]
    rows = compare_tasks(ising, ["energy", "site_value"], n_runs=2, epochs=20, lr=1e-3, width=32, device="cpu",
                         progress=False)
    got = {(r["tasks"], r["target"]) for r in rows}
    assert got == {("energy", "energy"), ("site_value", "site_value"), ("energy+site_value", "energy"),
                   ("energy+site_value", "site_value")}
    for r in rows:
        assert r["n_runs"] == 2 and np.isfinite(r["rmse_mean"]) and r["rmse_std"] >= 0 and r["fom"] > 0
    table = format_task_table(rows)
    assert "MTL energy+site_value" in table and "±" in table
    with pytest.raises(InputError, match="target 'charge'"):
        compare_tasks(ising, ["charge"], n_runs=1, epochs=1, progress=False)
    with pytest.raises(InputError, match="vary must be"):
        compare_tasks(ising, ["energy"], n_runs=1, epochs=1, progress=False, vary="data")


def test_compare_tasks_options_reach_the_trainer_or_are_named(ising):
    # patience reaches fit_tasks: with 0 epochs of patience every model stops after its first epoch
    _, runs = compare_tasks(ising, ["energy"], n_runs=1, epochs=30, lr=1e-3, width=8, device="cpu", progress=False,
                            patience=0, return_runs=True)
    assert len(runs[0].history.epoch) < 30
    # an option neither compare_tasks nor the network takes is named before any training
    with pytest.raises(InputError, match=r"unknown option\(s\) hidden for the lattice model; it takes width, activation"):
        compare_tasks(ising, ["energy"], n_runs=1, epochs=1, progress=False, hidden=(8, 8))
    with pytest.raises(InputError, match="for the graph model; it takes cutoff, width, layers"):
        compare_tasks(ising, ["energy"], model="graph", n_runs=1, epochs=1, progress=False, activation="relu")


def test_compare_tasks_independent_initialisations(ising):
    """001's protocol: one split, N initialisations — the spread then comes from the weights alone."""
    rows = compare_tasks(ising, ["energy"], n_runs=3, epochs=5, lr=1e-3, width=16, device="cpu", progress=False,
                         vary="init")
    assert len(rows) == 1 and rows[0]["n_runs"] == 3 and rows[0]["rmse_std"] > 0


def test_compare_tasks_resumes_from_its_record_file(tmp_path, monkeypatch):
    """A comparison killed after some models resumes: finished models are read back, not trained
    again, and the table is the one an uninterrupted run gives."""
    from mlexplore.datasets import lattice_alloy
    from mlexplore.training import compare_tasks
    from mlexplore.training.tasks import TaskComparisonPlan

    ds = lattice_alloy("CuAu", n_per_composition=2, progress=False)
    kw = dict(model="lattice", n_runs=2, epochs=3, lr=1e-3, width=16, stratify=False, progress=False, device="cpu")
    full = compare_tasks(ds, ["mixing_energy", "energies"], **kw)
    record = tmp_path / "runs.jsonl"
    first = compare_tasks(ds, ["mixing_energy", "energies"], resume_file=record, **kw)
    def scores(rows):  # everything but the timings
        return [(r["tasks"], r["target"], r["rmse_mean"], r["rmse_std"], r["r2_mean"], r["n_runs"]) for r in rows]

    assert scores(first) == scores(full)  # writing the records changes nothing
    lines = record.read_text().splitlines()
    assert len(lines) == 6  # 3 combinations × 2 runs
    record.write_text("\n".join(lines[:4]) + "\n" + lines[4][:50])  # killed while writing the fifth
    trained = []
    original = TaskComparisonPlan.run
    monkeypatch.setattr(TaskComparisonPlan, "run", lambda self, j, callback=None: trained.append(j) or
                        original(self, j, callback))
    rows, runs = compare_tasks(ds, ["mixing_energy", "energies"], resume_file=record, return_runs=True, **kw)
    assert trained == [4, 5]  # only what was not finished
    assert scores(rows) == scores(full)
    assert runs[0].model is None and runs[4].model is not None and len(runs[0].history.epoch) == 3
    trained.clear()
    compare_tasks(ds, ["mixing_energy", "energies"], resume_file=record, **{**kw, "epochs": 4})
    assert trained == list(range(6))  # other options: the old records do not count


def test_compare_tasks_vectorised_runs_give_the_same_table(ising, tmp_path):
    """The GPU default: the runs of one combination trained together, each with its own split,
    batch order and early stopping; the same models as one by one (to float rounding)."""
    kw = dict(n_runs=3, epochs=25, lr=3e-3, width=16, device="cpu", progress=False, patience=3)
    alone, runs_alone = compare_tasks(ising, ["energy", "site_value"], vectorise=False, return_runs=True, **kw)
    record = tmp_path / "runs.jsonl"
    together, runs = compare_tasks(ising, ["energy", "site_value"], vectorise=True, return_runs=True,
                                   resume_file=record, **kw)
    assert [(r["tasks"], r["target"]) for r in together] == [(r["tasks"], r["target"]) for r in alone]
    for a, b in zip(alone, together):
        np.testing.assert_allclose(b["rmse_mean"], a["rmse_mean"], rtol=1e-4)
        np.testing.assert_allclose(b["rmse_std"], a["rmse_std"], rtol=1e-3, atol=1e-7)
    assert [len(r.history.epoch) for r in runs] == [len(r.history.epoch) for r in runs_alone]
    assert min(len(r.history.epoch) for r in runs) < 25  # early stopping, model by model
    assert len(record.read_text().splitlines()) == 9  # every model recorded for a resume
    with pytest.raises(InputError, match="vectorise=True needs lattice models"):
        compare_tasks(ising, ["energy"], model="graph", n_runs=2, epochs=1, progress=False, vectorise=True,
                      cutoff=1.5, width=4, layers=1)

"""One experiment plan, one driver, one result type (issue 19): compare_tasks, compare_bases,
bag_of_models and the TaskComparison panel."""

import hashlib
import importlib
import json
import warnings

import numpy as np
import pytest

from mlexplore import InputError
from mlexplore.datasets import lattice_alloy
from mlexplore.descriptors import G2, SymmetryFunctions
from mlexplore.training import compare_bases, format_basis_table
from mlexplore.training.experiments import (BagRun, ExperimentResult, TaskComparisonOptions, TaskComparisonPlan,
                                            bag_of_models, compare_tasks, format_task_table, plan_task_comparison,
                                            run_experiment)
from mlexplore.training.task_records import plan_fingerprint

TARGETS = ["mixing_energy", "energies"]
KW = dict(model="lattice", n_runs=2, epochs=3, lr=1e-3, width=16, stratify=False, device="cpu")


@pytest.fixture(scope="module")
def cuau():
    return lattice_alloy("CuAu", n_per_composition=2, progress=False)


def _old_fingerprint(dataset, targets, options: dict, jobs) -> str:
    """The record-file fingerprint as computed before the options were typed (a dict of options)."""
    h = hashlib.sha256()
    for arr in (dataset.numbers, dataset.positions, dataset.cells, dataset.n_atoms):
        h.update(np.ascontiguousarray(arr).tobytes())
    for t in targets:
        h.update(t.encode())
        h.update(np.ascontiguousarray(dataset.label(t), dtype=np.float64).tobytes())
    h.update(json.dumps({k: v for k, v in options.items() if k != "device"}, sort_keys=True, default=str).encode())
    h.update(json.dumps([[r, list(c)] for r, c in jobs]).encode())
    return h.hexdigest()[:24]


# digests computed with the code before this change (dict options), on lattice_alloy("CuAu", 2)
KNOWN = [
    (dict(model="lattice", n_runs=2, epochs=3, lr=1e-3, width=16, stratify=False), "9785e6e0838d2ef6c2e43aac"),
    (dict(model="lattice", n_runs=2, epochs=3, lr=1e-3, width=16, stratify=False, patience=7, device="cpu"),
     "eb2b789e4bfc48732fddd173"),
    (dict(model="graph", n_runs=1, epochs=2, cutoff=3.2, vary="init", fractions=(0.7, 0.15, 0.15)),
     "08c8bd4b6047dd0409726a88"),
    (dict(model="lattice", n_runs=2, epochs=3, patience=None), "5c177d65ae3f71a76d89b127"),
]


@pytest.mark.parametrize("kw,digest", KNOWN)
def test_fingerprints_of_existing_record_files_stay_valid(cuau, kw, digest):
    plan = plan_task_comparison(cuau, TARGETS, **kw)
    assert plan_fingerprint(plan) == digest
    # the same algorithm on the dict layout the options had
    o = plan.options
    old = dict(model=o.model, fractions=tuple(o.fractions), stratify=o.stratify, epochs=o.epochs, lr=o.lr,
               batch_fraction=o.batch_fraction, elements=list(o.elements), device=o.device, seed=o.seed,
               vary=o.vary, model_kwargs=o.model_kwargs)
    if o.patience != 50:
        old["patience"] = o.patience
    assert _old_fingerprint(cuau, TARGETS, old, plan.jobs) == digest


def test_fingerprint_ignores_the_device_and_patience_50(cuau):
    base = plan_fingerprint(plan_task_comparison(cuau, TARGETS, **KW))
    assert plan_fingerprint(plan_task_comparison(cuau, TARGETS, **{**KW, "device": "auto"})) == base
    assert plan_fingerprint(plan_task_comparison(cuau, TARGETS, **KW, patience=50)) == base
    assert plan_fingerprint(plan_task_comparison(cuau, TARGETS, **KW, patience=49)) != base
    assert plan_fingerprint(plan_task_comparison(cuau, TARGETS, **{**KW, "epochs": 4})) != base
    assert "patience" not in TaskComparisonOptions().fingerprint_fields()
    assert TaskComparisonOptions(patience=None).fingerprint_fields()["patience"] is None


def test_typed_options_reject_unknown_names():
    o = TaskComparisonOptions.from_keywords(model="lattice", lr=1e-3, width=8)
    assert o.lr == 1e-3 and o.model_kwargs == {"width": 8} and o.fractions == (0.8, 0.1, 0.1)
    with pytest.raises(InputError, match=r"unknown option\(s\) lrr for the lattice model") as err:
        TaskComparisonOptions.from_keywords(lrr=1e-3)
    assert err.value.field == "lrr"
    with pytest.raises(InputError, match=r"unknown option\(s\) widht; the options are model") as err:
        TaskComparisonOptions.from_dict({"epochs": 3, "widht": 8})
    assert err.value.field == "widht"
    assert o.replace(model="graph").model_kwargs == {"width": 8}  # width is a GraphNet setting too
    with pytest.raises(InputError, match="activation for the graph model; it takes cutoff"):
        o.replace(activation="relu").replace(model="graph")  # activation is not
    assert o.replace(epochs=7).epochs == 7 and o.replace(epochs=7).model_kwargs == {"width": 8}
    with pytest.raises(InputError, match="vary must be"):
        TaskComparisonOptions(vary="data")
    with pytest.raises(InputError, match="model must be"):
        TaskComparisonOptions.from_keywords(model="transformer")
    # the dict access of before, kept for a release with a warning
    with pytest.warns(DeprecationWarning, match="options.model_kwargs"):
        assert o["model_kwargs"] == {"width": 8}
    assert "patience" not in o and "model" in o


def test_compare_tasks_result_rows_runs_and_tables(cuau):
    result = compare_tasks(cuau, TARGETS, progress=False, **KW)
    assert isinstance(result, ExperimentResult) and isinstance(result, list)
    assert len(result) == 4 and len(result.runs) == 6 and result.jobs == list(range(6))
    assert isinstance(result.plan, TaskComparisonPlan) and result.plan.options.model_kwargs == {"width": 16}
    assert result.to_text() == format_task_table(result.rows)
    md = result.to_markdown().splitlines()
    assert md[0] == "| model | mixing_energy RMSE | energies RMSE | time (s) |" and md[1] == "|---|---|---|---|"
    mtl = next(r for r in result if r["tasks"] == "mixing_energy+energies" and r["target"] == "energies")
    assert md[4].startswith("| MTL mixing_energy+energies |") and f"{mtl['rmse_mean']:.4g} ± " in md[4]
    assert result.variants == ["STL mixing_energy", "STL energies", "MTL mixing_energy+energies"]
    errs = result.errors("MTL mixing_energy+energies", "energies")
    assert len(errs) == 2
    rmse_runs = [float(np.sqrt(np.mean(e ** 2))) for e in errs]
    assert np.mean(rmse_runs) == pytest.approx(mtl["rmse_mean"]) and np.std(rmse_runs) == pytest.approx(mtl["rmse_std"])
    with pytest.raises(InputError, match="name the target"):
        result.errors("MTL mixing_energy+energies")
    with pytest.raises(InputError, match="no run of 'STL charge'"):
        result.errors("STL charge")
    with pytest.warns(DeprecationWarning, match="return_runs"):
        rows, runs = compare_tasks(cuau, TARGETS, progress=False, return_runs=True, **KW)
    assert [r["rmse_mean"] for r in rows] == [r["rmse_mean"] for r in result] and len(runs) == 6


def test_driver_calls_back_and_stops(cuau):
    plan = plan_task_comparison(cuau, TARGETS, **KW)
    epochs, finished = [], []
    result = run_experiment(plan, progress=False, on_epoch=lambda j, e, h: epochs.append((j, e)),
                            on_finished=lambda j, run, done: finished.append((j, len(done))),
                            should_stop=lambda: len(finished) >= 2)
    assert finished == [(0, 1), (1, 2)] and len(result.runs) == 2 and result.jobs == [0, 1]
    assert epochs == [(j, e) for j in (0, 1) for e in range(3)]
    assert {r["tasks"] for r in result} == {"mixing_energy", "energies"}
    # vectorised (the CUDA default; allowed on a CPU): one group per combination, a callback per member
    seen, groups = set(), []
    together = run_experiment(plan, progress=False, vectorise=True, on_start=groups.append,
                              on_epoch=lambda j, e, h: seen.add((j, e)))
    assert groups == [[0, 3], [1, 4], [2, 5]] and seen == {(j, e) for j in range(6) for e in range(3)}
    assert together.jobs == list(range(6)) and [r.tasks for r in together.runs] == [c for _, c in plan.jobs]
    # a callback that returns False ends that model after its first epoch
    result = run_experiment(plan, progress=False, on_epoch=lambda j, e, h: False)
    assert all(len(r.history.epoch) == 1 for r in result.runs)


def test_compare_bases_and_the_bag_return_the_same_type(cuau):
    radial = [G2(eta, 0.0) for eta in (0.5, 2.0)]
    bases = {"two": SymmetryFunctions(radial, cutoff=4.5, elements=["Cu", "Au"]),
             "one": SymmetryFunctions(radial[:1], cutoff=4.5, elements=["Cu", "Au"])}
    result = compare_bases(cuau, bases, n_runs=2, epochs=3, device="cpu", progress=False)
    assert isinstance(result, ExperimentResult) and [r["basis"] for r in result] == ["two", "one"]
    assert result.to_text() == format_basis_table(result.rows)
    md = result.to_markdown()
    assert md.splitlines()[0].startswith("| basis | features | energy RMSE (meV/atom)") and "/2 |" in md
    assert sum(r["best_runs"] for r in result) == 2
    # paired: both bases of a run see the same test structures
    for r in range(2):
        a, b = (x for x in result.runs if x.run == r)
        np.testing.assert_array_equal(a["test_rows"], b["test_rows"])
    errs = result.errors("two")
    assert len(errs) == 2 and np.sqrt(np.mean(errs[0] ** 2)) == pytest.approx(result.runs[0]["energy_rmse"])
    with pytest.raises(InputError, match="keeps no record file"):
        from mlexplore.training.basis_comparison import BasisComparisonPlan

        run_experiment(BasisComparisonPlan(cuau, bases, n_runs=1), resume_file="x.jsonl", progress=False)

    truth = cuau.label("energy") / cuau.n_atoms
    bag = bag_of_models(cuau, lambda tr, va, seed: (lambda d: d.label("energy") / d.n_atoms + 0.01 * seed),
                        n_models=3, val_fraction=0.25)
    assert isinstance(bag, ExperimentResult) and set(bag.keys()) == {
        "aggregate", "concatenated_validation", "per_model", "predictions", "validation_ids"}
    assert bag["predictions"].shape == (3, len(cuau)) and all(isinstance(r, BagRun) for r in bag.runs)
    np.testing.assert_allclose(bag["predictions"].mean(0), truth + 0.01)
    (row,) = bag
    assert row["n_runs"] == 3 and row["rmse_mean"] == pytest.approx(0.01)
    assert row["rmse_std"] == pytest.approx(0.01 * np.sqrt(2 / 3))  # per-model RMSEs 0, 0.01, 0.02
    assert row["aggregate_rmse"] == pytest.approx(0.01) and bag.errors("bag")[2] == pytest.approx(0.02)
    assert "bag of 3" in bag.to_text() and bag.to_markdown().startswith("| models | validation RMSE")
    with pytest.raises(KeyError, match="aggregate"):
        ExperimentResult([], [])["aggregate"]
    # the bag's former dict: membership, items and values of its keys
    assert "aggregate" in bag and "nothing" not in bag and row in bag
    assert dict(bag.items())["per_model"] is bag["per_model"] and len(list(bag.values())) == 5


def test_model_and_n_runs_are_still_taken_by_position(cuau):
    """The signature before the options were typed: (dataset, targets, combinations, model, n_runs, …)."""
    from mlexplore.training import plan_task_comparison

    plan = plan_task_comparison(cuau, ["mixing_energy"], None, "graph", 2, width=8)
    assert plan.options.model == "graph" and len(plan.jobs) == 2 and plan.options.model_kwargs == {"width": 8}
    assert plan_task_comparison(cuau, ["mixing_energy"]).options.model == "lattice"


def test_the_panel_resumes_and_holds_the_same_result(cuau, tmp_path, monkeypatch):
    from mlexplore.widgets import TaskComparison

    record = tmp_path / "panel.jsonl"
    tc = TaskComparison(cuau, epochs=3, n_runs=2, device="cpu", resume_file=record, lr=1e-3, width=16,
                        stratify=False)
    tc.targets.value = tuple(TARGETS)
    tc.start()
    assert tc.status.value.startswith("done"), tc.status.value
    assert isinstance(tc.result, ExperimentResult) and tc.rows == tc.result.rows and tc.runs == tc.result.runs
    assert len(record.read_text().splitlines()) == 6
    # the panel's plan is compare_tasks's: the same table for the same options
    same = compare_tasks(cuau, TARGETS, progress=False, n_runs=2, epochs=3,
                         lr=1e-3, width=16, stratify=False, device="cpu")

    def scores(rows):
        return [(r["tasks"], r["target"], r["rmse_mean"], r["rmse_std"]) for r in rows]

    assert scores(same) == scores(tc.rows)
    trained = []
    original = TaskComparisonPlan.run
    monkeypatch.setattr(TaskComparisonPlan, "run", lambda self, j, callback=None: trained.append(j) or
                        original(self, j, callback))
    again = TaskComparison(cuau, epochs=3, n_runs=2, device="cpu", resume_file=record, lr=1e-3, width=16,
                           stratify=False)
    again.targets.value = tuple(TARGETS)
    again.start()
    assert trained == [] and again.status.value.startswith("done"), again.status.value
    assert scores(again.rows) == scores(tc.rows) and all(r.model is None for r in again.runs)
    assert again.progress.value == 6 and all(b.bar_style == "success" for b in again.model_bars.children)
    assert all(len(tr.x) == 3 for tr in again.curves.data)  # the recorded learning curves are drawn
    assert len(again.parity.data) == 5  # 2 targets × (STL, MTL) and y = x
    again.epochs.value = 4  # other options: the records do not count
    again.start()
    assert trained == list(range(6)) and len(record.read_text().splitlines()) == 12


def test_panel_figures_come_from_viz(cuau):
    from mlexplore.viz import task_error_bands, task_parity

    result = compare_tasks(cuau, TARGETS, progress=False, **KW)
    fig = task_parity(result.runs)
    names = [t.name for t in fig.data]
    assert names == ["mixing_energy: STL mixing_energy", "mixing_energy: MTL mixing_energy+energies",
                     "energies: STL energies", "energies: MTL mixing_energy+energies", "y = x"]
    ref = np.concatenate([r.reference["energies"] for r in result.runs if r.tasks == ("energies",)])
    np.testing.assert_allclose(fig.data[2].x, (ref - ref.mean()) / ref.std())
    bands = task_error_bands(result.runs)
    assert any("MTL" in (t.name or "") for t in bands.data)
    assert bands.layout.xaxis.title.text == "error / std of the target"
    with pytest.raises(InputError, match="no runs"):
        task_parity([])


def test_old_modules_warn_and_reexport():
    import mlexplore.training.protocols as protocols
    import mlexplore.training.tasks as tasks

    with pytest.warns(DeprecationWarning, match="mlexplore.training.experiments"):
        importlib.reload(tasks)
    assert tasks.compare_tasks is compare_tasks and tasks.TaskComparisonPlan is TaskComparisonPlan
    with pytest.warns(DeprecationWarning, match="mlexplore.training.baselines"):
        importlib.reload(protocols)
    from mlexplore.training.baselines import fit_baseline

    assert protocols.fit_baseline is fit_baseline and protocols.bag_of_models is bag_of_models
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.import_module("mlexplore.training.experiments")
        importlib.import_module("mlexplore.training.baselines")

"""`mlexplore train` / `mlexplore evaluate` and the library calls under them (train_potential,
evaluate_potential, save_basis / load_basis)."""

import contextlib
import io
import re

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlexplore import InputError, StructureDataset
from mlexplore.cli import main
from mlexplore.datasets import gold
from mlexplore.descriptors import G2, SymmetryFunctions, load_basis, resolve_basis, save_basis
from mlexplore.io import read
from mlexplore.models import BPNN
from mlexplore.training import evaluate_potential, load_model, predict, train_potential


def _basis(elements=("Au",)):
    return SymmetryFunctions([G2(eta, rs) for eta in (1.0, 4.0) for rs in np.linspace(2.2, 5.2, 7)], cutoff=5.5,
                             elements=list(elements))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """gold structures → `mlexplore train` → a model file, its printout and a second (unseen) file."""
    root = tmp_path_factory.mktemp("train")
    gold(n_per_group=6, progress=False, cache=False).save(root / "au.xyz")
    gold(n_per_group=2, seed=5, progress=False, cache=False).save(root / "unseen.xyz")
    save_basis(_basis(), root / "basis.json")
    argv = ["train", str(root / "au.xyz"), "--out", str(root / "au.pt"), "--basis", str(root / "basis.json"),
            "--epochs", "40", "--lr", "5e-3", "--batch-size", "8", "--device", "cpu", "--quiet",
            "--report", str(root / "train.html")]
    out = io.StringIO()  # capsys is function-scoped: capture by hand
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return root, rc, out.getvalue()


def _number(text, pattern):
    return float(re.search(pattern, text).group(1))


def test_train_writes_a_model_that_learnt_the_energies(trained):
    root, rc, out = trained
    assert rc == 0
    assert "split 24/3/3" in out and "targets energy+forces" in out and "test set" in out
    model, extra = load_model(root / "au.pt", return_extra=True)
    assert extra["settings"]["basis"] == "custom" and extra["settings"]["split_sizes"] == [24, 3, 3]
    test = extra["metrics"]["test"]
    # far better than predicting the mean energy per atom, forces correlated with EMT's
    assert test["energy"]["rmse"] < 0.6 * test["energy"]["baseline_rmse"]
    assert test["forces"]["r2"] > 0.7
    # the printed test RMSE is the stored one
    test_block = out[out.index("test set"):]
    assert _number(test_block, r"energy  RMSE ([\d.]+) meV/atom") == pytest.approx(test["energy"]["rmse"], abs=0.01)
    assert len(extra["history"]["epoch"]) == 40
    page = (root / "train.html").read_text()
    assert page.count('class="plotly-graph-div"') == 3 and "Learning curves" in page


def test_evaluate_prints_what_the_library_computes_and_writes_predictions(trained, capsys):
    root, _, _ = trained
    pred_file = root / "pred.extxyz"
    assert main(["evaluate", str(root / "au.pt"), str(root / "unseen.xyz"), "--by-tag",
                 "--predictions", str(pred_file), "--report", str(root / "eval.html")]) == 0
    out = capsys.readouterr().out
    model, data = load_model(root / "au.pt"), read(root / "unseen.xyz")
    m = evaluate_potential(model, data)
    assert _number(out, r"energy  RMSE ([\d.]+) meV/atom") == pytest.approx(m["energy"]["rmse"], abs=0.01)
    assert _number(out, r"forces  RMSE ([\d.]+) eV/Å") == pytest.approx(m["forces"]["rmse"], abs=1e-4)
    assert "cluster" in out and "surface-111" in out  # --by-tag
    written = read(pred_file)
    p = predict(model, data)
    np.testing.assert_allclose(written.label("energy_predicted"), p["energy"], rtol=1e-12)
    np.testing.assert_allclose(written.label("forces_predicted"), p["forces"], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(written.label("energy"), data.label("energy"))  # the references are kept
    assert (root / "eval.html").read_text().count('class="plotly-graph-div"') == 2


def test_evaluate_scores_against_the_mean_baseline():
    ds = gold(n_per_group=1, progress=False, cache=False)
    torch.manual_seed(0)
    model = BPNN(_basis(), hidden=(4,)).double()
    m = evaluate_potential(model, ds, forces=False)
    e = 1000 * ds.label("energy") / ds.n_atoms
    assert m["energy"]["baseline_rmse"] == pytest.approx(np.sqrt(np.mean((e - e.mean()) ** 2)))
    assert "forces" not in m and m["n_structures"] == len(ds)


def test_basis_file_round_trip(tmp_path):
    sf = _basis(("Au", "Cu"))
    again = load_basis(save_basis(sf, tmp_path / "b.json"))
    assert again.elements == ["Au", "Cu"] and again.feature_names == sf.feature_names
    ds = gold(n_per_group=1, progress=False, cache=False)[:2]
    np.testing.assert_array_equal(again.compute(ds), sf.compute(ds))


@pytest.mark.parametrize("content, message", [
    ('{"terms": [\n  {"type": }', r"b\.json, line 2: not valid JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"terms": []}', "lacks"),
    ('{"terms": [{"type": "G77"}], "cutoff": 5, "cutoff_function": "cosine", "elements": null}',
     "unknown descriptor term type 'G77'"),
])
def test_bad_basis_files_are_named(tmp_path, content, message):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_basis(path)
    assert "b.json" in str(info.value)


def test_train_potential_bad_input():
    ds = gold(n_per_group=1, progress=False, cache=False)
    with pytest.raises(InputError, match="unknown basis 'nope'"):
        train_potential(ds, "nope", progress=False)
    with pytest.raises(InputError, match="spin terms but the data have no per-atom 'magmoms'"):
        train_potential(ds, "bloore-fe-sannip", progress=False)
    with pytest.raises(InputError, match=r"contain \['Au'\], which the basis"):
        resolve_basis(_basis(("Cu",)), ["Au"])
    with pytest.raises(InputError, match="element-agnostic"):
        resolve_basis(SymmetryFunctions([G2(1.0, 0.0)], cutoff=5.0), ["Au"])
    with pytest.raises(InputError, match="sum to 1"):
        train_potential(ds, _basis(), fractions=(0.5, 0.6), progress=False)
    with pytest.raises(InputError, match=r"2 \(train, validation\) or 3"):
        train_potential(ds, _basis(), fractions=(0.4, 0.3, 0.2, 0.1), progress=False)
    with pytest.raises(InputError, match="epochs must be ≥ 1"):
        train_potential(ds, _basis(), epochs=0, progress=False)
    with pytest.raises(InputError, match="lr must be positive"):
        train_potential(ds, _basis(), lr=0.0, progress=False)
    with pytest.raises(InputError, match="separate test set"):
        train_potential(ds, _basis(), test=ds, fractions=(0.8, 0.1, 0.1), progress=False)
    unlabelled = StructureDataset.from_atoms([bulk("Au", "fcc", a=4.08, cubic=True)] * 3)
    with pytest.raises(InputError, match="no 'energy' label"):
        train_potential(unlabelled, _basis(), progress=False)
    with pytest.raises(InputError, match="no 'energy' label"):
        evaluate_potential(BPNN(_basis()), unlabelled)


@pytest.mark.parametrize("argv, message", [
    (["--basis", "nope"], "neither a preset"),
    (["--basis", "bloore-fe-sannip"], "spin terms"),
    (["--basis", "loeffler-au", "--hidden", "25,x"], "--hidden expects integers"),
    (["--basis", "loeffler-au", "--split", "0.5,0.6"], "sum to 1"),
    (["--basis", "missing.json"], "no such basis file"),
])
def test_train_cli_errors_name_the_option(tmp_path, capsys, argv, message):
    data = tmp_path / "au.xyz"
    gold(n_per_group=1, progress=False, cache=False).save(data)
    assert main(["train", str(data), "--out", str(tmp_path / "m.pt"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlexplore train: error:") and message in err
    assert not (tmp_path / "m.pt").exists()


def test_train_with_a_separate_test_file(tmp_path, capsys):
    gold(n_per_group=2, progress=False, cache=False).save(tmp_path / "a.xyz")
    gold(n_per_group=1, seed=3, progress=False, cache=False).save(tmp_path / "b.xyz")
    assert main(["train", str(tmp_path / "a.xyz"), "--test", str(tmp_path / "b.xyz"), "--basis", "loeffler-au",
                 "--out", str(tmp_path / "m.pt"), "--epochs", "2", "--energy-only", "--quiet", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "split 9/1/5" in out and "targets energy;" in out  # 0.9/0.1 of the 10, the 5 of the test file
    _, extra = load_model(tmp_path / "m.pt", return_extra=True)
    assert extra["metrics"]["test"]["n_structures"] == 5 and "forces" not in extra["metrics"]["test"]


def test_evaluate_cli_errors(tmp_path, capsys):
    data = tmp_path / "au.xyz"
    gold(n_per_group=1, progress=False, cache=False).save(data)
    assert main(["evaluate", str(tmp_path / "none.pt"), str(data)]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_text("not a model")
    assert main(["evaluate", str(tmp_path / "junk.pt"), str(data)]) == 2
    assert "not a readable mlexplore model file" in capsys.readouterr().err


def test_compare_cli_prints_the_table_and_resumes(tmp_path, capsys, monkeypatch):
    from mlexplore.datasets import lattice_alloy
    from mlexplore.training import compare_tasks
    from mlexplore.training.tasks import TaskComparisonPlan

    data = tmp_path / "cuau.xyz"
    ds = lattice_alloy("CuAu", n_per_composition=2, progress=False)
    ds.save(data)
    argv = ["compare", str(data), "--targets", "mixing_energy,energies", "--model", "lattice", "--runs", "2",
            "--epochs", "3", "--width", "16", "--no-stratify", "--device", "cpu", "--quiet",
            "--resume", str(tmp_path / "runs.jsonl"), "--report", str(tmp_path / "cmp.html")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "STL mixing_energy" in out and "MTL mixing_energy+energies" in out and "R²" in out
    # the printed table is the library's, on the same data and options
    rows = compare_tasks(read(data), ["mixing_energy", "energies"], model="lattice", n_runs=2, epochs=3, width=16,
                         lr=1e-4, stratify=False, fractions=(0.7, 0.15, 0.15), progress=False, device="cpu")
    first = next(r for r in rows if r["tasks"] == "mixing_energy")
    assert f"{first['rmse_mean']:.4g}" in out
    page = (tmp_path / "cmp.html").read_text()
    assert "Test-error PDFs, energies" in page and page.count('class="plotly-graph-div"') == 3
    trained = []
    original = TaskComparisonPlan.run
    monkeypatch.setattr(TaskComparisonPlan, "run", lambda self, j, callback=None: trained.append(j) or
                        original(self, j, callback))
    assert main(argv) == 0  # a rerun reads every model back from the record
    assert trained == [] and f"{first['rmse_mean']:.4g}" in capsys.readouterr().out


def test_compare_cli_patience_stops_models_early(tmp_path):
    import json

    from mlexplore.datasets import lattice_alloy

    data = tmp_path / "cuau.xyz"
    lattice_alloy("CuAu", n_per_composition=2, progress=False).save(data)
    argv = ["compare", str(data), "--targets", "mixing_energy", "--model", "lattice", "--runs", "1", "--epochs", "40",
            "--width", "8", "--no-stratify", "--device", "cpu", "--quiet", "--resume", str(tmp_path / "runs.jsonl")]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, "--patience", "0"]) == 0
    record = json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[0])
    assert len(record["history"]["epoch"]) < 40


@pytest.mark.parametrize("extra, message", [
    (["--targets", "nope"], "target 'nope' is not in the dataset"),
    (["--targets", "mixing_energy", "--model", "lattice", "--cutoff", "7"], "--cutoff and --layers are GraphNet"),
    (["--targets", "mixing_energy", "--combinations", "mixing_energy+energies"], "not among the targets"),
])
def test_compare_cli_errors(tmp_path, capsys, extra, message):
    from mlexplore.datasets import lattice_alloy

    data = tmp_path / "cuau.xyz"
    lattice_alloy("CuAu", n_per_composition=1, progress=False).save(data)
    assert main(["compare", str(data), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlexplore compare: error:") and message in err


def test_featurise_cli_writes_the_descriptor_and_reports_correlations(tmp_path, capsys):
    data = tmp_path / "au.xyz"
    ds = gold(n_per_group=1, progress=False, cache=False)
    ds.save(data)
    basis = _basis()
    save_basis(basis, tmp_path / "b.json")
    out = tmp_path / "f.npz"
    assert main(["featurise", str(data), "--basis", str(tmp_path / "b.json"), "--out", str(out), "--quiet",
                 "--report", str(tmp_path / "f.html")]) == 0
    text = capsys.readouterr().out
    z = np.load(out)
    np.testing.assert_allclose(z["features"], basis.compute(read(data)).numpy(), rtol=1e-12)
    assert list(z["feature_names"]) == basis.feature_names
    np.testing.assert_array_equal(z["structure"], np.repeat(np.arange(len(ds)), ds.n_atoms))
    assert f"{ds.n_atoms.sum()} atoms × 14 features" in text and "redundant pairs" in text and "PC1" in text
    assert (tmp_path / "f.html").read_text().count('class="plotly-graph-div"') == 2
    assert main(["featurise", str(data), "--basis", "bloore-fe-sannip", "--out", str(out)]) == 2
    assert "spin terms need per-atom magnetic moments" in capsys.readouterr().err


def test_train_potential_keeps_the_predictions_it_scored():
    """The per-set predictions on the result are the model's, and give the stored scores."""
    ds = gold(n_per_group=2, progress=False, cache=False)
    result = train_potential(ds, _basis(), fractions=(0.6, 0.2, 0.2), epochs=3, device="cpu", progress=False)
    assert set(result.predictions) == set(result.metrics) == {"train", "val", "test"}
    again = predict(result.model, result.test, forces=True)
    np.testing.assert_allclose(result.predictions["test"]["energy"], again["energy"], rtol=1e-6)
    np.testing.assert_allclose(result.predictions["test"]["forces"], again["forces"], rtol=1e-5, atol=1e-6)
    per_atom = 1000 * (result.predictions["test"]["energy"] - result.test.label("energy")) / result.test.n_atoms
    assert np.sqrt(np.mean(per_atom ** 2)) == pytest.approx(result.metrics["test"]["energy"]["rmse"], rel=1e-6)

"""Bag of models (002 §4.2) and scikit-learn baselines."""

import numpy as np
import pytest
import torch

from mlexplore import InputError
from mlexplore.data import random_split
from mlexplore.datasets import lattice_alloy
from mlexplore.descriptors import G2, SymmetryFunctions
from mlexplore.models import BPNN
from mlexplore.training import bag_of_models, fit, fit_baseline, predict, structure_features


@pytest.fixture(scope="module")
def alloy():
    return lattice_alloy("CuAu", n_per_composition=3, rattle=0.05, progress=False)


def test_bag_of_models_with_a_known_predictor(alloy):
    """A 'model' that predicts the truth plus its seed: aggregate and pooled RMSEs are known exactly."""
    truth = alloy.label("energy") / alloy.n_atoms

    def train_and_predict(train, val, seed):
        return lambda d: d.label("energy") / d.n_atoms + 0.01 * (seed - 1)

    res = bag_of_models(alloy, train_and_predict, n_models=3, val_fraction=0.25, seed=0)
    assert res["aggregate"]["rmse"] == pytest.approx(0.0, abs=1e-12)  # offsets −0.01, 0, +0.01 average out
    n_val = [len(v) for v in res["validation_ids"]]
    expected = np.sqrt((n_val[0] * 1e-4 + n_val[2] * 1e-4) / sum(n_val))
    assert res["concatenated_validation"]["rmse"] == pytest.approx(expected)
    assert res["predictions"].shape == (3, len(alloy))
    assert not all(np.array_equal(res["validation_ids"][0], v) for v in res["validation_ids"][1:])
    np.testing.assert_allclose(res["predictions"].mean(0), truth)


def test_bag_of_bpnn_models(alloy):
    def train_and_predict(train, val, seed):
        torch.manual_seed(seed)
        model = BPNN(SymmetryFunctions([G2(1.0, r) for r in (2.5, 3.0, 3.7, 4.3)], cutoff=5.0,
                                       elements=["Cu", "Au"]), hidden=(8,))
        fit(model, train, val, targets=["energy"], epochs=30, lr=1e-2, batch_size=16, progress=False, device="cpu")
        return lambda d: predict(model, d, forces=False)["energy"] / d.n_atoms

    res = bag_of_models(alloy, train_and_predict, n_models=2, seed=1)
    assert res["aggregate"]["rmse"] < 0.05 and res["concatenated_validation"]["n"] > 0
    assert len(res["per_model"]) == 2


@pytest.mark.parametrize("kind", ["ridge", "kernel_ridge", "gradient_boosting"])
def test_baselines_on_descriptor_sums(kind):
    from mlexplore.datasets import gold

    ds = gold(n_per_group=12, progress=False)
    sf = SymmetryFunctions([G2(eta, r) for eta in (1.0, 4.0) for r in np.linspace(2.2, 5.2, 7)], cutoff=5.5,
                           elements=["Au"])
    x = structure_features(ds, sf)
    y = ds.label("energy")  # EMT total energies: strain, surfaces and clusters spread them over ~20 eV
    assert x.shape == (len(ds), 14)
    tr, te = random_split(ds, (0.8, 0.2), seed=0)
    pos = {int(i): k for k, i in enumerate(ds.ids)}
    itr, ite = [pos[int(i)] for i in tr.ids], [pos[int(i)] for i in te.ids]
    est, scores = fit_baseline(kind, x[itr], y[itr], x[ite], y[ite])
    assert scores["n"] == len(ite) and np.isfinite(scores["rmse"])
    assert scores["r2"] > 0.8
    np.testing.assert_allclose(est.predict(x[ite]).shape, (len(ite),))


def test_baseline_errors():
    with pytest.raises(InputError, match="unknown baseline"):
        fit_baseline("forest_of_doom", np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(InputError, match="3 samples but 2 targets"):
        fit_baseline("ridge", np.zeros((3, 2)), np.zeros(2))


def _fe2_with_spin_energy(n_geometries=30, coupling=-0.1, seed=0):
    """Fe2 BCC cells, each geometry once ferromagnetic and once antiferromagnetic; the energy is a
    volume term plus ``coupling × ŝ1·ŝ2`` (eV per cell): geometry alone cannot tell the two apart."""
    from ase.build import bulk

    from mlexplore import StructureDataset

    rng = np.random.default_rng(seed)
    images, energies, moments, groups = [], [], [], []
    for a in rng.uniform(2.78, 2.90, n_geometries):
        for name, sign in (("FM", 1.0), ("AFM", -1.0)):
            atoms = bulk("Fe", "bcc", a=a, cubic=True)
            images.append(atoms)
            energies.append(2 * 10.0 * (a - 2.84) ** 2 + coupling * sign)
            moments.append([2.2, 2.2 * sign])
            groups.append(name)
    ds = StructureDataset.from_atoms(images)
    ds.add_label("energy", np.array(energies), per_atom=False)
    ds.add_label("magmoms", np.concatenate(moments), per_atom=True)
    return ds, groups


def test_compare_bases_spin_terms_resolve_what_geometry_cannot():
    from mlexplore.descriptors import SpinPair, SpinSelf
    from mlexplore.training import compare_bases, format_basis_table

    ds, groups = _fe2_with_spin_energy()
    radial = [G2(eta, 0.0) for eta in (0.2, 0.5, 1.0, 2.0)]
    bases = {"geometry": SymmetryFunctions(radial, cutoff=4.5, elements=["Fe"]),
             "geometry + spin": SymmetryFunctions(radial + [SpinSelf(1), SpinPair("dot", 1)], cutoff=4.5,
                                                  elements=["Fe"])}
    rows, runs = compare_bases(ds, bases, n_runs=2, groups=groups, epochs=120, lr=1e-2, device="cpu",
                               progress=False, return_runs=True)
    geo, spin = rows
    # FM and AFM of one geometry differ by 0.2 eV per cell: geometry alone is at best ±50 meV/atom off
    assert geo["energy_rmse_mean"] > 30.0
    assert spin["energy_rmse_mean"] < 0.3 * geo["energy_rmse_mean"]
    assert spin["best_runs"] == 2 and geo["best_runs"] == 0
    assert spin["n_features"] == geo["n_features"] + 2
    assert set(geo["groups"]) == {"FM", "AFM"} and all(m[2] == 2 for m in geo["groups"].values())
    # both bases saw the same test structures in each run (a paired comparison)
    for r in range(2):
        a, b = (x for x in runs if x["run"] == r)
        np.testing.assert_array_equal(a["test_rows"], b["test_rows"])
    # the predict-the-training-mean baseline, recomputed from run 0's split
    tr, _, te = random_split(ds, (0.7, 0.15, 0.15), seed=0)
    ref = 1000.0 * te.label("energy") / te.n_atoms
    expected = np.sqrt(np.mean((ref - np.mean(1000.0 * tr.label("energy") / tr.n_atoms)) ** 2))
    assert runs[0]["baseline_rmse"] == pytest.approx(expected)
    assert geo["baseline_rmse_mean"] == spin["baseline_rmse_mean"]  # the same splits for both
    assert spin["energy_rmse_mean"] < 0.3 * spin["baseline_rmse_mean"] and spin["energy_r2_mean"] > 0.9
    table = format_basis_table(rows)
    assert "geometry + spin" in table and "2/2" in table and "AFM" in table and "training mean" in table


def test_compare_bases_bad_input():
    from mlexplore.training import compare_bases

    ds, groups = _fe2_with_spin_energy(n_geometries=3)
    basis = SymmetryFunctions([G2(0.5, 0.0)], cutoff=4.5)
    with pytest.raises(InputError, match="no bases"):
        compare_bases(ds, {}, progress=False)
    with pytest.raises(InputError, match="groups has 2 labels"):
        compare_bases(ds, {"g": basis}, groups=groups[:2], progress=False)
    with pytest.raises(InputError, match="n_runs"):
        compare_bases(ds, {"g": basis}, n_runs=0, progress=False)

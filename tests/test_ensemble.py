"""The vectorised ensemble gives the same models as training the members one by one."""

import numpy as np
import pytest
import torch

from mlexplore import InputError
from mlexplore.data import stratified_split
from mlexplore.datasets import ising_lattice
from mlexplore.models import GraphNet, LatticeMLP
from mlexplore.training import fit_ensemble, fit_tasks, predict_tasks


def test_vectorised_ensemble_equals_sequential_members():
    ds = ising_lattice(L=3, n_per_composition=6, progress=False)
    train, val, test = stratified_split(ds, (0.7, 0.15, 0.15), seed=0)
    tasks = {"energy": "structure", "site_value": "site"}

    def make(k):
        torch.manual_seed(100 + k)
        return LatticeMLP(27, ["H", "He"], tasks, width=16)

    members, hist = fit_ensemble(make, 3, train, val, epochs=15, lr=3e-3, device="cpu", dtype=torch.float64,
                                 seed=7)
    for k in range(3):
        alone = make(k).double()
        h = fit_tasks(alone, train, val, epochs=15, lr=3e-3, patience=None, device="cpu", dtype=torch.float64,
                      seed=7)
        np.testing.assert_allclose(hist[k].val_loss, h.val_loss, rtol=1e-9)
        a, b = predict_tasks(members[k], test), predict_tasks(alone, test)
        for t in tasks:
            np.testing.assert_allclose(a[t], b[t], rtol=1e-9, atol=1e-12)
    assert not np.allclose(hist[0].val_loss, hist[1].val_loss)  # different initialisations


def test_ensemble_refuses_graph_models():
    ds = ising_lattice(L=3, n_per_composition=2, progress=False)
    with pytest.raises(InputError, match="tensor inputs"):
        fit_ensemble(lambda k: GraphNet(["H", "He"], {"energy": "structure"}, cutoff=1.5, width=4, layers=1), 2, ds,
                     epochs=1, device="cpu")


def test_members_with_their_own_splits_and_early_stopping_equal_fit_tasks():
    """What compare_tasks does on a GPU: the runs of one task combination, each with its own
    split, batch order and early stopping, trained together — model by model the same result."""
    from mlexplore.training import fit_task_members

    ds = ising_lattice(L=3, n_per_composition=6, progress=False)
    tasks = {"energy": "structure", "site_value": "site"}
    splits = [stratified_split(ds, (0.7, 0.15, 0.15), seed=s) for s in (1, 2, 3)]

    def make(k):
        torch.manual_seed(10 + k)
        return LatticeMLP(27, ["H", "He"], tasks, width=8)

    members = [make(k).double() for k in range(3)]
    hists = fit_task_members(members, [s[0] for s in splits], [s[1] for s in splits], seeds=[5, 6, 7], epochs=40,
                             lr=2e-2, patience=4, device="cpu", dtype=torch.float64)
    lengths = []
    for k, (train, val, test) in enumerate(splits):
        alone = make(k).double()
        h = fit_tasks(alone, train, val, epochs=40, lr=2e-2, patience=4, device="cpu", dtype=torch.float64,
                      seed=5 + k)
        assert hists[k].epoch == h.epoch and hists[k].stopped_early == h.stopped_early
        np.testing.assert_allclose(hists[k].val_loss, h.val_loss, rtol=1e-9)
        np.testing.assert_allclose(hists[k].train_loss, h.train_loss, rtol=1e-9)
        np.testing.assert_allclose(hists[k].metrics["val_site_value_rmse"], h.metrics["val_site_value_rmse"],
                                   rtol=1e-9)
        a, b = predict_tasks(members[k], test), predict_tasks(alone, test)
        for t in tasks:
            np.testing.assert_allclose(a[t], b[t], rtol=1e-9, atol=1e-12)
        lengths.append(len(h.epoch))
    assert min(lengths) < 40 and len(set(lengths)) > 1  # early stopping happened, member by member


def test_members_need_equal_sizes():
    from mlexplore.training import fit_task_members

    ds = ising_lattice(L=3, n_per_composition=4, progress=False)
    tasks = {"energy": "structure"}
    with pytest.raises(InputError, match="differ in size"):
        fit_task_members([LatticeMLP(27, ["H", "He"], tasks, width=4) for _ in range(2)], [ds, ds[:-1]],
                         epochs=1, device="cpu")

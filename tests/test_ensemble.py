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

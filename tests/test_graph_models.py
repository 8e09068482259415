"""GraphNet (001): graph construction, invariances, sub-graph batching, learning, STL/MTL comparison."""

import numpy as np
import pytest
import torch

from mlexplore import InputError
from mlexplore.analysis import r2
from mlexplore.data import stratified_split
from mlexplore.datasets import lattice_alloy
from mlexplore.models import GraphNet
from mlexplore.training import compare_tasks, fit_tasks, predict_tasks


@pytest.fixture(scope="module")
def alloy():
    return lattice_alloy("CuAu", n_per_composition=4, rattle=0.05, progress=False)


def test_shapes_and_permutation_invariance(alloy):
    torch.manual_seed(0)
    g = GraphNet(["Cu", "Au"], {"mixing_energy": "structure", "energies": "site"}, cutoff=4.0, width=8,
                 layers=2).double()
    sub = alloy[:3]
    out = g(g.encode(sub, dtype=torch.float64))
    assert out["mixing_energy"].shape == (3,) and out["energies"].shape == (96,)
    perm = np.random.default_rng(0).permutation(32)
    atoms = sub[0]
    shuffled = atoms[perm]
    from mlexplore import StructureDataset

    a = g(g.encode(StructureDataset.from_atoms([atoms]), dtype=torch.float64))
    b = g(g.encode(StructureDataset.from_atoms([shuffled]), dtype=torch.float64))
    assert torch.allclose(a["mixing_energy"], b["mixing_energy"])
    assert torch.allclose(a["energies"][perm], b["energies"])


def test_subgraph_equals_encoding_the_subset(alloy):
    torch.manual_seed(1)
    g = GraphNet(["Cu", "Au"], {"mixing_energy": "structure", "energies": "site"}, cutoff=4.0, width=8,
                 layers=2).double()
    whole = g.encode(alloy, dtype=torch.float64)
    idx = torch.tensor([1, 4, 7])
    direct = g(g.encode(alloy[[1, 4, 7]], dtype=torch.float64))
    cut = g(GraphNet.select(whole, idx))
    for k in direct:
        assert torch.allclose(direct[k], cut[k])


def test_graphnet_learns_mixing_energy_and_atomic_energies(alloy):
    train, val, test = stratified_split(alloy, (0.7, 0.15, 0.15), seed=0)
    torch.manual_seed(0)
    g = GraphNet(["Cu", "Au"], {"mixing_energy": "structure", "energies": "site"}, cutoff=4.0, width=16, layers=2)
    h = fit_tasks(g, train, val, epochs=40, lr=3e-3, device="cpu")
    p = predict_tasks(g, test)
    assert r2(test.label("energies"), p["energies"]) > 0.7
    assert h.val_loss[h.best_epoch] < h.val_loss[0]


def test_compare_tasks_with_graphs(alloy):
    rows = compare_tasks(alloy, ["mixing_energy", "energies"], model="graph", n_runs=2, epochs=3, lr=3e-3,
                         device="cpu", progress=False, cutoff=4.0, width=8, layers=1)
    assert {(r["tasks"], r["target"]) for r in rows} == {
        ("mixing_energy", "mixing_energy"), ("energies", "energies"), ("mixing_energy+energies", "mixing_energy"),
        ("mixing_energy+energies", "energies")}
    with pytest.raises(InputError, match="model must be"):
        compare_tasks(alloy, ["energies"], model="transformer", n_runs=1, epochs=1, progress=False)


def test_errors():
    with pytest.raises(InputError, match="kind must be"):
        GraphNet(["Cu"], {"x": "edge"})
    with pytest.raises(InputError, match="unknown element"):
        GraphNet(["Qq"], {"x": "site"})
    g = GraphNet(["Cu"], {"energies": "site"}, cutoff=4.0)
    with pytest.raises(InputError, match="not among"):
        g.encode(lattice_alloy("CuAu", n_per_composition=1, compositions=[4], progress=False))


def test_gated_conv_is_cgcnn_on_the_concatenation():
    """The node-projected form equals CGCNN's definition, a linear layer on z_ij = [h_i, h_j, e_ij]
    (messages averaged over each node's edges)."""
    import torch

    from mlexplore.models.graph import GatedConv

    torch.manual_seed(0)
    conv = GatedConv(6, 4).double()
    h, e = torch.randn(9, 6, dtype=torch.float64), torch.randn(30, 4, dtype=torch.float64)
    i, j = torch.randint(0, 9, (30,)), torch.randint(0, 9, (30,))
    gate, core = conv.lin(torch.cat([h[i], h[j], e], dim=1)).chunk(2, dim=1)
    msg = torch.sigmoid(gate) * torch.nn.functional.softplus(core)
    degree = torch.zeros(9, dtype=torch.float64).index_add(0, i, torch.ones(30, dtype=torch.float64)).clamp(min=1)
    expected = torch.nn.functional.softplus(h + torch.zeros_like(h).index_add(0, i, msg) / degree[:, None])
    torch.testing.assert_close(conv(h, i, j, e), expected, rtol=1e-12, atol=1e-12)


def test_deep_graphnet_on_a_dense_cell_stays_of_order_one():
    """Six convolutions on BCC FePt within 5 Å (~50 edges per atom): the node features must not
    compound layer by layer (summed messages without batch norm gave outputs of order 10–1000)."""
    import torch
    from ase.build import bulk

    from mlexplore import StructureDataset
    from mlexplore.models import GraphNet

    atoms = bulk("Fe", "bcc", a=2.98, cubic=True).repeat((2, 2, 2))
    atoms.symbols[::3] = "Pt"
    torch.manual_seed(0)
    model = GraphNet(["Fe", "Pt"], {"mixing_energy": "structure", "magmoms": "site"}, cutoff=5.0, layers=6)
    graph = model.encode(StructureDataset.from_atoms([atoms]))
    h = model.embed(graph["species"]).to(graph["edge"].dtype)
    for conv in model.convs:
        h = conv(h, graph["i"], graph["j"], graph["edge"])
    assert float(h.abs().max()) < 10.0

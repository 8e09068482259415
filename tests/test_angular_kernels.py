"""The angular kernels against each other: the G5/G9 tensor route (:mod:`.angular_tensors`) against
the dense neighbour blocks (:mod:`.angular_blocks`), values and gradients, for one, two and three
elements, every power up to the route's limit, an empty element block and an open cluster."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from mlexplore import StructureDataset
from mlexplore.descriptors.angular_blocks import angular_moments, neighbor_blocks
from mlexplore.descriptors.angular_tensors import MAX_TENSOR_POWER, monomial_exponents, tensor_moments
from mlexplore.descriptors.cutoffs import cutoff_function
from mlexplore.descriptors.neighbors import neighbor_pairs, pair_vectors
from mlexplore.descriptors.symmetry import structure_tensors


def _geometry(atoms, elements, cutoff=5.0):
    ds = StructureDataset.from_atoms([atoms])
    b = structure_tensors(ds)
    nb = neighbor_pairs(b["positions"], b["cells"], b["pbc"], b["n_atoms"], cutoff)
    pos = b["positions"].requires_grad_(True)
    vec = pair_vectors(pos, b["cells"], torch.zeros(len(pos), dtype=torch.long), nb)
    el = torch.tensor([elements.index(s) for s in atoms.get_chemical_symbols()])
    layout = neighbor_blocks(nb.centers, el[nb.neighbors], len(pos), len(elements))
    return pos, vec, vec.norm(dim=1), layout


def _alloy(symbols=("Cu", "Au")):
    rng = np.random.default_rng(3)
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(2)
    atoms.symbols = [symbols[k] for k in rng.integers(0, len(symbols), len(atoms))]
    atoms.positions += rng.normal(0, 0.12, atoms.positions.shape)
    return atoms


CASES = {
    "one element": (_alloy(("Au",)), ["Au"]),
    "two elements": (_alloy(), ["Cu", "Au"]),
    "three, one absent": (_alloy(), ["Cu", "Ag", "Au"]),
    "open cluster": (Atoms("CuAuCuAu", positions=[[0, 0, 0], [2.6, 0, 0], [0.3, 2.4, 0.2], [9, 0, 0]],
                           cell=[20] * 3, pbc=False), ["Cu", "Au"]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("family", [1, 2])
@pytest.mark.parametrize("max_power", [0, 1, 4, MAX_TENSOR_POWER])
def test_tensor_route_equals_dense_blocks(case, family, max_power):
    atoms, elements = CASES[case]
    pos, vec, d, layout = _geometry(atoms, elements)
    fc = cutoff_function("polynomial")
    rc = torch.tensor(5.0, dtype=torch.float64)
    etas = torch.tensor([0.001, 0.03, 0.09], dtype=torch.float64)
    rss = torch.tensor([0.0, 1.2, 2.6], dtype=torch.float64)
    dense = angular_moments(layout, vec, d, rc, etas, rss, family, max_power + 1, fc)
    tensor = tensor_moments(layout, vec, d, rc, etas, rss, family, max_power + 1, fc)
    assert tensor.shape == dense.shape
    np.testing.assert_allclose(tensor.detach(), dense.detach(), rtol=1e-12, atol=1e-13)
    w = torch.linspace(-1.0, 2.0, dense.numel(), dtype=dense.dtype).view_as(dense)
    g_dense = torch.autograd.grad((dense * w).sum(), pos, retain_graph=True)[0]
    g_tensor = torch.autograd.grad((tensor * w).sum(), pos)[0]
    np.testing.assert_allclose(g_tensor, g_dense, rtol=1e-10, atol=1e-12)
    if case != "open cluster" and max_power > 0:
        assert dense.abs().sum() > 0


def test_monomials_count_and_order():
    exps = monomial_exponents(4)
    assert len(exps) == 35  # (L+1)(L+2)(L+3)/6
    assert all(p + q + r == l for l, p, q, r in exps)
    assert [l for l, *_ in exps] == sorted(l for l, *_ in exps)


def test_g4_refuses_the_tensor_route():
    atoms, elements = CASES["two elements"]
    pos, vec, d, layout = _geometry(atoms, elements)
    with pytest.raises(ValueError, match="G4"):
        tensor_moments(layout, vec, d, torch.tensor(5.0, dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                       torch.zeros(1, dtype=torch.float64), 0, 3, cutoff_function("cosine"))

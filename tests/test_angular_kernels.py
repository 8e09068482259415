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


# --------------------------------------------------------------- the written-out backward pass
def _blocks(n=5, ma=6, mb=4, channels=2, seed=0, same=False):
    """Random dense blocks as the layout makes them: unit vectors, lengths inside R_c = 4 Å, leg
    factors, and padding (zero vectors, lengths and factors) at the end of some rows."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for m in ((ma,) if same else (ma, mb)):
        u = torch.randn(n, m, 3, generator=g, dtype=torch.float64)
        u = u / u.norm(dim=2, keepdim=True)
        d = 1.5 + 2.3 * torch.rand(n, m, generator=g, dtype=torch.float64)
        w = torch.rand(channels, n, m, generator=g, dtype=torch.float64)
        pad = torch.rand(n, m, generator=g) < 0.25
        u[pad], d[pad], w[:, pad] = 0.0, 0.0, 0.0
        out.append([u[..., 0].clone(), u[..., 1].clone(), u[..., 2].clone(), d, w])
    return out * 2 if same else out


@pytest.mark.parametrize("family", [0, 1, 2])
@pytest.mark.parametrize("same", [False, True])
@pytest.mark.parametrize("cutoff", ["cosine", "polynomial", "tanh3"])
def test_written_out_backward_equals_autograd(family, same, cutoff):
    """Every angular family (G4 with its R_jk factors, G5, G9), within one element block (j < k) and
    across two, every cutoff function: the gradient of every block array equals autograd's through
    the kernel, and so does the second derivative that force training takes (create_graph)."""
    from mlexplore.descriptors.angular_backward import block_moments_with_backward
    from mlexplore.descriptors.angular_kernel import block_moments

    a, b = _blocks(same=same)
    inputs = [t.requires_grad_(True) for t in a + ([] if same else b)]
    args = a + b if not same else a + a
    const = (torch.tensor(4.0, dtype=torch.float64), torch.tensor([0.05, 0.3], dtype=torch.float64), family, 4,
             same, cutoff_function(cutoff))
    ref = block_moments(*args, *const)
    ours = block_moments_with_backward(*args, *const)
    np.testing.assert_allclose(ours.detach(), ref.detach(), rtol=1e-14, atol=1e-14)
    w = torch.linspace(-1.0, 1.5, ref.numel(), dtype=ref.dtype).view_as(ref)
    g_ref = torch.autograd.grad((ref * w).sum(), inputs, create_graph=True, allow_unused=True)
    g_ours = torch.autograd.grad((ours * w).sum(), inputs, create_graph=True, allow_unused=True)
    unused = [k for k, x in enumerate(g_ref) if x is None]
    assert unused == ([] if family == 0 else [3, 8][: 1 if same else 2])  # G5/G9 do not use the lengths
    assert [k for k, x in enumerate(g_ours) if x is None] == unused
    g_ref, g_ours = [x for x in g_ref if x is not None], [x for x in g_ours if x is not None]
    inputs = [t for k, t in enumerate(inputs) if k not in unused]
    for x, y in zip(g_ours, g_ref):
        np.testing.assert_allclose(x.detach(), y.detach(), rtol=1e-11, atol=1e-12)
    assert sum(float(x.detach().abs().sum()) for x in g_ref) > 0
    # second order: the gradient of a weighted sum of the first derivatives
    s_ref = sum((x * torch.cos(torch.arange(x.numel(), dtype=x.dtype)).view_as(x)).sum() for x in g_ref)
    s_ours = sum((x * torch.cos(torch.arange(x.numel(), dtype=x.dtype)).view_as(x)).sum() for x in g_ours)
    gg_ref = torch.autograd.grad(s_ref, inputs, allow_unused=True)
    gg_ours = torch.autograd.grad(s_ours, inputs, allow_unused=True)
    for x, y in zip(gg_ours, gg_ref):
        x = torch.zeros(()) if x is None else x
        y = torch.zeros(()) if y is None else y
        np.testing.assert_allclose(np.broadcast_to(x.detach(), np.broadcast_shapes(x.shape, y.shape)),
                                   np.broadcast_to(y.detach(), np.broadcast_shapes(x.shape, y.shape)),
                                   rtol=1e-9, atol=1e-10)


def test_g4_forces_through_the_written_out_backward_equal_finite_differences():
    """End to end: the forces of a G4 basis on a rattled alloy (several eager chunks) against
    central finite differences of the energy-like sum of its features."""
    from mlexplore.descriptors import angular_blocks
    from mlexplore.descriptors import G4, SymmetryFunctions

    sf = SymmetryFunctions([G4(0.02, 1, -1), G4(0.08, 4, 1)], cutoff=4.5, elements=["Cu", "Au"])
    atoms = _alloy()
    batch = sf.prepare(atoms)
    saved = angular_blocks.EAGER_CHUNK_ENTRIES
    angular_blocks.EAGER_CHUNK_ENTRIES = 2000  # several chunks
    try:
        pos = batch["positions"].requires_grad_(True)
        w = torch.linspace(0.5, 1.5, sf.n_features, dtype=torch.float64)
        energy = (sf(**batch) @ w).sum()
        (grad,) = torch.autograd.grad(energy, pos)
        h = 1e-5
        for atom, axis in ((0, 0), (5, 2), (17, 1)):
            shifted = []
            for sign in (1, -1):
                p = pos.detach().clone()
                p[atom, axis] += sign * h
                shifted.append(float((sf(**{**batch, "positions": p}) @ w).sum()))
            assert float(grad[atom, axis]) == pytest.approx((shifted[0] - shifted[1]) / (2 * h), rel=1e-6, abs=1e-8)
    finally:
        angular_blocks.EAGER_CHUNK_ENTRIES = saved


@pytest.mark.parametrize("name", ["cosine", "polynomial", "tanh3"])
def test_cutoff_slopes_equal_autograd(name):
    fc = cutoff_function(name)
    r = torch.linspace(0.0, 7.0, 701, dtype=torch.float64).requires_grad_(True)
    (ref,) = torch.autograd.grad(fc(r, 5.5).sum(), r)
    np.testing.assert_allclose(fc.slope(r.detach(), 5.5), ref, rtol=1e-12, atol=1e-14)
    assert float(fc.slope(torch.tensor([5.5, 6.0], dtype=torch.float64), 5.5).abs().sum()) == 0


def test_split_blocks_and_centre_groups_give_the_same_moments_and_gradients(monkeypatch):
    """Small batches compute each block in one call; large ones split same-element blocks in halves
    and cut centres into groups: forced here on a small alloy, equal to one call per block."""
    from mlexplore.descriptors import angular_blocks

    atoms, elements = CASES["two elements"]
    out = []
    for split in (False, True):
        if split:
            monkeypatch.setattr(angular_blocks, "SPLIT_MIN_ENTRIES", 0)
            monkeypatch.setattr(angular_blocks, "SPLIT_MIN_WIDTH", 4)
            monkeypatch.setattr(angular_blocks, "GROUP_MIN_ENTRIES", 0)
            monkeypatch.setattr(angular_blocks, "GROUP_MIN_CENTRES", 2)
            monkeypatch.setattr(angular_blocks, "GROUP_MIN_SAVING", float("inf"))
        pos, vec, d, layout = _geometry(atoms, elements)
        m = angular_moments(layout, vec, d, torch.tensor(5.0, dtype=torch.float64),
                            torch.tensor([0.02, 0.1], dtype=torch.float64), torch.zeros(2, dtype=torch.float64),
                            0, 4, cutoff_function("cosine"))
        out.append((m.detach(), torch.autograd.grad((m * m).sum(), pos)[0]))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-10, atol=1e-12)


def test_non_integer_zeta_is_finite_for_opposite_neighbours():
    """FCC copper has neighbours exactly opposite each other: 1 + cos θ rounds to a tiny negative
    number, and a non-integer power of it was NaN."""
    from ase.build import bulk

    from mlexplore.descriptors import G4, G5, SymmetryFunctions

    for term in (G4(0.02, 1.5, 1), G5(0.02, 1.5, 1)):
        f = SymmetryFunctions([term], cutoff=5.0).compute(bulk("Cu", "fcc", a=3.6, cubic=True))
        assert torch.isfinite(torch.as_tensor(f)).all() and float(torch.as_tensor(f).min()) > 0

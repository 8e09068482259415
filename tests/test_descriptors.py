"""Descriptors: agreement with dscribe, invariances, finite-difference forces, known numbers."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from mlexplore import InputError, StructureDataset
from mlexplore.descriptors import (G2, G4, G5, G9, GaussFourierAngular001, GaussFourierAngular002,
                                   GaussFourierBiRadial, GaussFourierRadial, SpinGaussPair, SpinGaussSelf,
                                   SpinLocal, SpinPair, SpinSelf, SymmetryFunctions, from_preset, neighbor_pairs)

torch.set_default_dtype(torch.float64)


def random_alloy(seed, symbols=("Cu", "Au", "Ag"), triclinic=True):
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.9, cubic=True).repeat((2, 2, 1))
    if triclinic:
        cell = a.cell.array @ (np.eye(3) + rng.uniform(-0.08, 0.08, (3, 3)))
        a.set_cell(cell, scale_atoms=True)
    a.numbers = rng.choice([__import__("ase.data").data.atomic_numbers[s] for s in symbols], len(a))
    a.positions += rng.normal(0, 0.12, a.positions.shape)
    return a


# ---------------------------------------------------------------------------- dscribe
G2P = [(1.5, 2.0), (6.25, 3.5), (0.5, 0.0)]
G4P = [(0.000357, 1, -1), (0.028569, 2, 1), (0.089277, 4, -1)]
G5P = [(0.01, 1, 1), (0.05, 2, -1)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_g2_g4_g5_equal_dscribe_acsf(seed):
    from dscribe.descriptors import ACSF

    atoms = random_alloy(seed)
    species = ["Cu", "Ag", "Au"]  # dscribe orders species by atomic number
    sf = SymmetryFunctions([G2(*p) for p in G2P] + [G4(*p) for p in G4P] + [G5(*p) for p in G5P], cutoff=5.5,
                           elements=species)
    mine = sf.compute(atoms).numpy()
    ref = ACSF(r_cut=5.5, g2_params=G2P, g4_params=G4P, g5_params=G5P, species=species, periodic=True).create(atoms)
    n_el, n_r, n_a = 3, len(G2P), len(G4P) + len(G5P)
    cols = []
    for e in range(n_el):  # dscribe: per species [G1, G2 …]
        cols += [e * (1 + n_r) + 1 + t for t in range(n_r)]
    base = n_el * (1 + n_r)
    # dscribe orders species pairs (a, b), a <= b, by b then a; mlexplore by a then b
    dscribe_pairs = [(a, b) for b in range(n_el) for a in range(b + 1)]
    for a in range(n_el):
        for b in range(a, n_el):
            p = dscribe_pairs.index((a, b))
            cols += [base + p * n_a + t for t in range(n_a)]
    ref = ref[:, cols]
    assert mine.shape == ref.shape
    scale = np.abs(ref).max(axis=0) + 1e-300
    assert (np.abs(mine - ref) / scale).max() < 1e-6
    assert np.abs(ref).max() > 0.1  # not a comparison of zeros


# ---------------------------------------------------------------------------- invariances
ALL_GEOMETRIC = [G2(1.5, 2.5), G4(0.03, 2, -1), G5(0.02, 1, 1), G9(0.05, 4, 1, 1.0),
                 GaussFourierRadial(1.0, 2.6, 0.8, 1.0, 2, 4),
                 GaussFourierBiRadial(GaussFourierRadial(1.0, 2.6, 0.8, 1.0), GaussFourierRadial(0.5, 3.7, 1.0, 1.2)),
                 GaussFourierAngular001(2.0, 1.0, GaussFourierRadial(1.0, 2.6, 0.8, 1.0),
                                        GaussFourierRadial(1.0, 2.6, 0.8, 1.0)),
                 GaussFourierAngular002(1.5, 2.0, GaussFourierRadial(0.0, 2.7, 1.0, 1.0),
                                        GaussFourierRadial(0.0, 3.9, 1.0, 1.0))]


@pytest.fixture(scope="module")
def sf_all():
    return SymmetryFunctions(ALL_GEOMETRIC, cutoff=5.0, cutoff_function="polynomial", elements=["Cu", "Ag", "Au"])


def test_translation_rotation_invariance(sf_all):
    atoms = random_alloy(4)
    g0 = sf_all.compute(atoms)
    moved = atoms.copy()
    moved.positions += [1.3, -2.1, 0.7]
    assert torch.allclose(sf_all.compute(moved), g0, atol=1e-10)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ q.T, scale_atoms=False)
    rot.positions = atoms.positions @ q.T
    assert torch.allclose(sf_all.compute(rot), g0, atol=1e-10)
    assert g0.abs().max() > 0.1


def test_permutation_invariance(sf_all):
    atoms = random_alloy(5)
    perm = np.random.default_rng(2).permutation(len(atoms))
    g0 = sf_all.compute(atoms)
    g1 = sf_all.compute(atoms[perm])
    assert torch.allclose(g1, g0[perm], atol=1e-10)


def test_supercell_equals_primitive_cell(sf_all):
    prim = random_alloy(6, triclinic=True)
    sup = prim.repeat((2, 1, 3))
    g_prim = sf_all.compute(prim)
    g_sup = sf_all.compute(sup)
    assert torch.allclose(g_sup, g_prim.repeat(6, 1), atol=1e-9)


def test_small_cell_many_images():
    """R_c far beyond half the cell: the 1-atom FCC cell sees 12 + 6 + 24 + … images."""
    atoms = bulk("Cu", "fcc", a=3.6)  # primitive, 1 atom
    sf = SymmetryFunctions([G2(0.5, 0.0), G4(0.01, 1, 1)], cutoff=6.5)
    big = atoms.repeat((3, 3, 3))
    assert torch.allclose(sf.compute(atoms), sf.compute(big)[:1], atol=1e-10)


# ---------------------------------------------------------------------------- forces
def _fd_check(sf, data, wrt="positions", h=1e-5, rel=1e-5):
    batch = sf.prepare(data)
    x = batch[wrt]
    w = torch.as_tensor(np.random.default_rng(0).normal(size=sf.n_features))
    x.requires_grad_(True)
    energy = (sf(**batch) @ w).sum()
    grad = torch.autograd.grad(energy, x)[0]
    x = x.detach()
    fd = torch.zeros_like(x)
    flat, fd_flat = x.view(-1), fd.view(-1)
    with torch.no_grad():
        for k in range(flat.numel()):
            old = flat[k].item()
            flat[k] = old + h
            ep = (sf(**{**batch, wrt: x}) @ w).sum()
            flat[k] = old - h
            em = (sf(**{**batch, wrt: x}) @ w).sum()
            flat[k] = old
            fd_flat[k] = (ep - em) / (2 * h)
    err = (grad - fd).abs().max() / fd.abs().max()
    assert fd.abs().max() > 1e-3, "derivatives too small to test"
    assert err < rel, f"max relative error {err:.2e}"


@pytest.mark.parametrize("term", ALL_GEOMETRIC, ids=lambda t: type(t).__name__)
def test_forces_equal_finite_differences(term):
    atoms = random_alloy(7, symbols=("Cu", "Au"))[:10]
    atoms.pbc = False
    atoms.set_cell(np.zeros((3, 3)))
    sf = SymmetryFunctions([term], cutoff=5.0, elements=["Cu", "Au"])
    _fd_check(sf, atoms)


SPIN_TERMS = [SpinSelf(2), SpinPair("dot", 1), SpinPair("dm", 1), SpinPair("dipole", 2), SpinPair("cross", 1),
              SpinGaussSelf(0.3, 1, 1.0), SpinGaussPair("dot", 0.2, 2.0), SpinGaussPair("dm", 0.5, 0.5),
              SpinGaussPair("dipole", 0.3, 1.0)] + [SpinLocal(k, 0.05, 5.0) for k in ("F1", "F2", "F3", "F4", "F5", "F6")]


def _magnetic(n_vec=True):
    atoms = bulk("Fe", "bcc", a=2.85, cubic=True).repeat((2, 2, 1))
    rng = np.random.default_rng(3)
    atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
    m = rng.normal(0, 1.5, (len(atoms), 3)) if n_vec else rng.choice([-2.2, 2.2], len(atoms)) + rng.normal(0, .1, len(atoms))
    ds = StructureDataset.from_atoms([atoms])
    ds.add_label("magmoms", m, per_atom=True)
    return ds


@pytest.mark.parametrize("term", SPIN_TERMS, ids=lambda t: t.label())
def test_spin_terms_derivatives_wrt_positions_and_spins(term):
    sf = SymmetryFunctions([term], cutoff=4.0)
    ds = _magnetic()
    if not isinstance(term, (SpinSelf, SpinGaussSelf)):
        _fd_check(sf, ds, "positions")
    _fd_check(sf, ds, "magmoms")


def test_collinear_spins_are_z_vectors():
    ds = _magnetic(n_vec=False)
    sf = SymmetryFunctions([SpinPair("dot"), SpinPair("dm"), SpinLocal("F4")], cutoff=4.0)
    vec = ds.copy()
    m = ds.label("magmoms")
    vec.add_label("magmoms", np.stack([0 * m, 0 * m, m], 1), per_atom=True)
    g_scalar, g_vec = sf.compute(ds), sf.compute(vec)
    assert torch.allclose(g_scalar, g_vec)
    assert torch.allclose(g_scalar[:, 1], torch.zeros(len(m)), atol=1e-12)  # no DM term for collinear spins


def test_spin_measures_on_ordered_states():
    atoms = bulk("Fe", "bcc", a=2.85, cubic=True).repeat((2, 2, 2))
    fm = StructureDataset.from_atoms([atoms])
    fm.add_label("magmoms", np.full(len(atoms), 2.2), per_atom=True)
    afm = fm.copy()
    corner = np.isclose((atoms.positions / 2.85) % 1, 0, atol=1e-6).all(axis=1)
    afm.add_label("magmoms", np.where(corner, 2.2, -2.2), per_atom=True)
    sf = SymmetryFunctions([SpinLocal("F4"), SpinLocal("F5"), SpinLocal("F6"), SpinPair("dot")], cutoff=2.6)
    g_fm, g_afm = sf.compute(fm), sf.compute(afm)
    assert torch.allclose(g_fm[:, 0], torch.ones(16)) and torch.allclose(g_fm[:, 1], torch.ones(16))
    assert torch.allclose(g_fm[:, 2], torch.zeros(16), atol=1e-12)
    # nearest neighbours (8 within 2.6 Å) are all antiparallel in B2 AFM
    assert (g_afm[:, 3] < 0).all() and (g_fm[:, 3] > 0).all()
    assert (g_afm[:, 0] < 1).all()


# ---------------------------------------------------------------------------- limits
@pytest.mark.parametrize("middle", [True, False], ids=["theta=pi", "theta=0"])
def test_collinear_triplets_finite_with_finite_derivatives(middle):
    x = [-2.4, 0.0, 2.4] if middle else [0.0, 2.4, 4.8]
    atoms = Atoms("Cu3", positions=[[v, 0, 0] for v in x])
    terms = [G4(0.01, 1, -1), G5(0.01, 2, 1), G9(0.05, 1, 1, 1.0)] + ALL_GEOMETRIC[5:]
    sf = SymmetryFunctions(terms, cutoff=6.0)
    batch = sf.prepare(atoms)
    batch["positions"].requires_grad_(True)
    g = sf(**batch)
    grad = torch.autograd.grad(g.sum(), batch["positions"])[0]
    assert torch.isfinite(g).all() and torch.isfinite(grad).all()
    assert g.abs().sum() > 0


def test_presets_have_published_sizes():
    assert from_preset("bloore-fe-bp").n_features == 24 + 18
    assert from_preset("bloore-fe-sannip").n_features == 24 + 18 + 8 + 12
    assert from_preset("loeffler-au").n_features == 8 + 18
    fe = from_preset("bloore-fe-bp", elements=["Fe"])
    assert fe.n_features == 42 and fe.feature_names[0] == "G2(eta=1.5, rs=1.5)[Fe]"
    assert from_preset("bloore-fe-bp", elements=["Fe", "Pt"]).n_features == 2 * 24 + 3 * 18


def test_exact_columns_in_given_order():
    terms = [G4(0.01, 1, 1), G2(1.0, 2.0), GaussFourierRadial(1.0, 3.0, 1.0, 1.0), G2(2.0, 3.0)]
    sf = SymmetryFunctions(terms, cutoff=5.0, elements=["Fe"])
    assert sf.feature_names == [t.label() + "[Fe]" for t in (terms[1], terms[2], terms[3])] + [terms[0].label() + "[Fe-Fe]"]
    atoms = bulk("Fe", "bcc", a=2.85, cubic=True)
    atoms.rattle(0.05, seed=1)
    g = sf.compute(atoms)
    for k, t in enumerate([terms[1], terms[2], terms[3], terms[0]]):
        single = SymmetryFunctions([t], cutoff=5.0, elements=["Fe"]).compute(atoms)
        assert torch.allclose(g[:, k], single[:, 0])


def test_neighbor_methods_agree_including_clusters_and_triclinic():
    fe = bulk("Fe", "bcc", a=2.85)
    fe.set_initial_magnetic_moments(None)
    images = [random_alloy(9), fe, Atoms("Cu4", positions=np.random.default_rng(0).uniform(0, 4, (4, 3)))]
    ds = StructureDataset.from_atoms(images)
    pos, cells = torch.as_tensor(ds.positions), torch.as_tensor(ds.cells)
    pbc, n = torch.as_tensor(ds.pbc), torch.as_tensor(ds.n_atoms)

    def key(nb):
        return sorted(zip(nb.centers.tolist(), nb.neighbors.tolist(), map(tuple, nb.shifts.long().tolist())))

    a = neighbor_pairs(pos, cells, pbc, n, 5.0, method="vesin")
    b = neighbor_pairs(pos, cells, pbc, n, 5.0, method="torch")
    assert len(a) > 100 and key(a) == key(b)
    # the device builder in many small chunks of structures gives the same list
    from mlexplore.descriptors.neighbors import _torch_pairs

    i, j, s = _torch_pairs(pos, cells, pbc, n, 5.0, max_candidates=50)
    assert sorted(zip(i.tolist(), j.tolist(), map(tuple, s.long().tolist()))) == key(a)


def test_clear_errors():
    with pytest.raises(InputError, match="unknown preset"):
        from_preset("nope")
    with pytest.raises(InputError, match="unknown element"):
        SymmetryFunctions([G2(1.0)], elements=["Xx"])
    with pytest.raises(InputError, match="eta must be positive"):
        G2(0.0)
    with pytest.raises(InputError, match="eta must be positive"):
        G2(-1.0, 2.0)
    with pytest.raises(InputError, match="cutoff R_c must be positive"):
        SymmetryFunctions([G2(1.0)], cutoff=0)
    sf = SymmetryFunctions([G2(1.0)], cutoff=4.0, elements=["Cu"])
    with pytest.raises(InputError, match="element Au is not among"):
        sf.compute(bulk("Au"))
    nan = bulk("Cu")
    nan.positions[0, 0] = np.nan
    with pytest.raises(InputError, match="non-finite position"):
        sf.compute(nan)
    with pytest.raises(InputError, match="magnetic moments"):
        SymmetryFunctions([SpinPair()], cutoff=4.0).compute(bulk("Cu"))
    with pytest.raises(InputError, match="even integer"):
        GaussFourierRadial(1.0, 2.0, 1.0, 1.0, xi_down=3)


def _alloy(seed=3):
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 1))
    a.numbers = np.where(rng.random(len(a)) < 0.5, 79, 29)
    a.positions += rng.normal(0, 0.15, a.positions.shape)
    return a


def test_compiled_angular_kernel_equals_eager_features_and_forces():
    """``compile=True`` fuses the BP angular sums with torch.compile: same features and
    same autograd forces as the eager code, for G4 (with R_jk), G5 and shifted G9."""
    terms = [G2(0.5, 2.5), G4(0.02, 1, -1), G4(0.02, 4, 1), G4(0.08, 2, 1), G5(0.01, 2, -1), G9(0.03, 3, 1, 1.0)]
    atoms = _alloy()
    out = {}
    for comp in (False, True):
        sf = SymmetryFunctions(terms, cutoff=5.0, elements=["Cu", "Au"], compile=comp)
        batch = sf.prepare(atoms)
        batch["positions"].requires_grad_(True)
        g = sf(**batch)
        w = torch.linspace(0.5, 1.5, g.shape[1], dtype=g.dtype)
        (f,) = torch.autograd.grad((g @ w).sum(), batch["positions"])
        out[comp] = (g.detach(), f)
    np.testing.assert_allclose(out[True][0], out[False][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out[True][1], out[False][1], rtol=1e-10, atol=1e-12)
    assert out[False][0][:, 2:].abs().sum() > 0  # the angular columns are not trivially zero


@pytest.mark.parametrize("elements", [None, ["Cu", "Au"], ["Cu", "Au", "Ag"]])
def test_neighbor_blocks_equal_explicit_triplets(elements):
    """Integer ζ is summed on dense per-element neighbour blocks, non-integer ζ over an explicit
    triplet list: two independent code paths. A ζ a hair away from an integer takes the second
    path and must give the same features and forces, for G4, G5 and shifted G9 — also with an
    element that has no atoms (an empty block) and an open cluster whose atoms have 0–2 neighbours."""
    from ase import Atoms

    cluster = Atoms("CuAuCu", positions=[[0, 0, 0], [2.6, 0, 0], [9.0, 0, 0]], cell=[20] * 3, pbc=False)
    for atoms in (_alloy(), cluster):
        out = {}
        for shift in (0.0, 1e-9):
            terms = [G2(0.5, 2.5), G4(0.02, 1 + shift, -1), G4(0.08, 4 + shift, 1), G5(0.01, 2 + shift, -1),
                     G9(0.03, 3 + shift, 1, 1.0)]
            sf = SymmetryFunctions(terms, cutoff=5.0, elements=elements)
            batch = sf.prepare(atoms)
            batch["positions"].requires_grad_(True)
            g = sf(**batch)
            (f,) = torch.autograd.grad((g * torch.linspace(0.5, 1.5, g.shape[1], dtype=g.dtype)).sum(),
                                       batch["positions"])
            out[shift] = (g.detach(), f)
        np.testing.assert_allclose(out[0.0][0], out[1e-9][0], rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(out[0.0][1], out[1e-9][1], rtol=1e-7, atol=1e-12)
        assert torch.isfinite(out[0.0][1]).all()
    assert out[0.0][0][2].abs().sum() == 0  # the isolated atom has no neighbour
    assert out[0.0][0][:, sf.feature_families.index("angular"):].abs().sum() == 0  # 3 atoms, no triplet


def test_eager_block_chunks_give_the_same_features_and_forces(monkeypatch):
    """The eager kernel works through centres in chunks (bounded temporaries): chunks of a few
    centres give the same numbers as one chunk."""
    from mlexplore.descriptors import angular_blocks

    sf = SymmetryFunctions([G4(0.02, 2, 1), G5(0.01, 1, -1), G9(0.03, 2, 1, 1.0)], cutoff=5.0,
                           elements=["Cu", "Au"])
    out = []
    for entries in (angular_blocks.EAGER_CHUNK_ENTRIES, 3000):
        monkeypatch.setattr(angular_blocks, "EAGER_CHUNK_ENTRIES", entries)
        batch = sf.prepare(_alloy())
        batch["positions"].requires_grad_(True)
        g = sf(**batch)
        out.append((g.detach(), torch.autograd.grad(g.sum(), batch["positions"])[0]))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-13)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("compile", [False, True])
def test_centre_groups_give_the_same_features_and_forces(monkeypatch, compile):
    """Centres sorted by neighbour counts and cut into groups, each padded to its own widths,
    give the numbers of one block padded to the widest centre (features and forces)."""
    from mlexplore.descriptors import angular_blocks

    sf = SymmetryFunctions([G2(0.5, 2.5), G4(0.02, 2, 1), G4(0.05, 4, -1), G5(0.01, 1, -1)], cutoff=5.0,
                           elements=["Cu", "Au"], compile=compile)
    out = []
    for groups in (1, 3):
        monkeypatch.setattr(angular_blocks, "CENTRE_GROUPS", groups)
        monkeypatch.setattr(angular_blocks, "GROUP_MIN_CENTRES", 1)
        monkeypatch.setattr(angular_blocks, "GROUP_MIN_ENTRIES", 0)
        monkeypatch.setattr(angular_blocks, "GROUP_MIN_SAVING", math.inf)  # group whatever it saves
        batch = sf.prepare(_alloy())
        batch["positions"].requires_grad_(True)
        g = sf(**batch)
        w = torch.linspace(0.5, 1.5, g.shape[1], dtype=g.dtype)
        out.append((g.detach(), torch.autograd.grad((g @ w).sum(), batch["positions"])[0]))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-10, atol=1e-12)


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    from mlexplore.descriptors import compiled

    def broken(fn, device_type):
        def run(*args, **kwargs):
            raise RuntimeError("no C++ compiler here")
        return run

    monkeypatch.setattr(compiled, "_compile", broken)
    monkeypatch.setattr(compiled, "_failed", set())
    terms = [G2(0.5, 2.5), G4(0.02, 2, 1)]  # both compiled kernels: radial sums and angular moments
    eager = SymmetryFunctions(terms, cutoff=5.0).compute(_alloy())
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler here"):
        got = SymmetryFunctions(terms, cutoff=5.0, compile=True).compute(_alloy())
    np.testing.assert_array_equal(got, eager)


def test_reused_neighbor_list_follows_moved_positions():
    """A Neighbors object reused across calls keeps derived data (neighbour blocks, triplets,
    pair vectors), but positions changed in place, or positions that need gradients, are never
    served stale vectors."""
    sf = SymmetryFunctions([G2(0.5, 2.5), G4(0.02, 2, 1), G5(0.02, 1.5, 1)], cutoff=5.0)
    batch = sf.prepare(_alloy())
    nb = neighbor_pairs(batch["positions"], batch["cells"], batch["pbc"], batch["n_atoms"], 5.0)
    first = sf(**batch, neighbors=nb)
    assert {"triplets", "vectors", ("blocks", ())} <= set(nb.cache)
    with torch.no_grad():
        batch["positions"][0, 0] += 0.05  # in place: same tensor, new version
    moved = sf(**batch, neighbors=nb)
    fresh = sf(**batch)
    np.testing.assert_allclose(moved, fresh, rtol=1e-13)
    assert not torch.allclose(moved, first)
    batch["positions"].requires_grad_(True)
    g = sf(**batch, neighbors=nb)
    (grad,) = torch.autograd.grad(g.sum(), batch["positions"])
    assert grad.abs().sum() > 0

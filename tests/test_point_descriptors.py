"""Symmetry functions centred on points (mlexplore.descriptors.points): a point on an atom has that
atom's features, random points match a brute-force reference, the point-atom search matches brute
force, invariances, chunking, precision, refusals, grid order, gradients."""

import itertools
import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers

from mlexplore import InputError
from mlexplore.descriptors import (G2, G4, G5, G9, GaussFourierAngular001, GaussFourierRadial, SpinPair,
                                   SymmetryFunctions)
from mlexplore.descriptors.points import grid_points, point_features, point_neighbors

RC = 5.0
RADIAL = [G2(0.5), G2(1.0, 2.5), G2(3.0, 3.6)]
ANGULAR = [G4(0.05, 1, 1), G4(0.02, 2, -1), G5(0.03, 1, -1), G5(0.01, 4, 1), G9(0.04, 2, 1, rs=1.0)]


def descriptor(extra=(), cutoff=RC, elements=("Cu", "Au")):
    return SymmetryFunctions(RADIAL + ANGULAR + list(extra), cutoff=cutoff, elements=list(elements))


def alloy(seed=0, triclinic=True):
    """An 8-atom CuAu cell, rattled, triclinic: R_c = 5 Å is more than half of its shorter vectors."""
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 2))
    if triclinic:
        a.set_cell(a.cell.array @ (np.eye(3) + rng.uniform(-0.08, 0.08, (3, 3))), scale_atoms=True)
    a.numbers[rng.permutation(len(a))[:3]] = 79
    a.positions += rng.normal(0, 0.1, a.positions.shape)
    return a


def cluster(seed=0, n=9):
    """An open CuAu cluster (zero cell), atoms 2.3–3 Å apart."""
    rng = np.random.default_rng(seed)
    base = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2)).positions[:n]
    a = Atoms(numbers=rng.choice([29, 79], n), positions=base + rng.normal(0, 0.1, (n, 3)))
    a.numbers[:2] = [29, 79]
    return a


def slab(seed=0):
    """Periodic in x and y, open along z; atoms below the cell too."""
    a = alloy(seed, triclinic=False)
    pos = a.positions.copy()
    pos[:, 2] -= 3.0
    return Atoms(numbers=a.numbers, positions=pos, cell=[a.cell[0], a.cell[1], [0.5, 0.3, 9.0]],
                 pbc=[True, True, False])


def primitive():
    """One atom per cell, R_c well past the cell: many images of one atom."""
    a = bulk("Cu", "fcc", a=3.6)
    a.set_cell(a.cell.array @ (np.eye(3) + np.array([[0, 0.05, 0], [0, 0, -0.04], [0.03, 0, 0]])),
               scale_atoms=True)
    return a


STRUCTURES = {"triclinic": alloy, "cluster": cluster, "slab": slab, "primitive": primitive}


def lattice_shifted(a, seed=1):
    """The atom positions, each moved by a random lattice vector along the periodic directions."""
    rng = np.random.default_rng(seed)
    n = rng.integers(-3, 4, (len(a), 3)) * a.pbc
    return a.positions + n @ a.cell.array


# -------------------------------------------------------------------- a point on an atom
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_a_point_on_an_atom_has_that_atoms_features(name):
    """Atom a is left out of the sums of a point on it, as it is left out of its own: equal to
    SymmetryFunctions on the structure, for G2, G4, G5, G9, two elements (the points moved by
    lattice vectors where periodic, so they are wrapped first)."""
    a = STRUCTURES[name]()
    sf = descriptor()
    ref = sf.compute(a)
    X = point_features(sf, lattice_shifted(a), a)
    assert X.shape == ref.shape
    if len(set(a.numbers)) == 2:
        assert (ref != 0).any(dim=0).all()  # every column is exercised
    torch.testing.assert_close(X, ref, rtol=1e-10, atol=1e-10)


def test_other_term_families_come_along():
    """Non-integer ζ (explicit triplets) and the Gauss-Fourier terms go through the same code.
    (λ = −1: with λ = +1 and non-integer ζ the atom-centred features are NaN wherever two
    neighbours lie opposite each other, 1 + cos θ rounding below 0.)"""
    a = alloy(2)
    window = GaussFourierRadial(0.3, 3.0, 1.5, 1.8)
    sf = descriptor([G4(0.02, 1.5, -1), window, GaussFourierAngular001(1.0, 1.2, window, window)])
    torch.testing.assert_close(point_features(sf, lattice_shifted(a), a), sf.compute(a), rtol=1e-10, atol=1e-10)


def test_element_agnostic_descriptor():
    a = alloy(3)
    sf = SymmetryFunctions(RADIAL + ANGULAR, cutoff=RC)
    torch.testing.assert_close(point_features(sf, a.positions, a), sf.compute(a), rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------ brute-force reference
def reference(points, a, rc, elements, radial, angular, exclude_within=1e-6):
    """Features of each point from explicit loops over images, neighbours and neighbour pairs."""
    cell, pbc = a.cell.array, a.pbc
    el = {atomic_numbers[e]: k for k, e in enumerate(elements)}
    if pbc.any():
        vol = abs(np.linalg.det(cell))
        spacing = [vol / np.linalg.norm(np.cross(cell[(d + 1) % 3], cell[(d + 2) % 3])) for d in range(3)]
        reps = [math.ceil(rc / s) + 1 if p else 0 for s, p in zip(spacing, pbc)]
    else:
        reps = [0, 0, 0]
    shifts = np.array(list(itertools.product(*[range(-r, r + 1) for r in reps])))
    images = (a.positions[None] + (shifts @ cell)[:, None]).reshape(-1, 3)
    image_el = np.tile([el[z] for z in a.numbers], len(shifts))
    frac = np.linalg.solve(cell.T, points.T).T if pbc.any() else None

    def fc(r):
        return 0.5 * (np.cos(np.pi * r / rc) + 1) if r < rc else 0.0

    n_el = len(elements)
    pairs = [(x, y) for x in range(n_el) for y in range(x, n_el)]
    out = np.zeros((len(points), len(radial) * n_el + len(angular) * len(pairs)))
    for p, x in enumerate(points):
        if frac is not None:  # wrap the point along the periodic directions
            x = x - (np.floor(frac[p]) * pbc) @ cell
        v = images - x
        d = np.linalg.norm(v, axis=1)
        sel = np.nonzero((d < rc) & (d >= exclude_within))[0]
        for j in sel:
            for t, g in enumerate(radial):
                out[p, image_el[j] * len(radial) + t] += np.exp(-g.eta * (d[j] - g.rs) ** 2) * fc(d[j])
        for j, k in itertools.combinations(sel, 2):
            cos = v[j] @ v[k] / (d[j] * d[k])
            djk = np.linalg.norm(v[k] - v[j])
            col = len(radial) * n_el + pairs.index(tuple(sorted((image_el[j], image_el[k])))) * len(angular)
            for t, g in enumerate(angular):
                ang = 2.0 ** (1 - g.zeta) * (1 + g.lam * cos) ** g.zeta
                if isinstance(g, G4):
                    rad = np.exp(-g.eta * (d[j] ** 2 + d[k] ** 2 + djk ** 2)) * fc(d[j]) * fc(d[k]) * fc(djk)
                elif isinstance(g, G5):
                    rad = np.exp(-g.eta * (d[j] ** 2 + d[k] ** 2)) * fc(d[j]) * fc(d[k])
                else:
                    rad = np.exp(-g.eta * ((d[j] - g.rs) ** 2 + (d[k] - g.rs) ** 2)) * fc(d[j]) * fc(d[k])
                out[p, col + t] += ang * rad
    return out


@pytest.mark.parametrize("name", ["triclinic", "cluster", "slab"])
def test_random_points_match_a_brute_force_reference(name):
    a = STRUCTURES[name]()
    rng = np.random.default_rng(4)
    lo, hi = a.positions.min(axis=0) - 2.0, a.positions.max(axis=0) + 2.0
    points = rng.uniform(lo - 5 * a.pbc * 3.0, hi + 5 * a.pbc * 3.0, (12, 3))  # well outside the cell too
    sf = descriptor()
    X = point_features(sf, points, a, chunk_size=5).numpy()
    ref = reference(points, a, RC, sf.elements, RADIAL, ANGULAR)
    assert (np.abs(ref).sum(axis=1) > 0).all()
    np.testing.assert_allclose(X, ref, rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------- the search
def brute_pairs(points, positions, cell, pbc, rc, exclude_within=1e-6):
    """{(point, atom, shift)} with r = positions[j] − points[i] + shift · cell within rc."""
    reach = 12
    ranges = [range(-reach, reach + 1) if p else range(1) for p in pbc]
    out = set()
    for s in itertools.product(*ranges):
        v = positions[None] + (np.array(s) @ cell) - points[:, None]
        d = np.linalg.norm(v, axis=2)
        for i, j in zip(*np.nonzero((d < rc) & (d >= exclude_within))):
            out.add((int(i), int(j), s))
    return out


@pytest.mark.parametrize("name", ["triclinic", "cluster", "slab", "primitive"])
def test_point_neighbors_match_brute_force(name):
    a = STRUCTURES[name]()
    rng = np.random.default_rng(5)
    points = rng.uniform(-7, 12, (15, 3))
    points[0] = a.positions[0]  # on an atom: that atom is left out, its images are not
    nb = point_neighbors(points, a.positions, a.cell.array, a.pbc, RC)
    assert bool((nb.centers[1:] >= nb.centers[:-1]).all())
    found = {(int(i), int(j), tuple(int(x) for x in s))
             for i, j, s in zip(nb.centers, nb.neighbors, nb.shifts.round().long())}
    assert len(found) == len(nb)
    assert found == brute_pairs(points, a.positions, a.cell.array, a.pbc, RC)
    assert not any(i == 0 and j == 0 and s == (0, 0, 0) for i, j, s in found)
    vec = a.positions[nb.neighbors.numpy()] - points[nb.centers.numpy()] + nb.shifts.numpy() @ a.cell.array
    assert (np.linalg.norm(vec, axis=1) < RC).all()


def test_far_apart_open_points_use_bounded_bins():
    """Points 10⁵ Å apart around an open cluster: the bins grow instead of their number."""
    a = cluster()
    points = np.array([a.positions[0] + [1.0, 0.2, 0.1], [1e5, -1e5, 3e4]])
    X = point_features(descriptor(), points, a)
    assert (X[0] != 0).any() and (X[1] == 0).all()


# -------------------------------------------------------------------- invariances
def test_translating_atoms_and_points_together_changes_nothing():
    a = alloy(6)
    rng = np.random.default_rng(6)
    points = rng.uniform(0, 7, (20, 3))
    sf = descriptor()
    X = point_features(sf, points, a)
    t = np.array([1.37, -2.9, 0.41])
    b = a.copy()
    b.positions += t
    torch.testing.assert_close(point_features(sf, points + t, b), X, rtol=1e-9, atol=1e-10)
    b.wrap()  # atoms wrapped back into the cell: same structure
    torch.testing.assert_close(point_features(sf, points + t, b), X, rtol=1e-9, atol=1e-10)
    shifted = points + rng.integers(-2, 3, (20, 3)) @ a.cell.array  # points moved by lattice vectors
    torch.testing.assert_close(point_features(sf, shifted, a), X, rtol=1e-9, atol=1e-10)


def test_rotating_an_open_cluster_and_its_points_changes_nothing():
    a = cluster(7)
    rng = np.random.default_rng(7)
    points = a.positions.mean(axis=0) + rng.normal(0, 2.0, (20, 3))
    sf = descriptor()
    X = point_features(sf, points, a)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    b = a.copy()
    b.positions = a.positions @ q.T
    torch.testing.assert_close(point_features(sf, points @ q.T, b), X, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", ["triclinic", "cluster"])
def test_permuting_the_atoms_changes_nothing(name):
    a = STRUCTURES[name]()
    rng = np.random.default_rng(8)
    points = rng.uniform(-1, 6, (20, 3))
    sf = descriptor()
    perm = rng.permutation(len(a))
    torch.testing.assert_close(point_features(sf, points, a[perm]), point_features(sf, points, a),
                               rtol=1e-9, atol=1e-10)


# --------------------------------------------------------- chunks, precision, empty
def test_chunked_equals_unchunked():
    a = alloy(9)
    points = grid_points(a.cell, (5, 4, 6))
    sf = descriptor()
    whole = point_features(sf, points, a, chunk_size=10 ** 6)
    for chunk in (1, 7, 64):
        torch.testing.assert_close(point_features(sf, points, a, chunk_size=chunk), whole, rtol=1e-12, atol=1e-12)


def test_float32_is_close_to_float64():
    a = alloy(10)
    points = grid_points(a.cell, (4, 4, 8))
    sf = descriptor()
    X64 = point_features(sf, points, a)
    X32 = point_features(sf, points.float(), a)
    assert X32.dtype == torch.float32 and X64.dtype == torch.float64
    scale = X64.abs().amax(dim=0)
    assert ((X32.double() - X64).abs() / scale).max() < 1e-5
    X32b = point_features(sf, points.numpy(), a, dtype=torch.float32)
    torch.testing.assert_close(X32b, X32)


def test_a_point_with_no_atom_within_the_cutoff_gives_zeros():
    a = cluster(11)
    far = a.positions.max(axis=0) + [RC + 0.01, 0, 0]
    near = a.positions[0] + [0.5, 0.5, 0.5]
    sf = descriptor()
    X = point_features(sf, np.array([far, near, far + 40]), a, chunk_size=1)  # chunks with no pair at all
    assert (X[0] == 0).all() and (X[2] == 0).all() and (X[1] != 0).any()
    s = slab()
    vacuum = np.array([[1.0, 1.0, s.positions[:, 2].max() + RC + 0.1], [1.0, 1.0, s.positions[:, 2].min() - 50]])
    assert (point_features(sf, vacuum, s) == 0).all()


def test_no_points_or_no_atoms():
    sf = descriptor()
    assert point_features(sf, np.zeros((0, 3)), alloy()).shape == (0, sf.n_features)
    X = point_features(sf, np.ones((3, 3)), positions=np.zeros((0, 3)), numbers=np.zeros(0, int))
    assert X.shape == (3, sf.n_features) and (X == 0).all()


def test_structure_as_tensors_equals_structure_as_atoms():
    a = alloy(12)
    points = torch.as_tensor(np.random.default_rng(12).uniform(0, 6, (10, 3)))
    sf = descriptor()
    X = point_features(sf, points, positions=torch.as_tensor(a.positions), numbers=torch.as_tensor(a.numbers),
                       cell=torch.as_tensor(a.cell.array), pbc=torch.as_tensor(a.pbc))
    torch.testing.assert_close(X, point_features(sf, points, a))


# ---------------------------------------------------------------------- gradients
def test_gradients_match_finite_differences():
    a = cluster(13, n=6)
    sf = descriptor()
    points = torch.as_tensor(a.positions.mean(axis=0) + np.random.default_rng(13).normal(0, 1.0, (4, 3)))
    pos = torch.as_tensor(a.positions).requires_grad_(True)
    pts = points.clone().requires_grad_(True)
    w = torch.linspace(0.5, 1.5, sf.n_features, dtype=torch.float64)

    def f(x, p):
        return (point_features(sf, p, positions=x, numbers=a.numbers) * w).sum()

    gx, gp = torch.autograd.grad(f(pos, pts), (pos, pts))
    h = 1e-6
    for (tensor, grad) in ((pos, gx), (pts, gp)):
        for idx in [(0, 0), (1, 2), (tensor.shape[0] - 1, 1)]:
            plus, minus = tensor.detach().clone(), tensor.detach().clone()
            plus[idx] += h
            minus[idx] -= h
            args_p = (plus, pts.detach()) if tensor is pos else (pos.detach(), plus)
            args_m = (minus, pts.detach()) if tensor is pos else (pos.detach(), minus)
            fd = (f(*args_p) - f(*args_m)) / (2 * h)
            assert abs(float(fd) - float(grad[idx])) < 1e-6 * max(1.0, abs(float(fd)))
    assert point_features(sf, points, positions=a.positions, numbers=a.numbers).grad_fn is None


# ---------------------------------------------------------------------- refusals
def test_spin_terms_are_refused():
    sf = SymmetryFunctions([G2(0.5), SpinPair("dot")], cutoff=RC)
    with pytest.raises(InputError, match="moment") as exc:
        point_features(sf, np.zeros((2, 3)), alloy())
    assert exc.value.field == "terms"


@pytest.mark.parametrize("kwargs, field", [
    (dict(points=np.zeros((4, 2))), "points"),
    (dict(points=np.zeros(3)), "points"),
    (dict(points=np.array([[0.0, np.nan, 0.0]])), "points"),
    (dict(positions=np.zeros((8, 2))), "positions"),
    (dict(positions=np.full((8, 3), np.inf)), "positions"),
    (dict(numbers=np.full(7, 29)), "numbers"),
    (dict(numbers=np.full(8, 29.0)), "numbers"),
    (dict(numbers=np.full(8, 26)), "elements"),
    (dict(cell=np.eye(2)), "cell"),
    (dict(cell=np.diag([3.0, 3.0, 0.0])), "cell"),
    (dict(pbc=[True, False]), "pbc"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(chunk_size=2.5), "chunk_size"),
    (dict(exclude_within=-1.0), "exclude_within"),
    (dict(atoms=True), "atoms"),
    (dict(positions=None), "positions"),
    (dict(descriptor="G2"), "descriptor"),
])
def test_bad_input_is_named(kwargs, field):
    a = alloy()
    args = dict(descriptor=descriptor(), points=np.zeros((4, 3)), positions=a.positions, numbers=a.numbers,
                cell=a.cell.array, pbc=[True, True, True])
    if kwargs.pop("atoms", None):
        args["atoms"] = a  # and positions etc. as well
    args.update(kwargs)
    with pytest.raises(InputError) as exc:
        point_features(args.pop("descriptor"), args.pop("points"), **args)
    assert exc.value.field == field


# ---------------------------------------------------------------------- the grid
def test_grid_points_are_in_numpy_c_order():
    cell = np.array([[4.0, 0.0, 0.0], [1.0, 5.0, 0.0], [0.5, -0.3, 6.0]])
    shape = (3, 4, 5)
    r = grid_points(cell, shape)
    assert r.shape == (60, 3) and r.dtype == torch.float64
    grid = r.numpy().reshape(*shape, 3)
    for i, j, k in [(0, 0, 0), (1, 2, 3), (2, 3, 4), (2, 0, 1)]:
        np.testing.assert_allclose(grid[i, j, k], np.array([i / 3, j / 4, k / 5]) @ cell, atol=1e-12)
    assert grid_points(bulk("Al").cell, (2, 2, 2), dtype=torch.float32).dtype == torch.float32
    for bad in [(3, 4), (3, 4, 0), (3.0, 4, 5), "345"]:
        with pytest.raises(InputError) as exc:
            grid_points(cell, bad)
        assert exc.value.field == "shape"
    with pytest.raises(InputError) as exc:
        grid_points(np.eye(2), (2, 2, 2))
    assert exc.value.field == "cell"


def test_fcc_al_grid():
    """32-atom fcc Al (a = 4.05 Å) on an 18×18×18 grid, 3 G2 + 3 G4 terms, R_c = 6 Å: the grid
    points on atoms (indices multiples of 9) have the atoms' features, and points related by
    the cubic symmetry (x ↔ y, x → −x) have equal features.

    Timing (measured once, not asserted): 0.7–0.8 s in float64, 0.6 s in float32 on one core of
    a loaded 2-core CPU, default ``chunk_size`` (about 0.2 s of it the point-atom search, ~55
    atoms per point)."""
    a = bulk("Al", "fcc", a=4.05, cubic=True).repeat((2, 2, 2))
    sf = SymmetryFunctions([G2(0.5), G2(1.0, 2.5), G2(2.0, 4.0), G4(0.005, 1, 1), G4(0.005, 1, -1),
                            G4(0.02, 2, 1)], cutoff=6.0, elements=["Al"])
    n = 18
    X = point_features(sf, grid_points(a.cell, (n, n, n)), a).reshape(n, n, n, -1)
    atom_features = sf.compute(a)[0]
    torch.testing.assert_close(X[0, 0, 0], atom_features, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(X[9, 9, 0], atom_features, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(X.transpose(0, 1), X, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(X[(-torch.arange(n)) % n], X, rtol=1e-9, atol=1e-10)
    assert not torch.allclose(X[0, 0, 0], X[4, 0, 0])

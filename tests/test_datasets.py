from math import comb

import numpy as np
import pytest
from ase.calculators.emt import EMT

from mlexplore import InputError
from mlexplore.datasets import (GOLD_GROUPS, REGISTRY, gold, ising_energy, ising_lattice, lattice_alloy,
                                sample_occupations)
from mlexplore.datasets.emt import FastEMT, emt_lattice_constant


def test_sampling_follows_seed_000_rule():
    groups = sample_occupations(32, 1000, seed=0)
    sizes = {k: len(o) for k, o in groups}
    assert sizes[0] == 1 and sizes[1] == 32 and sizes[2] == 496 and sizes[3] == 1000
    assert sizes[30] == 496 and sizes[32] == 1
    assert sum(sizes.values()) == 28058
    for k, occ in groups:
        assert (occ.sum(axis=1) == k).all()
        assert len(np.unique(occ, axis=0)) == len(occ)  # distinct configurations
    assert len(sample_occupations(8, 1000)[4][1]) == comb(8, 4)


def test_lattice_permutations_are_the_space_group_of_the_cell():
    from ase.build import bulk

    from mlexplore.datasets.sampling import lattice_permutations

    bcc = lattice_permutations(bulk("Fe", "bcc", a=2.98, cubic=True).repeat(2))
    assert bcc.shape == (768, 16)  # 48 point operations × 16 translations
    fcc = lattice_permutations(bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2))
    assert fcc.shape == (1536, 32)
    # a group: it holds the identity and is closed under composition
    rows = {p.tobytes() for p in bcc}
    assert np.arange(16).tobytes() in rows
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, len(bcc), (50, 2)):
        assert bcc[a][bcc[b]].tobytes() in rows
    # a tetragonal cell keeps only the operations that respect its long axis
    assert len(lattice_permutations(bulk("Fe", "bcc", a=2.98, cubic=True).repeat((1, 1, 2)))) < 48 * 4


def test_symmetry_classes_counted_and_sampled():
    from itertools import combinations

    from ase.build import bulk

    from mlexplore.datasets.sampling import canonical_keys, count_classes, distinct_occupations, lattice_permutations

    perms = lattice_permutations(bulk("Fe", "bcc", a=2.98, cubic=True).repeat(2))
    # Burnside's count equals brute force over every occupation
    for k in (1, 2, 3, 4):
        occ = np.zeros((comb(16, k), 16), bool)
        for row, sites in enumerate(combinations(range(16), k)):
            occ[row, list(sites)] = True
        assert count_classes(16, k, perms) == len(set(canonical_keys(occ, perms).tolist()))
    assert sum(count_classes(16, k, perms) for k in range(17)) == 331
    # an occupation and any image of it share a key; a different structure does not
    occ = np.zeros(16, bool)
    occ[[0, 3, 5]] = True
    images = occ[np.argsort(perms, axis=1)]
    assert len(set(canonical_keys(images, perms).tolist())) == 1
    assert distinct_occupations(np.vstack([images[:5], ~images[:1]]), perms).tolist() == [0, 5]
    groups = sample_occupations(16, 21, seed=3, permutations=perms)
    sizes = [len(o) for _, o in groups]
    assert sizes == [min(21, count_classes(16, k, perms)) for k in range(17)] and sum(sizes) == 207
    for k, o in groups:
        assert (o.sum(axis=1) == k).all() and len(set(canonical_keys(o, perms).tolist())) == len(o)
    with pytest.raises(InputError, match="do not fit"):
        canonical_keys(np.zeros((1, 8), bool), perms)


def test_emt_labels_match_ase_emt_called_directly():
    ds = lattice_alloy("CuAu", n_per_composition=2, rattle=0.05, strain=0.02, progress=False)
    for i in (0, 5, len(ds) // 2, len(ds) - 1):
        atoms = ds[i].copy()
        atoms.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(ds.label("energy")[i], abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), ds.per_structure("forces")[i], atol=1e-10)
        np.testing.assert_allclose(atoms.get_potential_energies(), ds.per_structure("energies")[i],
                                   atol=1e-10)


def test_fast_emt_equals_emt_for_clusters_and_slabs():
    ds = gold(n_per_group=1, progress=False)
    for atoms in ds:
        ref = atoms.copy()
        ref.calc = EMT()
        fast = atoms.copy()
        fast.calc = FastEMT()
        assert fast.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(fast.get_forces(), ref.get_forces(), atol=1e-10)


def test_mixing_energy_of_end_members_is_zero():
    ds = lattice_alloy("CuAu", n_per_composition=3, progress=False)
    mix = ds.label("mixing_energy")
    pure = [i for i, f in enumerate(ds.formulas) if f in ("Cu32", "Au32")]
    assert len(pure) == 2
    np.testing.assert_allclose(mix[pure], 0.0, atol=1e-12)
    # and the definition, checked by hand for one mixed structure
    i = len(ds) // 2
    e_cu = ds.label("energy")[pure[0]] / 32
    e_au = ds.label("energy")[pure[1]] / 32
    n_au = int((ds[i].numbers == 79).sum())
    assert mix[i] == pytest.approx(ds.label("energy")[i] / 32 - (n_au * e_au + (32 - n_au) * e_cu) / 32)


def test_distinct_alloy_structures_have_distinct_energies():
    """With distinct=True no structure repeats: one Au on 32 FCC sites is one structure, and
    symmetry-equivalent copies (same EMT energy) are gone from every composition."""
    ds = lattice_alloy("CuAu", n_per_composition=6, compositions=[0, 1, 2, 16], distinct=True, progress=False,
                       cache=False)
    counts = {f: ds.formulas.count(f) for f in set(ds.formulas)}
    assert counts == {"Cu32": 1, "AuCu31": 1, "Au2Cu30": 5, "Au16Cu16": 6}  # Au pairs: 5 distances in the cell
    e = ds.label("energy")
    for f in counts:
        sel = np.array(ds.formulas) == f
        assert len(np.unique(np.round(e[sel], 9))) == sel.sum()
    plain = lattice_alloy("CuAu", n_per_composition=6, compositions=[1], progress=False, cache=False)
    assert len(plain) == 6 and np.ptp(plain.label("energy")) < 1e-9  # six copies of one structure


def test_vegard_lattice_constant():
    ds = lattice_alloy("CuAu", n_per_composition=1, progress=False)
    a_cu, a_au = emt_lattice_constant("Cu"), emt_lattice_constant("Au")
    assert ds.cells[0, 0, 0] == pytest.approx(2 * a_cu)
    assert ds.cells[-1, 0, 0] == pytest.approx(2 * a_au)
    assert 3.5 < a_cu < 3.7 and 4.0 < a_au < 4.1


def test_same_seed_same_dataset_and_cache_round_trip(monkeypatch, tmp_path):
    monkeypatch.setenv("MLEXPLORE_CACHE", str(tmp_path))
    kwargs = dict(lattice="bcc", n_per_composition=3, rattle=0.03, seed=5, progress=False)
    a = lattice_alloy("AgPd", cache=False, **kwargs)
    assert list(tmp_path.iterdir()) == []
    b = lattice_alloy("AgPd", **kwargs)  # generated, then stored
    files = list(tmp_path.glob("lattice_alloy-*.npz"))
    assert len(files) == 1
    import mlexplore.datasets.alloys as alloys

    monkeypatch.setattr(alloys, "emt_label_many", lambda *a, **k: pytest.fail("cache not used"))
    c = lattice_alloy("AgPd", **kwargs)  # loaded from the cache: no EMT call
    assert len(a) == 2 + 3 * 15 and a.n_atoms[0] == 16
    for other in (b, c):
        np.testing.assert_array_equal(a.positions, other.positions)
        np.testing.assert_array_equal(a.label("energy"), other.label("energy"))
    monkeypatch.undo()
    monkeypatch.setenv("MLEXPLORE_CACHE", str(tmp_path))
    d = lattice_alloy("AgPd", **{**kwargs, "seed": 6})
    assert not np.array_equal(a.positions, d.positions)


def test_every_emt_pair_works_and_bad_ones_are_refused():
    ds = lattice_alloy("NiPt", n_per_composition=1, compositions=[0, 16, 32], progress=False)
    assert ds.formulas == ["Ni32", "Ni16Pt16", "Pt32"]
    with pytest.raises(InputError, match="EMT has no parameters for 'Fe'"):
        lattice_alloy("FePt", progress=False)
    with pytest.raises(InputError, match="not a pair"):
        lattice_alloy("Cux", progress=False)
    with pytest.raises(InputError, match="unknown lattice"):
        lattice_alloy("CuAu", lattice="hcp", progress=False)


def test_gold_groups_and_labels():
    ds = gold(n_per_group=3, progress=False)
    assert ds.all_tags == list(GOLD_GROUPS)
    assert len(ds) == 15
    clusters = ds.filter(tag="cluster")
    assert not clusters.pbc.any() and (clusters.cells == 0).all()
    assert ds.filter(tag="surface-111").pbc.all()
    assert {"energy", "energies", "forces"} <= set(ds.label_names)
    np.testing.assert_allclose(ds.label("energy"), [e.sum() for e in ds.per_structure("energies")],
                               atol=1e-9)
    with pytest.raises(InputError, match="unknown group"):
        gold(groups=("liquid",), progress=False)


def test_ising_energy_against_explicit_neighbour_loop():
    rng = np.random.default_rng(0)
    L = 3
    s = np.sin(np.pi * rng.uniform(-1, 1, (L, L, L)) / 2)
    e = 0.0
    for i in range(L):
        for j in range(L):
            for k in range(L):
                nn = sum(s[(i + di) % L, (j + dj) % L, (k + dk) % L]
                         for di, dj, dk in [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)])
                e += s[i, j, k] * (s[i, j, k] + nn)
    assert ising_energy(s[None])[0] == pytest.approx(-e / 6)


def test_ising_lattice_targets():
    ds = ising_lattice(L=3, n_per_composition=4, progress=False)
    assert ds.n_atoms[0] == 27 and len(ds) == 1 + 4 * 26 + 1
    np.testing.assert_allclose(np.abs(ds.label("site_value")), 1.0)
    assert ds.label("energy")[0] == pytest.approx(-27 * 7 / 6)  # all down: every term is (−1)(−1 − 6)
    up = ds.numbers.reshape(len(ds), 27) == 2
    np.testing.assert_array_equal(up, ds.label("spin").reshape(len(ds), 27) > 0)
    scaled = ising_lattice(L=3, n_per_composition=2, scaled=True, progress=False)
    assert (np.abs(scaled.label("spin")) < 1).all()
    np.testing.assert_allclose(scaled.label("site_value"), np.sin(np.pi * scaled.label("spin") / 2))


def test_registry_lists_every_builtin():
    assert set(REGISTRY) == {"lattice_alloy", "gold", "ising_lattice"}
    for entry in REGISTRY.values():
        assert entry.size_parameter in entry.function.__code__.co_varnames

"""RDF against the neighbour shells of table F.1 (002) and coordination numbers; PCA; metrics."""

import math

import numpy as np
import pytest
from ase.build import bulk

from mlexplore import InputError, StructureDataset
from mlexplore.analysis import mae, pca, per_group, r2, rdf, rmse
from mlexplore.datasets import gold, lattice_alloy


@pytest.mark.parametrize("lattice, lam, shells", [
    ("bcc", 2.83163, [(math.sqrt(3) / 2, 8), (1.0, 6), (math.sqrt(2), 12), (math.sqrt(11) / 2, 24),
                      (math.sqrt(3), 8), (2.0, 6)]),
    ("fcc", 3.44557, [(math.sqrt(2) / 2, 12), (1.0, 6), (math.sqrt(6) / 2, 24), (math.sqrt(2), 12),
                      (math.sqrt(10) / 2, 24), (math.sqrt(3), 8)]),
])
def test_rdf_of_ideal_crystals_table_f1(lattice, lam, shells):
    ds = StructureDataset.from_atoms([bulk("Fe", lattice, a=lam, cubic=True).repeat(3)])
    res = rdf(ds, r_max=6.2, bin_width=0.01)
    peaks = res.peaks(min_height=1.0)[:6]
    np.testing.assert_allclose(peaks, [f * lam for f, _ in shells], atol=0.01)  # F.1: 2.45226, 2.83163, …
    running = 0
    for f, n in shells:  # integrating g gives the coordination numbers shell by shell
        running += n
        assert res.coordination(f * lam + 0.05) == pytest.approx(running, rel=1e-9)


def test_partial_rdfs_of_an_ordered_alloy():
    a = bulk("Cu", "fcc", a=3.75, cubic=True)
    a.numbers[[0]] = 79  # L1_2 Cu3Au: Au only has Cu nearest neighbours
    ds = StructureDataset.from_atoms([a.repeat(3)])
    res = rdf(ds, r_max=4.0, bin_width=0.01)
    nn = 3.75 / math.sqrt(2) + 0.05
    assert res.coordination(nn, "Au-Cu") == pytest.approx(12)
    assert res.coordination(nn, "Au-Au") == pytest.approx(0)
    assert res.coordination(nn, "Cu-Cu") == pytest.approx(8) and res.coordination(nn, "Cu-Au") == pytest.approx(4)
    assert res.coordination(nn) == pytest.approx(12)


def test_rdf_averages_a_dataset_and_refuses_open_structures():
    alloy = lattice_alloy("CuAu", n_per_composition=2, rattle=0.05, progress=False)
    res = rdf(alloy, r_max=6.0)
    assert set(res.g) == {"total", "Cu-Cu", "Cu-Au", "Au-Cu", "Au-Au"}
    assert res.g["total"][res.r > 5.0].mean() == pytest.approx(1.0, abs=0.3)
    with pytest.raises(InputError, match="not periodic"):
        rdf(gold(n_per_group=1, progress=False))


def test_pca_explained_variance():
    x = np.random.default_rng(0).normal(size=(200, 5)) @ np.diag([5, 3, 1, 0.5, 0.1])
    full = pca(x, n_components=None, standardise=False)
    assert full.explained_variance_ratio.sum() == pytest.approx(1.0)
    assert (np.diff(full.explained_variance_ratio) <= 0).all()
    two = pca(x, 2)
    assert two.scores.shape == (200, 2)
    with pytest.raises(InputError, match="NaN"):
        pca(np.full((3, 2), np.nan))


def test_metrics_by_hand():
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.0, 4.0])
    assert rmse(y, p) == pytest.approx(math.sqrt((0.25 + 1) / 4))
    assert mae(y, p) == pytest.approx(1.5 / 4)
    assert r2(y, p) == pytest.approx(1 - 1.25 / 5.0)
    groups = per_group(y, p, ["a", "a", "b", "b"])
    assert groups["a"]["rmse"] == pytest.approx(math.sqrt(0.125)) and groups["b"]["n"] == 2
    with pytest.raises(InputError, match="4 reference values but 3"):
        rmse(y, p[:3])

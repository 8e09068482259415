"""RDF against the neighbour shells of table F.1 (002) and coordination numbers; PCA; metrics."""

import math

import numpy as np
import pytest
from ase.build import bulk

from mlexplore import InputError, StructureDataset
from mlexplore.analysis import (error_band, feature_correlation, feature_report, mae, magnetic_measures,
                                net_spin_ratio, pca, per_group, polar_angle_variance, r2, rdf, rmse)
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


def test_error_band_on_a_hand_made_example():
    # two models with two errors each; bandwidth factor 1/√2 × sample std √2 gives unit-width kernels,
    # so every PDF is a mean of two unit Gaussians that can be written down by hand
    gauss = lambda x, m: np.exp(-0.5 * (x - m) ** 2) / math.sqrt(2 * math.pi)  # noqa: E731
    grid = np.linspace(-4, 6, 201)
    band = error_band([[-1.0, 1.0], [0.0, 2.0]], grid=grid, bandwidth=1 / math.sqrt(2))
    p1 = 0.5 * (gauss(grid, -1) + gauss(grid, 1))
    p2 = 0.5 * (gauss(grid, 0) + gauss(grid, 2))
    np.testing.assert_allclose(band.mean, (p1 + p2) / 2, rtol=1e-12)
    np.testing.assert_allclose(band.std, np.abs(p1 - p2) / 2, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(band.error_mean, [0.0, 1.0])
    assert np.trapezoid(band.mean, grid) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(InputError, match="two or more"):
        error_band([[1.0]])


def test_feature_report_finds_dead_and_redundant_columns():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(size=300)
    x = np.stack([a, 2 * a + 1e-4 * b, b, np.full(300, 3.0), -b], axis=1)
    rep = feature_report(x, names=["a", "2a", "b", "const", "-b"])
    assert rep.dead == [3]
    assert {(i, j) for i, j, _ in rep.redundant} == {(0, 1), (2, 4)}
    assert dict(((i, j), r) for i, j, r in rep.redundant)[(2, 4)] == pytest.approx(-1.0)
    c = feature_correlation(x)
    assert c[3, 0] == 0 and c[3, 3] == 1 and c[0, 1] == pytest.approx(1.0, abs=1e-6)
    live = np.corrcoef(x[:, [0, 1, 2, 4]], rowvar=False)  # numpy's own, over the live columns
    assert rep.mean_abs_correlation == pytest.approx(np.abs(live[np.triu_indices(4, 1)]).mean())
    assert "const" in rep.summary() and "redundant pairs: 2" in rep.summary()


@pytest.mark.parametrize("kind, expected", [("fm", 0.0), ("afm", math.pi ** 2 / 4), ("pm", math.pi ** 2 / 4 - 2)])
def test_magnetic_measures_limits_of_spec_section_3(kind, expected):
    rng = np.random.default_rng(2)
    n = 200000
    if kind == "fm":
        spins, ratio = np.full(n, 2.2), 1.0
    elif kind == "afm":
        spins, ratio = np.where(np.arange(n) % 2 == 0, 2.2, -2.2), 0.0
    else:  # directions uniform on the sphere
        v = rng.normal(size=(n, 3))
        spins, ratio = 2.2 * v / np.linalg.norm(v, axis=1, keepdims=True), 0.0
    assert polar_angle_variance(spins) == pytest.approx(expected, abs=0.01)
    assert net_spin_ratio(spins) == pytest.approx(ratio, abs=0.01)


def test_magnetic_measures_per_structure():
    fm = bulk("Fe", "bcc", a=2.87, cubic=True)
    afm = fm.copy()
    fm.arrays["magmoms"] = np.array([2.0, 2.0])
    afm.arrays["magmoms"] = np.array([2.0, -2.0])
    ds = StructureDataset.from_atoms([fm, afm])
    m = magnetic_measures(ds)
    np.testing.assert_allclose(m["net_spin_ratio"], [1.0, 0.0])
    np.testing.assert_allclose(m["polar_angle_variance"], [0.0, math.pi ** 2 / 4])
    with pytest.raises(InputError, match="charges"):
        magnetic_measures(ds, label="charges")


def test_properties_of_emt_gold_are_consistent():
    from ase.calculators.emt import EMT

    from mlexplore.analysis import cubic_elastic_constants, equation_of_state, surface_energy

    eos = equation_of_state(EMT(), "Au", "fcc", a_guess=4.05)
    assert 4.0 < eos["a0"] < 4.1  # EMT gold: a ≈ 4.06 Å
    c = cubic_elastic_constants(EMT(), "Au", "fcc", a0=eos["a0"])
    assert c["B"] == pytest.approx(eos["B"], rel=0.03)  # two routes to the bulk modulus agree
    assert c["C11"] > c["C12"] > 0 and c["C44"] > 0  # mechanically stable cubic crystal
    g111, g100 = surface_energy(EMT(), "Au", "111", eos["a0"]), surface_energy(EMT(), "Au", "100", eos["a0"])
    assert 0 < g111["gamma"] < g100["gamma"]  # the close-packed facet costs least
    assert g111["gamma_J_m2"] == pytest.approx(g111["gamma"] * 16.0218, rel=1e-4)
    with pytest.raises(InputError, match="facet"):
        surface_energy(EMT(), facet="110")


def test_moments_by_neighbours_counts_unlike_neighbours():
    from ase import Atoms

    from mlexplore.analysis import moments_by_neighbours

    a = 3.0
    b2 = Atoms("FePt", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[a] * 3, pbc=True)  # Pt: 8 Fe at 2.6 Å
    pt = Atoms("Pt2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[a] * 3, pbc=True)  # Pt: no Fe
    ds = StructureDataset.from_atoms([b2, pt, b2])
    ds.add_label("magmoms", np.array([3.0, 0.4, 0.0, 0.05, 2.9, 0.5]))
    r = moments_by_neighbours(ds, "Pt", "Fe", cutoff=2.7)
    np.testing.assert_array_equal(r["levels"], [0, 8])
    np.testing.assert_allclose(r["mean"], [0.025, 0.45])
    np.testing.assert_array_equal(r["n"], [2, 2])
    only_first = moments_by_neighbours(ds, "Pt", "Fe", cutoff=2.7, structures=[0])
    np.testing.assert_array_equal(only_first["count"], [8])
    np.testing.assert_allclose(only_first["moment"], [0.4])
    # beyond the second shell (3.0 Å) the Fe atom also counts its six Fe images
    assert moments_by_neighbours(ds, "Fe", "Fe", cutoff=3.1)["levels"].tolist() == [6]
    with pytest.raises(InputError, match="unknown neighbour 'Xx'"):
        moments_by_neighbours(ds, "Pt", "Xx", cutoff=2.7)
    with pytest.raises(InputError, match="no per-atom 'spins'"):
        moments_by_neighbours(ds, "Pt", "Fe", cutoff=2.7, label="spins")

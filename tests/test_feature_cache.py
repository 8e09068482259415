"""FeatureCache: the same numbers as SymmetryFunctions.compute, with one neighbour search and per-family
blocks reused; the one g(r) peak finder; the split of descriptors/helpers.py."""

import importlib
import sys
import warnings

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlexplore import InputError, StructureDataset
from mlexplore.datasets import lattice_alloy
from mlexplore.descriptors import (G2, G4, G5, FeatureCache, GaussFourierRadial, SpinPair, SpinSelf,
                                   SymmetryFunctions, angular_grid, chunk_bounds, density_peaks, distance_histogram,
                                   environment_sample, radial_grid, rs_at_rdf_modes)

# float32: features are sums of ~100 pair or triplet terms of O(1), added in another order by the cache
# than by compute: a few units of 1e-6 apart (measured up to 2.3e-6, G5 with the polynomial cutoff)
TOL = {"float64": dict(rtol=1e-12, atol=1e-13), "float32": dict(rtol=2e-5, atol=1e-5)}


@pytest.fixture(scope="module")
def alloy():
    return lattice_alloy("CuAu", n_per_composition=2, rattle=0.1, progress=False)


def _reference(sf, ds, precision):
    return sf.compute(ds, dtype=getattr(torch, precision)).numpy()


BASES = {
    "element-resolved G2 + G4, cosine": dict(terms=radial_grid(6, 1.5, 4.5) + angular_grid([0.01, 0.05]),
                                             cutoff=5.0, cutoff_function="cosine", elements=["Cu", "Au"]),
    "G5, polynomial": dict(terms=radial_grid(4, 2.0, 4.0) + angular_grid([0.02], (1, 2), family="G5"),
                           cutoff=4.5, cutoff_function="polynomial", elements=["Cu", "Au"]),
    "element-agnostic, tanh3, non-integer zeta": dict(terms=[G2(1.0, 2.5), G2(2.0, 3.5), G4(0.03, 1.5, 1)],
                                                      cutoff=6.0, cutoff_function="tanh3", elements=None),
    "Gauss-Fourier radial reaching past R_c": dict(terms=[G2(1.0, 2.5), GaussFourierRadial(1.0, 4.5, 0.8, 1.5),
                                                          G4(0.02, 1, -1)],
                                                   cutoff=4.0, cutoff_function="cosine", elements=["Cu", "Au"]),
}


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_features_equal_compute_for_several_bases(alloy, precision):
    cache = FeatureCache(alloy, max_cutoff=7.0, dtype=precision)
    for name, spec in BASES.items():
        sf = SymmetryFunctions(**spec)
        got = cache.features(sf)
        assert got.dtype == np.dtype(precision), name
        assert got.shape == (alloy.n_total_atoms, sf.n_features), name
        np.testing.assert_allclose(got, _reference(sf, alloy, precision), err_msg=name, **TOL[precision])
    assert cache.neighbor_searches == 1  # every basis above was cut from the one list for 7 Å


def test_a_radial_change_recomputes_only_the_radial_block(alloy):
    cache = FeatureCache(alloy, max_cutoff=6.0)
    angular = angular_grid([0.01, 0.04], (1, 2, 4))
    first = SymmetryFunctions(radial_grid(6, 1.5, 4.5, eta=2.0) + angular, cutoff=5.0, elements=alloy.elements)
    cache.features(first)
    assert cache.last_reused == {"radial": False, "angular": False} and cache.blocks_computed == 2
    angular_block = cache.block(first, "angular")
    second = SymmetryFunctions(radial_grid(6, 1.5, 4.5, eta=3.0) + angular, cutoff=5.0, elements=alloy.elements)
    got = cache.features(second)
    assert cache.last_reused == {"radial": False, "angular": True}
    assert cache.blocks_computed == 3 and cache.blocks_reused == 1
    assert cache.block(second, "angular") is angular_block
    np.testing.assert_allclose(got, _reference(second, alloy, "float64"), **TOL["float64"])
    # and an angular change keeps the radial block
    third = SymmetryFunctions(radial_grid(6, 1.5, 4.5, eta=3.0) + angular_grid([0.02]), cutoff=5.0,
                              elements=alloy.elements)
    cache.features(third)
    assert cache.last_reused == {"radial": True, "angular": False}
    assert cache.block(third, "radial") is cache.block(second, "radial")
    # a block depends on R_c and the cutoff function too
    other = SymmetryFunctions(second.terms, cutoff=5.0, cutoff_function="polynomial", elements=alloy.elements)
    assert cache.block(other, "angular") is None


def test_rc_changes_cut_the_one_neighbour_list(alloy):
    cache = FeatureCache(alloy, max_cutoff=7.0, dtype="float32")
    terms = radial_grid(5, 1.5, 4.0) + angular_grid([0.02])
    full = None
    for rc in (4.0, 5.5, 7.0, 3.2):
        sf = SymmetryFunctions(terms, cutoff=rc, elements=alloy.elements)
        got = cache.features(sf)
        np.testing.assert_allclose(got, _reference(sf, alloy, "float32"), **TOL["float32"])
        if full is None:
            full = cache.neighbors
        assert all(a is b for a, b in zip(cache.neighbors, full))  # the very same lists
        assert [nb.cutoff for nb in cache.neighbors_within(rc)] == [rc] * len(cache.chunks)
    assert cache.neighbor_searches == 1 and cache.neighbor_filters == 4
    assert all(nb.cutoff == 7.0 for nb in full)
    # the same R_c again: the cut list (and the triplets stored on it) is reused, not cut again
    cache.features(SymmetryFunctions(terms + angular_grid([0.05]), cutoff=3.2, elements=alloy.elements))
    assert cache.neighbor_filters == 4


def test_a_cutoff_beyond_the_list_raises_or_rebuilds(alloy):
    sf = SymmetryFunctions(radial_grid(4, 1.5, 4.0), cutoff=6.0, elements=alloy.elements)
    strict = FeatureCache(alloy, max_cutoff=5.0)
    with pytest.raises(InputError, match="beyond the 5 Å") as err:
        strict.features(sf)
    assert err.value.field == "cutoff"
    growing = FeatureCache(alloy, max_cutoff=5.0, rebuild=True)
    growing.features(SymmetryFunctions(radial_grid(4, 1.5, 4.0), cutoff=4.0, elements=alloy.elements))
    np.testing.assert_allclose(growing.features(sf), _reference(sf, alloy, "float64"), **TOL["float64"])
    assert growing.neighbor_searches == 2 and growing.max_cutoff == 6.0


def test_chunks_spin_terms_and_bad_input(alloy):
    # small chunks: several neighbour lists, the same features
    cache = FeatureCache(alloy, max_cutoff=5.0, max_atoms_per_chunk=40)
    assert cache.chunks == chunk_bounds(alloy.n_atoms, 40) and len(cache.chunks) > 1
    sf = SymmetryFunctions(radial_grid(4, 1.5, 4.0) + angular_grid([0.02]), cutoff=5.0, elements=alloy.elements)
    np.testing.assert_allclose(cache.features(sf), _reference(sf, alloy, "float64"), **TOL["float64"])
    assert len(cache.neighbors) == len(cache.chunks)
    # spin terms: a third block, from the dataset's moments
    fe = bulk("Fe", "bcc", a=2.85, cubic=True).repeat((2, 2, 1))
    fe.positions += np.random.default_rng(0).normal(0, 0.05, fe.positions.shape)
    mag = StructureDataset.from_atoms([fe])
    mag.add_label("magmoms", np.array([2.2, -2.2] * 4), per_atom=True)
    spin = SymmetryFunctions([G2(1.0, 2.5), SpinSelf(1), SpinPair("dot", 1)], cutoff=4.0)
    spin_cache = FeatureCache(mag, max_cutoff=4.0)
    np.testing.assert_allclose(spin_cache.features(spin), _reference(spin, mag, "float64"), **TOL["float64"])
    assert set(spin_cache.last_reused) == {"radial", "spin"}
    for kwargs, field in ((dict(max_cutoff=-1.0), "max_cutoff"), (dict(max_cutoff=5.0, dtype="float16"), "dtype"),
                          (dict(max_cutoff=5.0, max_blocks=0), "max_blocks")):
        with pytest.raises(InputError) as err:
            FeatureCache(alloy, **kwargs)
        assert err.value.field == field
    with pytest.raises(InputError, match="SymmetryFunctions"):
        cache.features("G2")
    with pytest.raises(InputError):
        chunk_bounds(alloy.n_atoms, 0)


def test_old_blocks_are_dropped_least_recently_used_first(alloy):
    cache = FeatureCache(alloy, max_cutoff=5.0, max_blocks=2)
    sfs = [SymmetryFunctions([G2(eta, 2.5)], cutoff=5.0) for eta in (1.0, 2.0, 3.0)]
    for sf in sfs:
        cache.features(sf)
    assert cache.block(sfs[0], "radial") is None and cache.block(sfs[2], "radial") is not None


def test_environment_sample_takes_whole_structures(alloy):
    idx = environment_sample(alloy, 50, seed=1)
    assert np.all(np.diff(idx) > 0) and alloy.n_atoms[idx].sum() >= 50
    assert alloy.n_atoms[idx[:-1]].sum() < 50 + alloy.n_atoms.max()
    np.testing.assert_array_equal(idx, environment_sample(alloy, 50, seed=1))
    assert len(environment_sample(alloy, 10 ** 9)) == len(alloy)
    with pytest.raises(InputError):
        environment_sample(alloy, 0)


# ----------------------------------------------------------------------- one peak finder
def test_one_peak_finder_serves_rdf_peaks_and_rs_at_rdf_modes():
    from scipy.signal import find_peaks

    from mlexplore.analysis import rdf

    ds = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.83163, cubic=True).repeat(3)])
    res = rdf(ds, r_max=6.0)
    idx, _ = find_peaks(res.g["total"], height=1.0)
    np.testing.assert_array_equal(res.peaks(min_height=1.0), res.r[idx])
    np.testing.assert_array_equal(res.peaks(min_height=1.0), density_peaks(res.r, res.g["total"], min_height=1.0))
    centres, g = distance_histogram(ds, 6.0, 0.02)
    strongest = density_peaks(centres, g, min_height=0, n_strongest=3)
    assert len(strongest) == 3 and np.all(np.diff(strongest) > 0)
    np.testing.assert_array_equal(rs_at_rdf_modes(ds, n_modes=3, smoothing=0.0), strongest)
    smooth = density_peaks(centres, g, min_height=0, n_strongest=3, smoothing=0.05, bin_width=0.02)
    np.testing.assert_array_equal(rs_at_rdf_modes(ds, n_modes=3), smooth)
    assert smooth[0] == pytest.approx(2.83163 * np.sqrt(3) / 2, abs=0.03)
    with pytest.raises(InputError):
        density_peaks([1.0, 2.0], [1.0])


def test_helpers_module_is_a_deprecated_shim_naming_the_new_modules():
    sys.modules.pop("mlexplore.descriptors.helpers", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        helpers = importlib.import_module("mlexplore.descriptors.helpers")
    (warning,) = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert "basis_parameters" in str(warning.message) and "environment" in str(warning.message)
    import mlexplore.descriptors as d
    from mlexplore.descriptors import basis_parameters, correlation, environment, parameter_count

    for name in helpers.__all__:
        assert getattr(helpers, name) is getattr(d, name)
    assert helpers.g2_maximum is basis_parameters.g2_maximum and helpers.tpi is parameter_count.tpi
    assert helpers.neighbor_angles is environment.neighbor_angles
    assert helpers.correlation_search is correlation.correlation_search

"""Uncertainty figures and the StructureViewer's uncertainty colourings: the figures draw the σ they
are given, the calibration curve of correctly drawn errors lies on y = x, and the viewer, driven
from Python, colours the atoms by a committee's force std and extrapolation grade."""

import re
import warnings

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from scipy.stats import spearmanr

from mlexplore import InputError, StructureDataset
from mlexplore.data import random_split
from mlexplore.datasets import gold
from mlexplore.descriptors import G2, SymmetryFunctions
from mlexplore.models import Committee
from mlexplore.training import Potential, calibrate_committee, fit_committee
from mlexplore.viz import (UNCERTAINTY_QUANTITIES, atom_uncertainties, calibration_curve, calibration_figure,
                           parity_with_errors, uncertainty_colors)

# ---------------------------------------------------------------------------------- parity


def test_parity_with_errors_draws_the_given_std_and_the_diagonal():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 3))
    s = rng.uniform(0.01, 0.2, size=(40, 3))
    p = y + rng.normal(0.0, s)
    fig = parity_with_errors(y, p, s, title="forces", unit="eV/Å")
    points, diagonal = fig.data
    np.testing.assert_array_equal(points.x, y.ravel())
    np.testing.assert_array_equal(points.y, p.ravel())
    assert points.error_y.visible and points.error_y.type == "data"
    np.testing.assert_array_equal(points.error_y.array, s.ravel())
    assert diagonal.name == "y = x" and list(diagonal.x) == list(diagonal.y)
    assert diagonal.x[0] <= y.min() and diagonal.x[1] >= y.max()
    title = fig.layout.title.text
    assert title.startswith("forces — RMSE") and "eV/Å" in title and "shown" not in title
    assert f"√⟨σ²⟩ {np.sqrt(np.mean(s ** 2)):.4g}" in title
    assert fig.layout.xaxis.title.text == "reference (eV/Å)"
    with pytest.raises(InputError, match="standard deviations for"):
        parity_with_errors(y, p, s[:10])
    with pytest.raises(InputError, match="≥ 0"):
        parity_with_errors(y, p, -s)


def test_parity_with_errors_subsamples_with_a_seed_and_says_so():
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    s = rng.uniform(0.1, 0.3, 500)
    p = y + 0.1
    fig = parity_with_errors(y, p, s, max_points=100, seed=3)
    pts = fig.data[0]
    assert len(pts.x) == 100 and "100 of 500 points shown (random, seed 3)" in fig.layout.title.text
    idx = np.searchsorted(np.sort(y), pts.x)  # every point drawn keeps its own σ
    order = np.argsort(y)
    np.testing.assert_array_equal(pts.error_y.array, s[order][idx])
    again = parity_with_errors(y, p, s, max_points=100, seed=3)
    np.testing.assert_array_equal(again.data[0].x, pts.x)
    assert f"RMSE {0.1:.4g}" in fig.layout.title.text  # the scores use every point


# ----------------------------------------------------------------------------- calibration


def test_calibration_curve_of_gaussian_errors_lies_on_y_equals_x():
    rng = np.random.default_rng(0)
    sigma = np.exp(rng.uniform(np.log(0.01), np.log(1.0), 20000))
    err = np.abs(rng.normal(0.0, sigma))
    curve = calibration_curve(sigma, err, n_bins=10)
    assert len(curve.centres) == len(curve.rms_error) == len(curve.counts) == 10
    assert curve.counts.sum() == 20000 and set(curve.counts) == {2000}
    assert np.all(np.diff(curve.centres) > 0)
    np.testing.assert_allclose(curve.rms_error, curve.centres, rtol=0.08)
    # the centres are each bin's root mean variance, inside its σ range
    assert np.all((curve.edges[:, 0] <= curve.centres) & (curve.centres <= curve.edges[:, 1]))
    # errors twice as large as predicted: the curve lies on y = 2x
    over = calibration_curve(sigma, 2 * err, n_bins=10)
    np.testing.assert_allclose(over.rms_error / over.centres, 2.0, rtol=0.08)
    # σ that says nothing about the error: a flat curve, no rank correlation
    flat = calibration_curve(rng.permutation(sigma), err, n_bins=5)
    assert abs(flat.spearman) < 0.05 and np.ptp(flat.rms_error) < 0.2 * flat.rms_error.mean()


def test_calibration_curve_bins_and_bad_input():
    curve = calibration_curve(np.arange(7.0), np.ones(7), n_bins=3)
    assert curve.counts.tolist() == [3, 2, 2] and np.isnan(curve.spearman)  # |error| constant
    assert calibration_curve([0.1, 0.2], [0.1, 0.3], n_bins=10).counts.tolist() == [1, 1]
    with pytest.raises(InputError, match="n_bins"):
        calibration_curve([0.1], [0.1], n_bins=0)
    with pytest.raises(InputError, match="2 standard deviations for 3 errors"):
        calibration_curve([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="NaN or inf"):
        calibration_curve([0.1, np.nan], [0.1, 0.2])


def test_calibration_figure_shows_the_curve_the_ideal_line_counts_and_spearman():
    rng = np.random.default_rng(2)
    sigma = rng.uniform(0.05, 0.5, 1003)
    err = np.abs(rng.normal(0.0, sigma))
    fig = calibration_figure(sigma, err, n_bins=8, unit="eV/Å")
    observed, ideal = fig.data
    curve = calibration_curve(sigma, err, n_bins=8)
    np.testing.assert_allclose(observed.x, curve.centres)
    np.testing.assert_allclose(observed.y, curve.rms_error)
    counts = np.asarray(observed.customdata)[:, 0]
    assert counts.sum() == 1003 and len(counts) == 8 and "customdata[0]} points" in observed.hovertemplate
    assert ideal.name == "ideal (y = x)" and list(ideal.x) == list(ideal.y) and ideal.x[0] == 0
    assert ideal.x[1] >= max(curve.centres.max(), curve.rms_error.max())
    rho = float(re.search(r"Spearman ρ\(σ, \|error\|\) = (-?[0-9.]+)", fig.layout.title.text).group(1))
    assert rho == pytest.approx(spearmanr(sigma, err).statistic, abs=5e-4)
    assert "1003 points in 8 equal-count bins" in fig.layout.title.text
    assert fig.layout.yaxis.title.text.endswith("(eV/Å)")


# -------------------------------------------------------------------------- per-atom values


def test_atom_uncertainties_and_their_colours():
    fstd = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = {"forces_std": fstd, "energies_std": np.array([0.1, 0.2, 0.3]),
            "extrapolation_grade": np.zeros(3), "novelty": np.array([0.5, 2.0, np.inf]), "forces": fstd}
    u = atom_uncertainties(pred, n_atoms=3)
    assert list(u) == list(UNCERTAINTY_QUANTITIES)
    np.testing.assert_allclose(u["force std"], [5.0, 0.0, 1.0])
    colors, lo, hi = uncertainty_colors(u["force std"])
    assert (lo, hi) == (0.0, 5.0) and colors[1] == "#440154" and colors[0] == "#fde725"  # Viridis ends
    zero, lo, hi = uncertainty_colors(u["extrapolation"])  # all inside: the bottom colour, not the middle
    assert set(zero) == {"#440154"} and hi == 1.0
    inf, _, hi = uncertainty_colors(u["novelty"])
    assert hi == 2.0 and inf[2] == inf[1] == "#fde725"
    assert atom_uncertainties({"forces": fstd}) == {}
    with pytest.raises(InputError, match="forces_std has 3 values but the structures have 4 atoms"):
        atom_uncertainties(pred, n_atoms=4)


# ---------------------------------------------------------------------------- the viewer


@pytest.fixture(scope="module")
def committee_and_data():
    ds = gold(n_per_group=2, progress=False)
    train, val = random_split(ds, (0.7, 0.3), seed=0)
    sf = SymmetryFunctions([G2(1.0, 2.5), G2(0.5, 3.5)], cutoff=4.5, elements=["Au"])
    c = Committee(sf, n_members=3, hidden=(8,)).double()
    fit_committee(c, train, val, epochs=20, device="cpu", dtype=torch.float64, targets=("energy", "forces"))
    calibrate_committee(c, val)
    squeezed = bulk("Au", "fcc", a=3.2, cubic=True).repeat((2, 1, 1))  # 22 % shorter bonds: outside the domain
    squeezed.rattle(0.05, seed=1)
    squeezed.calc = EMT()  # labelled like the gold set
    squeezed.get_forces()
    with warnings.catch_warnings():  # labels only one of the two has (strain, free energy) are dropped
        warnings.simplefilter("ignore", UserWarning)
        shown = StructureDataset.from_atoms([val.get_atoms(0), squeezed])
    return c, shown


def test_structure_viewer_colours_by_committee_force_std_and_extrapolation(committee_and_data):
    c, ds = committee_and_data
    from mlexplore.widgets import StructureViewer

    viewer = StructureViewer(ds, potential=Potential(c))
    options = viewer.color_by.options
    assert options[0] == "element" and "|forces|" in options  # the dataset's own quantities stay
    assert options[-4:] == ("force std", "energy std", "extrapolation", "novelty")
    assert viewer.color_by.value == "force std"  # a potential given: coloured by its spread from the start
    pred = Potential(c, extrapolation="ignore").predict(ds)
    sigma = np.linalg.norm(pred["forces_std"], axis=1)[ds.atom_slice(0)]
    assert viewer.colors == uncertainty_colors(sigma, "RdBu_r")[0]
    assert viewer.color_range == pytest.approx((0.0, sigma.max()))
    assert f"force std (eV/Å): 0 (blue) … {sigma.max():.3g} (red)" in viewer.info.value
    sent = {m["kwargs"]["color"] for m in viewer.view._ngl_msg_archive
            if m.get("methodName") == "addRepresentation" and m["args"][0] == "spacefill"}
    assert sent >= set(viewer.colors)

    viewer.colorscale.value = "Viridis"
    viewer.color_by.value = "extrapolation"
    assert set(viewer.colors) == {"#440154"} and "0 of 32 atoms extrapolating" in viewer.info.value
    viewer.show(1)  # the squeezed cell
    grade = pred["extrapolation_grade"][ds.atom_slice(1)]
    assert grade.min() > 0 and viewer.colors == uncertainty_colors(grade, "Viridis")[0]
    n_out = int(pred["extrapolating"][ds.atom_slice(1)].sum())
    assert n_out == 8 and "8 of 8 atoms extrapolating" in viewer.info.value
    assert "extrapolation (× feature range): 0 …" in viewer.info.value
    viewer.color_by.value = "element"
    assert viewer.colors == ["#ffd123"] * 8  # Jmol gold


def test_structure_viewer_takes_precomputed_results(committee_and_data):
    c, ds = committee_and_data
    from mlexplore.widgets import StructureViewer

    atoms = ds.get_atoms(1)
    atoms.calc = Potential(c, extrapolation="ignore").as_ase_calculator()
    atoms.get_potential_energy()
    one = StructureDataset.from_atoms([atoms])
    viewer = StructureViewer(one)
    assert viewer.color_by.value == "element" and "force std" not in viewer.color_by.options
    viewer.add_prediction(atoms.calc.results)
    assert viewer.color_by.value == "force std"
    sigma = np.linalg.norm(atoms.calc.results["forces_std"], axis=1)
    assert viewer.colors == uncertainty_colors(sigma, "RdBu_r")[0]
    viewer.add_prediction({**atoms.calc.results, "forces_std": 2 * atoms.calc.results["forces_std"]})
    assert viewer.color_range == pytest.approx((0.0, 2 * sigma.max()))  # redrawn under the same name
    viewer.color_by.value = "novelty"
    assert "8 of 8 atoms extrapolating" in viewer.info.value
    with pytest.raises(InputError, match="forces_std has 8 values but the structures have 40 atoms"):
        StructureViewer(ds, prediction=atoms.calc.results)
    with pytest.raises(InputError, match="no per-atom uncertainty"):
        viewer.add_prediction({"forces": atoms.calc.results["forces"]})
    with pytest.raises(InputError, match="built-in colouring"):
        viewer.add_quantity("force std", np.zeros(8))

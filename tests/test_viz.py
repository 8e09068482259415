"""Figures: the data drawn is the data given; the ensemble band is computed correctly."""

import numpy as np
import pytest
from ase.build import bulk

from mlexplore import InputError, StructureDataset
from mlexplore.analysis import error_band, pca, rdf
from mlexplore.descriptors import G2, SymmetryFunctions, g2_maximum
from mlexplore.training import History
from mlexplore.viz import (basis_over_rdf, error_pdf, error_vs_reference, learning_curves, parity_plot,
                           pca_map, task_error_pdfs, task_table)


def test_parity_plot_draws_the_points_and_the_diagonal():
    y = np.linspace(0, 1, 50)
    p = y + 0.01 * np.sin(np.arange(50))
    fig = parity_plot(y, p, title="E", unit="eV")
    np.testing.assert_array_equal(fig.data[0].x, y)
    np.testing.assert_array_equal(fig.data[0].y, p)
    assert fig.data[1].x[0] == pytest.approx(min(y.min(), p.min()))
    assert "RMSE" in fig.layout.title.text and "R²" in fig.layout.title.text
    assert len(fig.data[0].marker.color) == 50
    with pytest.raises(InputError):
        parity_plot(y, p[:10])


def test_error_pdf_draws_the_band_and_the_mean_line():
    rng = np.random.default_rng(0)
    models = [rng.normal(0.0, 1.0, 300), rng.normal(0.5, 1.0, 300), rng.normal(-0.5, 1.5, 300)]
    band = error_band(models, grid=np.linspace(-5, 5, 101))
    fig = error_pdf(band, unit="meV/atom")
    assert len(fig.data) == 2 and "3 models" in fig.data[1].name
    np.testing.assert_allclose(fig.data[1].y, band.mean)
    np.testing.assert_allclose(fig.data[0].y[:101], band.mean + band.std)
    assert fig.layout.shapes[0].x0 == pytest.approx(np.mean([m.mean() for m in models]))

def test_learning_curves_and_pca_map():
    h = History()
    for e in range(3):
        h.log_epoch(e, 1.0 / (e + 1), 2.0 / (e + 1), 1e-3, 0.1)
        h.add("val_energy_rmse", 10.0 - e)
    fig = learning_curves(h)
    assert list(fig.data[1].y) == [2.0, 1.0, 2.0 / 3]
    assert list(learning_curves(h, ["val_energy_rmse"]).data[0].y) == [10.0, 9.0, 8.0]
    with pytest.raises(InputError, match="not in the history"):
        learning_curves(h, ["nope"])
    scores = pca(np.random.default_rng(1).normal(size=(20, 4))).scores
    cat = pca_map(scores, color=["a"] * 10 + ["b"] * 10, hover=[f"structure {i}" for i in range(20)])
    assert [d.name for d in cat.data] == ["a", "b"] and cat.data[1].text[0] == "structure 10"
    num = pca_map(scores, color=np.arange(20.0))
    np.testing.assert_array_equal(num.data[0].marker.color, np.arange(20.0))


def test_basis_functions_over_rdf_peak_where_the_helper_says():
    sf = SymmetryFunctions([G2(1.5, 2.0), G2(1.5, 4.0)], cutoff=6.0, elements=["Fe"])
    ds = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.83, cubic=True).repeat(3)])
    fig = basis_over_rdf(sf, rdf(ds, r_max=6.0))
    assert len(fig.data) == 3 and fig.data[2].yaxis == "y2"
    for trace, rs in zip(fig.data[:2], (2.0, 4.0)):
        r_peak = trace.x[int(np.argmax(trace.y))]
        assert r_peak == pytest.approx(g2_maximum(rs, 1.5, 6.0), abs=0.02)


def test_energy_volume_plot_groups_and_curve():
    from mlexplore.viz import energy_volume_plot

    fig = energy_volume_plot([11.0, 11.5, 12.0], [-8.8, -8.9, -8.5], groups=["FM", "AFM-B2", "FM"],
                             curve=([11.0, 12.0], [-8.85, -8.80]))
    assert [d.name for d in fig.data] == ["FM (2)", "AFM-B2 (1)", "equation of state"]
    np.testing.assert_allclose(fig.data[0].x, [11.0, 12.0])
    np.testing.assert_allclose(fig.data[0].y, [-8.8, -8.5])
    assert fig.data[2].mode == "lines"
    with pytest.raises(InputError, match="3 volumes and 2 energies"):
        energy_volume_plot([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="1 group labels for 2"):
        energy_volume_plot([1, 2], [1, 2], groups=["a"])


def test_error_vs_reference_groups_and_task_table():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.1, 2.0, 2.5, 4.0])
    fig = error_vs_reference(y, p, groups=["FM", "AFM", "FM", "AFM"])
    assert [d.name for d in fig.data] == ["FM (2)", "AFM (2)"]
    np.testing.assert_allclose(fig.data[0].y, [0.1, -0.5])
    rows = [{"tasks": "energy", "n_tasks": 1, "target": "energy", "rmse_mean": 0.5, "rmse_std": 0.1, "r2_mean": 0.9,
             "r2_std": 0.01, "seconds_mean": 2.0, "fom": 1.0},
            {"tasks": "energy+site_value", "n_tasks": 2, "target": "energy", "rmse_mean": 0.4, "rmse_std": 0.05,
             "r2_mean": 0.95, "r2_std": 0.01, "seconds_mean": 3.0, "fom": 0.83}]
    table = task_table(rows)
    cells = table.data[0].cells.values
    assert list(cells[0]) == ["STL energy", "MTL energy + site_value"] and cells[2][0] == "0.5 ± 0.1"
    with pytest.raises(InputError):
        task_table([])


def test_radial_values_are_the_features_of_a_dimer_and_shapes_draw():
    from ase import Atoms

    from mlexplore.descriptors import G4, GaussFourierRadial

    sf = SymmetryFunctions([G2(1.5, 2.0), GaussFourierRadial(eta=0.5, rs=3.0, eps_down=1.0, eps_up=1.0), G2(0.5, 4.0),
                            G4(0.01, 2, -1)], cutoff=5.0, cutoff_function="polynomial")
    r = np.array([1.2, 2.5, 3.3, 4.9, 5.5])
    dimers = [Atoms("H2", positions=[[0, 0, 0], [x, 0, 0]]) for x in r]
    all_columns = sf.compute(dimers).numpy()
    assert (all_columns[:, 3] == 0).all()  # a dimer has no triplets: angular terms are 0, not an error
    full = all_columns[0::2, :3]
    np.testing.assert_allclose(sf.radial_values(r), full, rtol=1e-12, atol=1e-300)
    theta = np.array([0.0, np.pi / 2, np.pi])
    np.testing.assert_allclose(sf.angular_values(theta)[:, 0], 0.5 * (1 - np.cos(theta)) ** 2)
    from mlexplore.viz import angular_shapes, cutoff_shapes

    cs = cutoff_shapes(5.0)
    assert [d.name for d in cs.data] == ["cosine", "polynomial", "tanh3"]
    assert all(d.y[0] == pytest.approx(1.0) and d.y[-1] == 0.0 for d in cs.data[:2])
    ang = angular_shapes(sf)
    assert ang.data[0].y[-1] == pytest.approx(2.0)  # λ = −1 peaks at θ = 180°


def test_value_colours():
    from mlexplore.viz import element_colors, value_colors

    cols, lo, hi = value_colors([-2.0, 0.0, 1.0])
    assert (lo, hi) == (-2.0, 2.0) and cols[1] == "#f7f7f7"  # signed values: 0 is the middle (white) colour
    cols, lo, hi = value_colors([1.0, 1.0 + 1e-12])
    assert cols[0] == cols[1]  # one value: one colour, not the two ends of the scale
    cols, lo, hi = value_colors([0.0, 1.0, 2.0], colorscale="Viridis")
    assert (lo, hi) == (0.0, 2.0) and cols[0] == "#440154" and cols[2] == "#fde725"
    assert element_colors([79]) == ["#ffd123"]
    with pytest.raises(InputError, match="NaN"):
        value_colors([np.nan])


def test_task_error_pdfs_one_band_per_combination():
    from mlexplore.training import TaskRun

    rng = np.random.default_rng(0)

    def run(r, tasks, spread):
        ref = {t: rng.normal(size=50) for t in tasks}
        return TaskRun(run=r, tasks=tasks, model=None, history=History(), seconds=1.0, reference=ref,
                       predicted={t: v + rng.normal(0, spread, 50) for t, v in ref.items()})

    runs = [run(r, ("a",), 0.1) for r in range(3)] + [run(r, ("a", "b"), 0.3) for r in range(3)]
    fig = task_error_pdfs(runs, "a", unit="eV")
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert names == ["STL a (3 runs)", "MTL a+b (3 runs)"] and fig.layout.xaxis.title.text.endswith("(eV)")
    stl, mtl = (t for t in fig.data if t.showlegend is not False)
    assert max(stl.y) > 2 * max(mtl.y)  # the tighter errors give the taller PDF
    assert [t.name for t in task_error_pdfs(runs, "b").data if t.showlegend is not False] == ["MTL a+b (3 runs)"]
    with pytest.raises(InputError, match="no run predicts 'c'"):
        task_error_pdfs(runs, "c")

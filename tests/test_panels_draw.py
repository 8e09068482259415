"""Panels only draw: every figure of the BasisTuner, PDFViewer and RegressionPlayground is the output
of a viz function for the panel's current inputs; no panel imports a private name."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

import mlexplore
from mlexplore import InputError, StructureDataset
from mlexplore.analysis import pair_density
from mlexplore.datasets import lattice_alloy
from mlexplore.descriptors import G2, SymmetryFunctions, radial_grid
from mlexplore.viz import (basis_over_rdf, environment_colorings, environment_map, error_pdf_bands, pca_map,
                           rdf_comparison, toy_fit_figure, toy_loss_figure)
from mlexplore.widgets import BasisTuner, PDFViewer, RegressionPlayground


def _same_traces(a, b):
    assert [t.name for t in a.data] == [t.name for t in b.data]
    for ta, tb in zip(a.data, b.data):
        np.testing.assert_allclose(np.asarray(ta.x, dtype=float), np.asarray(tb.x, dtype=float))
        np.testing.assert_allclose(np.asarray(ta.y, dtype=float), np.asarray(tb.y, dtype=float))


@pytest.fixture(scope="module")
def alloy():
    return lattice_alloy("CuAu", n_per_composition=2, rattle=0.1, progress=False)


@pytest.fixture(scope="module")
def tuner(alloy):
    return BasisTuner(alloy, max_environments=120, debounce=0)


def test_basis_figure_is_basis_over_rdf_of_the_tuned_descriptor(tuner):
    tuner.preset.value = "custom grid"
    tuner.radial_mode.value = "shifted"
    tuner.auto_eta.value = False
    tuner.eta.value = 2.0
    tuner.n_radial.value = 4
    tuner.r_range.value = (2.0, 4.0)
    tuner.n_angular_eta.value = 1
    sf = tuner.descriptor
    fig = tuner.basis_figure
    assert len(fig.data) == 5 and fig.data[-1].name == "g(r)" and fig.data[-1].yaxis == "y2"
    assert fig.layout.title.text == "4 radial + 6 angular terms, 26 features" == f"4 radial + 6 angular terms, {sf.n_features} features"
    assert fig.layout.shapes[0].x0 == sf.cutoff == tuner.rc.value
    np.testing.assert_allclose(fig.data[0].y, sf.radial_values(fig.data[0].x)[:, 0])
    expected = basis_over_rdf(sf, density=tuner.density, r_max=max(sf.neighbor_cutoff, 4.0) + 0.3, n=400,
                              show_counts=True)
    _same_traces(fig, expected)
    assert fig.layout.title.text == expected.layout.title.text
    assert fig.layout.shapes[0].x0 == expected.layout.shapes[0].x0
    tuner.rc.value = 5.5  # the R_c line follows
    assert tuner.basis_figure.layout.shapes[0].x0 == 5.5
    np.testing.assert_array_equal(tuner.density.g, pair_density(tuner.dataset).g)


def test_pca_map_is_environment_map_of_the_features(tuner):
    tuner.color_by.value = "element"
    res = tuner.pca_result
    expected = environment_map(res.scores, tuner.sample, "element", structure_index=tuner.sample_index,
                               explained_variance=res.explained_variance_ratio)
    fig = tuner.pca_figure
    assert [t.name for t in fig.data] == ["Cu", "Au"] or [t.name for t in fig.data] == ["Au", "Cu"]
    _same_traces(fig, expected)
    assert sum(len(t.x) for t in fig.data) == tuner.sample.n_total_atoms == len(tuner.features)
    assert fig.layout.xaxis.title.text == expected.layout.xaxis.title.text
    assert fig.layout.xaxis.title.text == f"PC 1 ({res.explained_variance_ratio[0]:.0%})"
    for trace, source in zip(fig.data, expected.data):
        np.testing.assert_array_equal(trace.customdata, source.customdata)
    # a click hands back the point's structure (in the dataset) and atom, from the figure's customdata
    s, a = tuner.pick(1, 3)
    assert (s, a) == tuple(int(v) for v in fig.data[1].customdata[3]) and s in set(tuner.sample_index)
    tuner.color_by.value = "structure"
    (trace,) = tuner.pca_figure.data
    assert trace.name == "environments" and trace.marker.colorbar.title.text == "structure"
    np.testing.assert_array_equal(trace.marker.color, np.repeat(tuner.sample_index, tuner.sample.n_atoms))
    tuner.color_by.value = "element"


def test_a_radial_control_reuses_the_angular_block(tuner):
    tuner.preset.value = "custom grid"
    tuner.auto_eta.value = False
    tuner.n_angular_eta.value = 1
    before = tuner.feature_cache.blocks_computed
    tuner.eta.value = 3.3
    assert tuner.feature_cache.last_reused == {"radial": False, "angular": True}
    assert tuner.feature_cache.blocks_computed == before + 1
    np.testing.assert_allclose(tuner.features, tuner.descriptor.compute(tuner.sample).numpy()
                               .astype(tuner.features.dtype), rtol=2e-5, atol=1e-6)


def test_pdf_viewer_figures_come_from_viz():
    fcc = StructureDataset.from_atoms([bulk("Fe", "fcc", a=3.44557, cubic=True).repeat(3)])
    bcc = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.83163, cubic=True).repeat(3)])
    viewer = PDFViewer({"fcc": fcc, "bcc": bcc})
    viewer.r_max.value = 5.0
    expected = rdf_comparison({n: viewer.rdf_of(n) for n in ("fcc", "bcc")}, pair="total")
    _same_traces(viewer.rdf_figure, expected)
    assert viewer.rdf_figure.data[0].x[-1] < 5.0 and viewer.rdf_figure.layout.yaxis.title.text == "g(r) total"
    rng = np.random.default_rng(1)
    sets = {"A": [rng.normal(0, 1, 100) for _ in range(2)], "B": [rng.normal(1, 2, 100) for _ in range(3)]}
    for name, errs in sets.items():
        viewer.add_errors(name, errs, unit="eV")
    _same_traces(viewer.error_figure, error_pdf_bands(sets, unit="eV"))
    assert len(viewer.error_figure.data) == 4 and len(viewer.error_figure.layout.shapes) == 2
    viewer.show_members.value = True  # every model's own PDF too
    assert len(viewer.error_figure.data) == 4 + 5
    _same_traces(viewer.error_figure, error_pdf_bands(sets, unit="eV", show_members=True))
    assert "RMSE" in viewer.stats.value and "<td>A</td><td>2</td>" in viewer.stats.value


def test_playground_figures_come_from_viz():
    pg = RegressionPlayground()
    pg.target.value = "lj"
    _same_traces(pg.fit_figure, toy_fit_figure(pg.data, target="lj"))
    assert list(pg.fit_figure.layout.yaxis.range) == [-1.5, 2.0] and len(pg.fit_figure.data[3].x) == 0
    lo, hi = pg.data["domain"]
    assert (pg.fit_figure.layout.shapes[0].x0, pg.fit_figure.layout.shapes[0].x1) == (lo, hi)
    pg.target.value = "sin"
    assert pg.fit_figure.layout.yaxis.range is None
    pg.epochs.value = 20
    pg.train()
    _same_traces(pg.fit_figure, toy_fit_figure(pg.data, pg.result, target="sin"))
    _same_traces(pg.loss_figure, toy_loss_figure(pg.result))
    assert len(pg.loss_figure.data[0].y) == 20 and pg.loss_figure.layout.yaxis.type == "log"


# ------------------------------------------------------------------- the viz functions themselves
def test_basis_over_rdf_keeps_its_behaviour_and_draws_counts_and_densities():
    sf = SymmetryFunctions(radial_grid(3, 2.0, 4.0), cutoff=5.0, elements=["Fe"])
    plain = basis_over_rdf(sf)
    assert len(plain.data) == 3 and plain.layout.title.text is None and plain.data[0].x[-1] == 5.0
    assert plain.layout.shapes[0].x0 == 5.0 and plain.layout.yaxis.title.text == "basis value (one neighbour)"
    ds = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.83, cubic=True).repeat(3)])
    dens = pair_density(ds, r_max=6.0)
    fig = basis_over_rdf(sf, density=dens, title="Fe", show_counts=True, layout=dict(height=300))
    assert fig.data[-1].name == "g(r)" and fig.data[-1].yaxis == "y2" and fig.layout.height == 300
    assert fig.layout.title.text == "Fe: 3 radial + 0 angular terms, 3 features"
    with pytest.raises(InputError):
        basis_over_rdf(sf, result=object(), density=dens)
    clusters = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.83, cubic=True).repeat(2)])
    clusters.pbc[:] = False
    assert pair_density(clusters, r_max=5.0).name == "pair density (scaled)"
    assert pair_density(clusters, r_max=5.0).g.max() == pytest.approx(1.0)


def test_environment_map_groups_and_carries_ids(alloy):
    ds = alloy[:3]
    scores = np.random.default_rng(0).normal(size=(ds.n_total_atoms, 2))
    fig = environment_map(scores, ds, "element", structure_index=[10, 11, 12], explained_variance=[0.5, 0.25])
    ids = np.concatenate([t.customdata for t in fig.data])
    assert set(ids[:, 0]) == {10, 11, 12} and ids[:, 1].max() == ds.n_atoms.max() - 1
    assert fig.layout.xaxis.title.text == "PC 1 (50%)" and fig.layout.yaxis.title.text == "PC 2 (25%)"
    energy = environment_map(scores, ds, "energy per atom")
    np.testing.assert_allclose(energy.data[0].marker.color,
                               np.repeat(ds.label("energy") / ds.n_atoms, ds.n_atoms))
    assert environment_colorings(ds)[:2] == ["element", "structure"]
    with pytest.raises(InputError, match="color_by"):
        environment_map(scores, ds, "colour")
    with pytest.raises(InputError, match="customdata"):
        pca_map(scores, customdata=np.zeros((3, 2)))


def test_distribution_figures():
    fe = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.83163, cubic=True).repeat(3)])
    from mlexplore.analysis import rdf

    fig = rdf_comparison({"Fe": rdf(fe)}, pair="Fe-Ni")
    assert len(fig.data) == 0 and fig.layout.yaxis.title.text == "g(r) Fe-Ni"
    peak = fig = rdf_comparison({"Fe": rdf(fe)})
    assert peak.data[0].x[int(np.argmax(peak.data[0].y))] == pytest.approx(2.83163 * math.sqrt(3) / 2, abs=0.02)
    empty = error_pdf_bands({})
    assert len(empty.data) == 0
    with pytest.raises(InputError):
        error_pdf_bands({"x": [[1.0]]})
    assert fig is peak


# ------------------------------------------------------------------------ no private imports
PANELS = ["basis_tuner", "pdf_viewer", "structure_viewer", "playground", "clickable_figure", "plot_output"]


@pytest.mark.parametrize("module", PANELS)
def test_panels_import_no_private_names(module):
    path = Path(mlexplore.__file__).parent / "widgets" / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if node.level or parts[0] == "mlexplore":  # the package's own modules
                assert not any(p.startswith("_") for p in parts), f"{module}: from {node.module} import …"
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{module} imports private {private} from {node.module}"
    assert "meta_index" not in path.read_text(encoding="utf-8")


def test_no_second_peak_finder_or_featuriser_in_the_panels():
    source = (Path(mlexplore.__file__).parent / "widgets" / "basis_tuner.py").read_text(encoding="utf-8")
    for name in ("neighbor_pairs", "pair_vectors", "find_peaks", "go.Scatter", "add_scatter"):
        assert name not in source
    assert G2  # the term class the tuner reads its maxima from is public


def test_the_pdf_viewers_statistics_come_from_the_library():
    import numpy as np

    from mlexplore.analysis import ensemble_error_stats
    from mlexplore.widgets import PDFViewer

    rng = np.random.default_rng(0)
    errs = [rng.normal(0.1, 0.5, 200), rng.normal(-0.05, 0.3, 200)]
    st = ensemble_error_stats(errs)
    rmses = [np.sqrt(np.mean(e ** 2)) for e in errs]
    assert st["n_models"] == 2 and st["rmse_mean"] == np.mean(rmses) and st["rmse_std"] == np.std(rmses)
    assert st["mean_error"] == np.mean([e.mean() for e in errs])
    viewer = PDFViewer()
    viewer.add_errors("two models", errs)
    viewer.error_sets.value = ("two models",)
    viewer.update_errors()
    assert f"<td>{st['mean_error']:.4g}</td><td>{st['rmse_mean']:.4g} ± {st['rmse_std']:.2g}</td>" in viewer.stats.value

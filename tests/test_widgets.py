"""Widgets driven from Python like a user: set controls, run callbacks, check what the figures show."""

import numpy as np
import plotly.graph_objects as go

from mlexplore.training.toy import ToyProblem, fit_toy, toy_data
from mlexplore.widgets import RegressionPlayground
from mlexplore.widgets.clickable_figure import ClickableFigure
from mlexplore.widgets.plot_output import PLOTLY_MIME, PlotOutput


def test_toy_library_fits_sin_and_shows_extrapolation():
    data = toy_data(ToyProblem("sin", n_samples=60, noise=0.0, extrapolate=0.5))
    fit = fit_toy(data, hidden=(20,), activation="tanh", epochs=300, lr=1e-2)
    inside = (data["grid"] >= data["domain"][0]) & (data["grid"] <= data["domain"][1])
    err = np.abs(fit.prediction - data["truth"])
    assert err[inside].mean() < 0.1  # learned inside the training domain
    assert err[~inside].mean() > 2 * err[inside].mean()  # and worse outside it
    assert fit.val_loss[-1] < fit.val_loss[0]


def test_lj_oversampling_puts_half_the_points_near_the_minimum():
    plain = toy_data(ToyProblem("lj", n_samples=200))
    over = toy_data(ToyProblem("lj", n_samples=200, oversample_minimum=True))
    near = lambda x: np.mean(np.abs(x - 2 ** (1 / 6)) < 0.15)  # noqa: E731
    assert near(over["x"]) > near(plain["x"]) + 0.3


def test_playground_controls_change_the_figure():
    pg = RegressionPlayground()
    x0 = np.array(pg.fit_figure.data[1].x)
    pg.samples.value = 80
    assert len(pg.fit_figure.data[1].x) == 80
    pg.target.value = "square"
    assert set(np.round(pg.fit_figure.data[0].y, 6)) <= {-1.0, 0.0, 1.0}
    pg.noise.value = 0.3
    assert not np.allclose(pg.fit_figure.data[1].y, np.sign(np.sin(pg.fit_figure.data[1].x)))
    assert len(x0) == 30


def test_playground_train_updates_fit_and_losses():
    pg = RegressionPlayground()
    pg.epochs.value = 40
    pg.train()
    assert len(pg.fit_figure.data[3].x) == len(pg.fit_figure.data[0].x)
    assert len(pg.loss_figure.data[0].y) == 40
    assert pg.status.value.startswith("done")


def test_playground_background_training_and_stop():
    pg = RegressionPlayground()
    pg.epochs.value = 3000
    pg.train(background=True)
    pg.stop()
    assert not pg._thread.is_alive()
    assert len(pg.loss_figure.data[0].y) < 3000


def test_errors_show_in_the_status_area():
    pg = RegressionPlayground()
    pg.samples.min = 1
    pg.samples.value = 1  # fewer than two samples: the library refuses
    assert "at least two samples" in pg.status.value


# ---------------------------------------------------------------- the descriptor, structure and task panels
import math  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402
from ase.build import bulk  # noqa: E402

from mlexplore import InputError, StructureDataset  # noqa: E402
from mlexplore.analysis import error_band  # noqa: E402
from mlexplore.datasets import lattice_alloy  # noqa: E402
from mlexplore.descriptors import SymmetryFunctions, g2_maximum  # noqa: E402
from mlexplore.widgets import BasisTuner, PDFViewer, StructureViewer, TaskComparison  # noqa: E402


@pytest.fixture(scope="module")
def alloy():
    return lattice_alloy("CuAu", n_per_composition=2, rattle=0.1, progress=False)


@pytest.fixture(scope="module")
def tuner(alloy):
    return BasisTuner(alloy, max_environments=200, debounce=0)


def _peak(trace):
    return trace.x[int(np.argmax(trace.y))]


def test_basis_tuner_moving_rs_moves_the_curve_maximum(tuner):
    tuner.preset.value = "custom grid"
    tuner.radial_mode.value = "shifted"
    tuner.auto_eta.value = False
    tuner.eta.value = 4.0
    tuner.n_radial.value = 3
    tuner.r_range.value = (2.0, 4.0)
    last = tuner.basis_figure.data[2]
    assert _peak(last) == pytest.approx(g2_maximum(4.0, 4.0, tuner.rc.value), abs=0.03)
    tuner.r_range.value = (2.0, 3.0)
    assert _peak(tuner.basis_figure.data[2]) == pytest.approx(g2_maximum(3.0, 4.0, tuner.rc.value), abs=0.03)
    assert "r_max" in tuner.maxima.value and "3" in tuner.maxima.value
    assert tuner.basis_figure.data[-1].name == "g(r)"


def test_basis_tuner_rc_changes_the_pca_map(tuner):
    before = np.array(tuner.pca_figure.data[0].x)
    feats = tuner.features.copy()
    tuner.rc.value = 6.5
    assert tuner.features.shape[0] == feats.shape[0]
    after = np.array(tuner.pca_figure.data[0].x)
    assert not np.allclose(np.sort(before), np.sort(after))
    assert "environments" in tuner.correlation.value and "featurised" in tuner.status.value
    # the widget model's state holds the new map too (what a view drawn later starts from)
    model_data, model_layout = tuner.pca_figure._widget_data, tuner.pca_figure._widget_layout
    assert len(model_data) == len(tuner.pca_figure.data)
    np.testing.assert_allclose(np.asarray(model_data[0]["x"]), after)
    assert model_layout["xaxis"]["title"]["text"].startswith("PC 1")


def test_clickable_figure_loads_plotly_once_per_page_through_a_small_module():
    fig = ClickableFigure(layout=dict(title="t"))
    state = fig.get_state()
    # the anywidget module is the loader (its initialize returns at once); plotly comes as a trait
    assert len(state["_esm"]) < 5000 and "import(url)" in state["_esm"] and "__mlexplorePlotlyBundles" in state["_esm"]
    assert len(state["_plotly_bundle"]) > 1_000_000 and "FigureModel" in state["_plotly_bundle"]
    fig.add_scatter(x=[0.0, 1.0], y=[2.0, 3.0], name="a")
    assert fig.get_state(["_widget_data"])["_widget_data"] == []  # plotly sent it as a one-shot message
    fig.sync()
    (trace,) = fig.get_state(["_widget_data"])["_widget_data"]
    assert trace["name"] == "a"


def test_basis_tuner_hands_its_descriptor_to_training(tuner, alloy):
    tuner.preset.value = "bloore-fe-bp"
    assert tuner.rc.value == 6.0 and len(tuner.terms()) == 42
    sf = tuner.descriptor
    assert isinstance(sf, SymmetryFunctions) and sf.elements == ["Cu", "Au"]
    assert sf.n_features == 24 * 2 + 18 * 3 == len(sf.feature_names)
    assert tuner.features.shape[1] == sf.n_features
    g = sf.compute(alloy[:2])
    assert g.shape == (alloy[:2].n_total_atoms, sf.n_features)
    tuner.n_radial.value = 5  # touching a grid control leaves the preset
    assert tuner.preset.value == "custom grid"


def test_basis_tuner_saves_the_tuned_basis_for_training(tuner, alloy, tmp_path):
    from mlexplore.descriptors import load_basis

    tuner.preset.value = "custom grid"
    tuner.n_radial.value = 6
    tuner.rc.value = 5.5
    tuner.save_path.value = str(tmp_path / "tuned.json")
    tuner.save_button.click()
    assert "saved" in tuner.status.value and "tuned.json" in tuner.status.value
    again = load_basis(tmp_path / "tuned.json")
    assert again.feature_names == tuner.descriptor.feature_names and again.cutoff == 5.5
    np.testing.assert_array_equal(again.compute(alloy[:1]), tuner.descriptor.compute(alloy[:1]))
    tuner.save_path.value = str(tmp_path / "no-such-dir" / "sub" / "x.json")  # folders are made
    assert tuner.save_basis() is not None
    tuner.save_path.value = "  "
    assert tuner.save_basis() is None and "give a file name" in tuner.status.value


def test_basis_tuner_buttons_rdf_modes_and_attenuation(tuner):
    tuner.rc.value = 6.0
    tuner.n_radial.value = 3
    tuner.rs_at_rdf_modes()
    rs = sorted(t.rs for t in tuner.terms() if type(t).__name__ == "G2")
    assert tuner.radial_mode.value == "RDF modes" and len(rs) == 3
    assert 2.5 < rs[0] < 2.9  # the FCC nearest-neighbour shell of CuAu (a ≈ 3.75 Å)
    from scipy.signal import find_peaks

    peaks = tuner.density.r[find_peaks(tuner.density.g, height=0.5)[0]]
    assert all(np.min(np.abs(peaks - r)) < 0.1 for r in rs)  # every centre sits on a g(r) peak
    tuner.n_radial.value = 2  # in this mode the count still chooses: the two strongest peaks
    assert len([t for t in tuner.terms() if type(t).__name__ == "G2"]) == 2
    assert tuner.r_range.disabled  # the peaks choose R_s, the range slider has no say
    tuner.n_radial.value = 30  # more terms than peaks below R_c: fewer curves, and the panel says why
    n_found = len([t for t in tuner.terms() if type(t).__name__ == "G2"])
    assert n_found < 30 and len(tuner.basis_figure.data) == n_found + 1
    assert f"{n_found} g(r) peaks below R_c" in tuner.maxima.value
    tuner.n_radial.value = 3
    assert "peaks below R_c" not in tuner.maxima.value
    tuner.attenuation.value = 0.5
    tuner.eta_from_attenuation()
    spacing = min(np.diff(rs))
    assert tuner.eta.value == pytest.approx(math.log(2) / spacing ** 2, rel=0.03)
    tuner.radial_mode.value = "shifted"
    assert not tuner.r_range.disabled


def test_basis_tuner_errors_show_in_the_status_area(tuner):
    tuner.preset.value = "custom grid"
    tuner.radial_mode.value = "shifted"
    tuner.r_range.value = (3.0, 3.0)  # an empty range: the library refuses, the panel says why
    assert "r_min < r_max" in tuner.status.value
    tuner.r_range.value = (1.5, 4.5)
    assert "crimson" not in tuner.status.value


def test_pca_click_shows_the_structure(tuner, alloy):
    viewer = StructureViewer(alloy)
    tuner.on_pick(viewer.show_atom)
    s, a = tuner.pick(0, 7)
    assert viewer.index.value == s and viewer.highlight == a
    assert f"atom {a} highlighted" in viewer.info.value
    assert tuner.point_structure[0][7] == s


def test_structure_viewer_colours_arrows_and_repeat():
    fe = bulk("Fe", "bcc", a=2.87, cubic=True).repeat((2, 1, 1))
    fe.arrays["magmoms"] = np.array([2.2, -2.2, 2.2, -2.2])
    fe.arrays["forces"] = np.array([[0.1, 0, 0], [0, 0.2, 0], [0, 0, 0], [0, 0, -0.1]])
    viewer = StructureViewer(StructureDataset.from_atoms([fe, fe.copy()]))
    assert viewer.colors == ["#e06633"] * 4  # Jmol iron
    viewer.color_by.value = "magmoms"
    assert viewer.colors[0] == viewer.colors[2] != viewer.colors[1] == viewer.colors[3]
    assert viewer.color_range == (-2.2, 2.2)
    reps = [m for m in viewer.view._ngl_msg_archive if m.get("methodName") == "addRepresentation"]
    assert {r["args"][0] for r in reps} >= {"spacefill", "unitcell"}
    viewer.arrows_of.value = "forces"
    viewer.arrow_scale.value = 2.0
    np.testing.assert_allclose(viewer.arrows[1, 1] - viewer.arrows[1, 0], [0, 0.4, 0])
    assert any(m.get("methodName") == "addShape" for m in viewer.view._ngl_msg_archive)
    viewer.repeat.value = 2
    assert len(viewer.atoms) == 32 and len(viewer.colors) == 32 and viewer.arrows.shape == (32, 2, 3)
    viewer.add_quantity("error", np.arange(8.0))
    assert viewer.color_by.value == "error" and len(set(viewer.colors)) == 4  # 4 values, repeated
    with pytest.raises(InputError, match="3 values but the dataset has 8 atoms"):
        viewer.add_quantity("bad", [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="out of range"):
        viewer.show(5)


def test_pdf_viewer_rdfs_and_error_bands():
    fcc = StructureDataset.from_atoms([bulk("Fe", "fcc", a=3.44557, cubic=True).repeat(3)])
    bcc = StructureDataset.from_atoms([bulk("Fe", "bcc", a=2.83163, cubic=True).repeat(3)])
    viewer = PDFViewer({"fcc": fcc, "bcc": bcc})
    assert [d.name for d in viewer.rdf_figure.data] == ["fcc", "bcc"]
    assert _peak(viewer.rdf_figure.data[0]) == pytest.approx(3.44557 / math.sqrt(2), abs=0.02)
    assert _peak(viewer.rdf_figure.data[1]) == pytest.approx(2.83163 * math.sqrt(3) / 2, abs=0.02)
    viewer.selected.value = ("bcc",)
    assert [d.name for d in viewer.rdf_figure.data] == ["bcc"]
    assert "no models yet" in viewer.stats.value
    rng = np.random.default_rng(0)
    stl = [rng.normal(0, 2, 200) for _ in range(3)]
    viewer.add_errors("STL", stl, unit="meV/atom")
    viewer.add_errors("MTL", [rng.normal(0, 1, 200) for _ in range(3)])
    names = [d.name for d in viewer.error_figure.data]
    assert "STL (3 models)" in names and "MTL (3 models)" in names
    mean_trace = viewer.error_figure.data[names.index("STL (3 models)")]
    np.testing.assert_allclose(mean_trace.y, error_band(stl, grid=np.array(mean_trace.x)).mean)
    assert viewer.error_figure.layout.xaxis.title.text == "error (meV/atom)"


@pytest.fixture(scope="module")
def alloy4():
    return lattice_alloy("CuAu", n_per_composition=4, progress=False)


def test_task_comparison_fills_its_table(alloy4):
    tc = TaskComparison(alloy4, epochs=5, n_runs=2, device="cpu")
    tc.targets.value = ("mixing_energy", "energies")
    assert tc.combinations.options == ("mixing_energy", "energies", "mixing_energy+energies")
    tc.start()
    assert len(tc.runs) == 6 and tc.progress.value == 6 and tc.status.value.startswith("done")
    cells = tc.table.data[0].cells.values
    assert list(cells[0]) == ["STL mixing_energy", "STL energies", "MTL mixing_energy + energies",
                              "MTL mixing_energy + energies"]
    assert all("±" in c for c in cells[2])
    assert all(len(tr.x) == 5 for tr in tc.curves.data)  # a learning curve per model
    assert any("MTL" in (d.name or "") for d in tc.error_pdfs.data) and len(tc.parity.data) == 5
    # what the page is sent: each figure as it is now, through the plotly MIME renderer
    shown = {name: view.outputs[0]["data"][PLOTLY_MIME] for name, view in tc.views.items()}
    assert shown["table"]["data"][0]["cells"]["values"][0] == list(cells[0])
    assert len(shown["curves"]["data"]) == 6 and shown["curves"]["layout"]["title"]["text"] == "validation loss per model"
    assert len(shown["parity"]["data"]) == 5 and len(shown["error_pdfs"]["data"]) == len(tc.error_pdfs.data)


def test_plot_output_sends_the_figure_as_it_is_now():
    fig = go.Figure(layout=dict(title="t"))
    view = PlotOutput(fig)
    assert view.outputs[0]["data"][PLOTLY_MIME]["data"] == []
    fig.add_scatter(x=np.arange(3.0), y=[1.0, 2.0, 4.0], name="s")
    assert view.outputs[0]["data"][PLOTLY_MIME]["data"] == []  # nothing sent until show()
    view.show()
    (trace,) = view.outputs[0]["data"][PLOTLY_MIME]["data"]
    assert len(view.outputs) == 1 and trace["name"] == "s"
    assert view.outputs[0]["data"][PLOTLY_MIME]["layout"]["title"]["text"] == "t"


def test_task_comparison_stop_keeps_finished_models(alloy4):
    tc = TaskComparison(alloy4, epochs=40, n_runs=12, device="cpu")
    tc.targets.value = ("mixing_energy",)
    tc.start(background=True)
    deadline = time.time() + 120
    while not tc.runs and time.time() < deadline:
        time.sleep(0.05)
    tc.stop()
    assert not tc._thread.is_alive()
    assert 1 <= len(tc.runs) < 12 and tc.status.value.startswith("stopped")
    assert len(tc.table.data[0].cells.values[0]) == 1  # the finished models are in the table
    assert tc.start_button.disabled is False


def test_task_comparison_reports_bad_choices(alloy):
    tc = TaskComparison(alloy, epochs=2, n_runs=1, device="cpu")
    tc.targets.value = ()
    tc.start()
    assert "choose at least one target" in tc.status.value and not tc.runs
    tc.targets.value = ("mixing_energy",)
    tc.start()  # two structures per composition: a stratified validation set would be empty
    assert "validation" in tc.status.value and "empty" in tc.status.value and not tc.runs


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_basis_tuner_features_equal_the_descriptor_and_reuse_the_angular_block(alloy, precision):
    tuner = BasisTuner(alloy, max_environments=150, debounce=0, precision=precision)
    tol = {"rtol": 1e-12, "atol": 1e-14} if precision == "float64" else {"rtol": 2e-5, "atol": 1e-6}
    assert tuner.features.dtype == np.dtype(precision)
    tuner.preset.value = "custom grid"
    tuner.n_angular_eta.value = 1
    full = tuner.descriptor.compute(tuner.sample).numpy()
    np.testing.assert_allclose(tuner.features, full[: len(tuner.features)], **tol)
    angular_before = tuner.feature_cache.block(tuner.descriptor, "angular")
    tuner.auto_eta.value = False
    tuner.eta.value = 3.0  # a radial change: the angular block is the same object afterwards
    angular_after = tuner.feature_cache.block(tuner.descriptor, "angular")
    assert angular_after is angular_before
    np.testing.assert_allclose(tuner.features, tuner.descriptor.compute(tuner.sample).numpy(), **tol)
    # R_c moves: the list is cut from the one built for the slider's largest R_c, not searched again
    master = tuner.feature_cache.neighbors
    for rc in (4.2, 6.3):
        tuner.rc.value = rc
        assert all(a is b for a, b in zip(tuner.feature_cache.neighbors, master)) and tuner.descriptor.cutoff == rc
        np.testing.assert_allclose(tuner.features, tuner.descriptor.compute(tuner.sample).numpy(), **tol)


def test_basis_tuner_on_a_dataset_with_clusters_and_slabs():
    from mlexplore.datasets import gold

    ds = gold(n_per_group=1, progress=False)
    tuner = BasisTuner(ds, max_environments=100, debounce=0)
    assert tuner.basis_figure.data[-1].name == "g(r), periodic structures"
    clusters = ds[[k for k, t in enumerate(ds.tags) if "cluster" in t]]
    only = BasisTuner(clusters, max_environments=50, debounce=0)
    assert only.basis_figure.data[-1].name == "pair density (scaled)" and "crimson" not in only.status.value


def test_task_comparison_graph_radius_goes_to_the_graphnet_only(alloy4):
    tc = TaskComparison(alloy4, model="graph", epochs=1, n_runs=1, device="cpu", cutoff=3.2)
    assert tc.radius.value == 3.2 and not tc.radius.disabled
    tc.targets.value = ("mixing_energy",)
    tc.radius.value = 4.5
    tc.start()
    assert tc.status.value.startswith("done"), tc.status.value
    assert tc.plan.options["model_kwargs"]["cutoff"] == 4.5 and tc.runs[0].model.cutoff == 4.5
    tc.model.value = "lattice"  # a LatticeMLP has no radius: the control is off and nothing is passed
    assert tc.radius.disabled
    tc.start()
    assert tc.status.value.startswith("done"), tc.status.value
    assert "cutoff" not in tc.plan.options["model_kwargs"]

"""The LDOSExplorer panel (mlexplore.widgets.ldos_explorer), driven from Python on the shipped
aluminium snapshot: a click on the density picks the grid point under it, whose LDOS (DFT and
prediction) the point figure then shows; the plane controls move the slice; the summary holds
the library's error numbers."""

from __future__ import annotations

import numpy as np
import pytest

from mlexplore.analysis import ldos_errors, ldos_observables
from mlexplore.dft import load_aluminium_ldos
from mlexplore.errors import InputError
from mlexplore.widgets import LDOSExplorer


@pytest.fixture(scope="module")
def snapshot():
    return next(s for s in load_aluminium_ldos() if s.tag == "test")


@pytest.fixture(scope="module")
def predicted(snapshot):
    r = snapshot.result
    noise = 1 + 0.05 * np.random.default_rng(0).standard_normal(r.ldos.shape[:3])
    return (r.ldos * noise[..., None]).astype(np.float32)


class _Points:
    def __init__(self, x, y):
        self.xs, self.ys, self.point_inds = [x], [y], [0]


def test_a_click_on_the_density_shows_the_ldos_of_that_grid_point(snapshot, predicted):
    r = snapshot.result
    panel = LDOSExplorer(snapshot, predicted)
    heatmaps = [t for t in panel.slice_figure.data if t.type == "heatmap"]
    assert [t.name for t in heatmaps] == ["DFT", "prediction", "prediction − DFT"]
    # the plane shown is plane 0 along c, with the library's densities
    ref = ldos_observables(r.ldos, r.energies, r.voxel_volume, r.n_electrons, r.kT)
    np.testing.assert_allclose(np.asarray(heatmaps[0].z), ref.density[:, :, 0].T)
    # click the prediction panel at grid column 3, row 5 (x along a, y along b)
    trace = heatmaps[1]
    panel._on_click(trace, _Points(float(trace.x[3]), float(trace.y[5])), None)
    assert panel.point == (3, 5, 0)
    curves = {t.name: np.asarray(t.y) for t in panel.point_figure.data}
    np.testing.assert_allclose(curves["DFT"], r.ldos[3, 5, 0])
    np.testing.assert_allclose(curves["prediction"], predicted[3, 5, 0])
    assert sum(t.name == "picked point" for t in panel.slice_figure.data) == 3
    assert "(3, 5, 0)" in panel.status.value


def test_the_plane_controls_move_the_slice_and_the_mark(snapshot, predicted):
    r = snapshot.result
    panel = LDOSExplorer(snapshot, predicted)
    panel.pick(2, 4, 6)
    assert not any(t.name == "picked point" for t in panel.slice_figure.data)  # plane 0 shown, point on 6
    panel.plane.value = 6
    assert sum(t.name == "picked point" for t in panel.slice_figure.data) == 3
    panel.axis.value = 0
    assert panel.plane.max == r.ldos.shape[0] - 1
    panel.plane.value = 2
    ref = ldos_observables(r.ldos, r.energies, r.voxel_volume, r.n_electrons, r.kT).density
    np.testing.assert_allclose(np.asarray(panel.slice_figure.data[0].z), ref[2].T)
    assert panel.grid_index(panel.slice_figure.data[0].x[4], panel.slice_figure.data[0].y[6]) == (2, 4, 6)
    with pytest.raises(InputError):
        panel.pick(99, 0, 0)


def test_the_summary_holds_the_library_errors_and_works_without_a_prediction(snapshot, predicted):
    r = snapshot.result
    panel = LDOSExplorer(snapshot, predicted)
    e = ldos_errors(predicted, r.ldos, r.energies, r.voxel_volume, r.n_electrons, r.kT, len(r.numbers))
    assert f"{e.density_mape:.2f} %" in panel.summary.value and f"{e.band_energy:+.1f} meV/atom" in panel.summary.value
    alone = LDOSExplorer(snapshot)
    assert [t.name for t in alone.slice_figure.data if t.type == "heatmap"] == ["DFT"]
    alone.pick(1, 1, 0)
    assert [t.name for t in alone.point_figure.data] == ["DFT"]
    assert sum(t.name == "picked point" for t in alone.slice_figure.data) == 1
    with pytest.raises(InputError) as info:
        LDOSExplorer(snapshot, predicted[:2])
    assert info.value.field == "predicted"

"""LDOS figures: the data drawn are the data given (a plane of a known field, the atoms in it)."""

import numpy as np
import pytest

from mlexplore import InputError
from mlexplore.viz import density_slice, dos_figure


def test_dos_figure_draws_every_curve_and_fermi_level():
    e = np.linspace(-5, 5, 11)
    fig = dos_figure(e, {"DFT": e ** 2, "network": e ** 2 + 1}, fermi_levels={"DFT": 0.5})
    assert [t.name for t in fig.data] == ["DFT", "network"]
    np.testing.assert_array_equal(fig.data[1].y, e ** 2 + 1)
    assert any(s.x0 == 0.5 for s in fig.layout.shapes)
    with pytest.raises(InputError, match="values for 11 energies"):
        dos_figure(e, {"bad": np.ones(3)})


def test_density_slice_shows_the_plane_its_error_and_the_atoms_in_it():
    n = (4, 6, 8)
    i, j, k = np.meshgrid(*(np.arange(m) for m in n), indexing="ij")
    ref = i + 10.0 * j + 100.0 * k  # every grid value tells where it is
    pred = ref + 1.0
    cell = np.diag([4.0, 6.0, 8.0])
    positions = np.array([[1.0, 2.0, 2.0], [3.0, 3.0, 2.02], [2.0, 2.0, 5.0], [0.0, 0.0, 10.0]])  # last: image at z = 2
    fig = density_slice(ref, cell, positions, predicted=pred, axis=2, index=2)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 3
    np.testing.assert_array_equal(heat[0].z, ref[:, :, 2].T)  # rows along y, columns along x
    np.testing.assert_array_equal(heat[2].z, np.ones((6, 4)))
    np.testing.assert_allclose(heat[0].x, [0, 1, 2, 3])
    atoms = fig.data[1]
    assert sorted(zip(atoms.x, atoms.y)) == [(0.0, 0.0), (1.0, 2.0), (3.0, 3.0)]
    alone = density_slice(ref, cell, positions, axis=0, index=1)
    assert len([t for t in alone.data if t.type == "heatmap"]) == 1
    np.testing.assert_array_equal(alone.data[0].z, ref[1].T)
    with pytest.raises(InputError, match="index"):
        density_slice(ref, cell, positions, index=9)
    with pytest.raises(InputError, match="predicted"):
        density_slice(ref, cell, positions, predicted=ref[:2])

"""The spin Monte Carlo panel, driven from Python: set a control, run sweeps, assert what it shows."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import bulk

from mlexplore.descriptors import G2, SpinGaussPair, SpinGaussSelf, SymmetryFunctions
from mlexplore.models import BPNN
from mlexplore.training import Potential
from mlexplore.analysis import polar_angles
from mlexplore.widgets import SpinMonteCarloPanel


def _panel(**kwargs):
    sf = SymmetryFunctions([G2(0.5, 2.5), SpinGaussSelf(0.05, 2, 4.0), SpinGaussPair("dot", 0.05, 2.0)],
                           cutoff=3.5, elements=["Fe"])
    torch.manual_seed(0)
    pot = Potential(BPNN(sf, hidden=(6,)).double(), extrapolation="ignore")
    return SpinMonteCarloPanel(pot, bulk("Fe", "bcc", a=2.83, cubic=True).repeat(2), **kwargs)


def test_sweeps_draw_traces_statistics_and_the_lattice():
    panel = _panel(temperatures=(300.0, 1500.0), initial=("FM", "PM"))
    assert panel.mc.n_replicas == 4 and panel.replica.max == 3
    panel.run_sweeps(9)
    fig = panel.figure
    assert len(fig.data) == 8  # |M| and energy for each replica
    np.testing.assert_allclose(fig.data[0].y, panel.mc.net_spin_ratio_[:, 0])
    assert fig.data[0].name == "300 K, FM"
    np.testing.assert_allclose(fig.data[1].y, panel.mc.energies_[:, 0] / 16)
    assert "burn-in" in panel.stats.value and panel.stats.value.count("<tr>") == 4
    panel.replica.value = 3
    spins = panel.mc.spins[3]
    np.testing.assert_allclose(panel.viewer.dataset.atom_labels["magmoms"], spins)
    assert len(panel.viewer.arrows) == 16
    np.testing.assert_allclose(panel.viewer.arrows[:, 1] - panel.viewer.arrows[:, 0],
                               spins * panel.viewer.arrow_scale.value)
    assert panel.viewer.color_by.value == "polar angle (rad)"
    np.testing.assert_allclose(panel.viewer.quantities["polar angle (rad)"], polar_angles(spins))


def test_controls_start_a_new_run_and_bad_input_is_shown():
    panel = _panel()
    panel.run_sweeps(2)
    panel.temperatures.value = "300, 600, 900"
    assert panel.mc.n_replicas == 6 and panel.mc.sweeps_done == 0
    panel.initial.value = ("AFM",)
    assert panel.mc.n_replicas == 3 and panel.labels == ["AFM"] * 3
    assert panel.mc.net_spin_ratio_.shape == (0, 3)
    panel.temperatures.value = "300, hot"
    assert "temperatures" in panel.status.value and "crimson" in panel.status.value


def test_run_in_the_background_and_stop():
    panel = _panel(temperatures=(500.0,), initial=("PM",))
    panel.sweeps_per_draw.value = 1
    panel.start(background=True)
    import time

    deadline = time.time() + 30
    while panel.mc.sweeps_done < 2 and time.time() < deadline:
        time.sleep(0.05)
    panel.stop()
    done = panel.mc.sweeps_done
    assert done >= 2
    time.sleep(0.3)
    assert panel.mc.sweeps_done == done  # stopped

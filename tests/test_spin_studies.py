"""The spin Monte Carlo studies: the drop temperature of a known curve, a resumed study equal to an
uninterrupted one, the state relaxation's layout, and the known limits (a model that knows no
exchange has no memory of its initial state)."""

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlexplore import InputError
from mlexplore.descriptors import G2, SpinGaussPair, SpinGaussSelf, SymmetryFunctions
from mlexplore.models import BPNN
from mlexplore.simulation import drop_temperature, relax_from_states, temperature_sweep
from mlexplore.training import Potential


def _potential(seed=0, scale=1.0, pair=True):
    terms = [G2(0.5, 2.5), SpinGaussSelf(0.05, 2, 4.0)] + ([SpinGaussPair("dot", 0.05, 2.0)] if pair else [])
    sf = SymmetryFunctions(terms, cutoff=3.5, elements=["Fe"])
    torch.manual_seed(seed)
    model = BPNN(sf, hidden=(8,)).double()
    with torch.no_grad():
        model.energy_scale.fill_(scale)
    return Potential(model, extrapolation="ignore")


def test_drop_temperature_of_a_known_curve():
    t = np.array([300.0, 600, 900, 1200, 1500])
    m = np.array([0.9, 0.8, 0.6, 0.2, 0.1])
    final = m[:, None] + np.array([-0.01, 0.0, 0.01])[None]  # three replicas, symmetric scatter
    best, err = drop_temperature(t, final, level=0.5)
    assert best == pytest.approx(900 + 0.1 / 0.4 * 300)
    assert 300 / np.sqrt(12) <= err < 300  # the grid's resolution at least, and not more than a step
    # the order of the temperatures does not matter
    assert drop_temperature(t[::-1], final[::-1], level=0.5)[0] == pytest.approx(best)
    # never below the level: NaN, not a made-up number
    assert np.isnan(drop_temperature(t, final + 0.5, level=0.5)[0])
    with pytest.raises(InputError, match="final"):
        drop_temperature(t, final[:3])
    with pytest.raises(InputError, match="level"):
        drop_temperature(t, final, level=1.5)


def test_wider_replica_scatter_means_a_wider_uncertainty():
    t = np.linspace(300, 1500, 9)
    m = 1 / (1 + np.exp((t - 1000) / 100))
    rng = np.random.default_rng(0)
    narrow = m[:, None] + rng.normal(0, 0.01, (9, 8))
    wide = m[:, None] + rng.normal(0, 0.2, (9, 8))
    assert drop_temperature(t, wide)[1] > drop_temperature(t, narrow)[1]


def test_resumed_sweep_equals_an_uninterrupted_one(tmp_path):
    pot = _potential(scale=0.5)
    cell = bulk("Fe", "bcc", a=2.83, cubic=True).repeat((2, 1, 1))
    whole = temperature_sweep(pot, cell, [100.0, 2000.0], replicas=2, sweeps=6, seed=3, burn_in=0)
    ckpt = tmp_path / "sweep.pt"
    temperature_sweep(pot, cell, [100.0, 2000.0], replicas=2, sweeps=4, seed=3, burn_in=0, checkpoint=ckpt,
                      save_every=2)
    resumed = temperature_sweep(pot, cell, [100.0, 2000.0], replicas=2, sweeps=6, seed=3, burn_in=0,
                                checkpoint=ckpt, save_every=2)
    assert resumed.sweeps == 6
    np.testing.assert_allclose(resumed.final, whole.final, rtol=0, atol=1e-12)
    assert resumed.final.shape == (2, 2)


def test_relaxation_layout_and_no_order_without_exchange():
    """A model whose energy ignores the neighbours' spins (self terms only) cannot order them: every
    direction move costs nothing, so PM starts stay disordered and FM starts lose their order."""
    pot = _potential(pair=False)
    cell = bulk("Fe", "bcc", a=2.83, cubic=True).repeat((2, 2, 2))
    res = relax_from_states(pot, cell, ("FM", "PM"), temperature_K=300.0, replicas=3, sweeps=30, burn_in=10,
                            max_angle=1.0)
    assert res.states == ["FM", "PM"] and res.final["FM"].shape == (3,)
    assert res.burn_in == 10 and res.sweeps == 30
    assert res.mean("PM") < 0.6 and res.mean("FM") < 0.8
    rows = res.table()
    assert [r["initial state"] for r in rows] == ["FM", "PM"] and rows[0]["replicas"] == 3
    with pytest.raises(InputError, match="replicas"):
        relax_from_states(pot, cell, replicas=0)
    with pytest.raises(InputError, match="states"):
        relax_from_states(pot, cell, states=())
    with pytest.raises(InputError, match="temperatures"):
        temperature_sweep(pot, cell, [-5.0])


def test_relaxed_magnetisation_figure_shows_the_means_and_every_replica():
    from mlexplore.viz import relaxed_magnetisation

    final = {"FM": [0.9, 0.8, 0.85], "PM": [0.3, 0.2, 0.25], "AFM": [0.1, 0.3, 0.2]}
    fig = relaxed_magnetisation(final, temperature_K=300)
    bars, points = fig.data
    assert list(bars.x) == ["FM", "PM", "AFM"]
    np.testing.assert_allclose(bars.y, [0.85, 0.25, 0.2])
    np.testing.assert_allclose(bars.error_y.array, [0.05 / np.sqrt(3), 0.05 / np.sqrt(3), 0.1 / np.sqrt(3)])
    assert len(points.y) == 9 and "300 K" in fig.layout.title.text
    with pytest.raises(InputError):
        relaxed_magnetisation({})

"""Widgets driven from Python like a user: set controls, run callbacks, check what the figures show."""

import numpy as np

from mlexplore.training.toy import ToyProblem, fit_toy, toy_data
from mlexplore.widgets import RegressionPlayground


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

"""One-dimensional regression for teaching NN essentials (002 §2.1): the library behind the
RegressionPlayground panel, usable in a plain script.

Targets: ``sin``, ``square`` (a square wave) and ``lj`` (a Lennard-Jones pair energy, ε = 1, σ = 1,
optionally oversampled near its minimum at 2^(1/6) σ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from ..models.bpnn import ACTIVATIONS, mlp
from .engine import DEFAULTS, History, Objective, check_training_options, output_loss, train_loop

__all__ = ["TOY_TARGETS", "ToyProblem", "toy_data", "fit_toy", "ToyFit"]


def _sin(x):
    return np.sin(x)


def _square(x):
    return np.sign(np.sin(x))


def _lj(x):
    return 4 * (x ** -12 - x ** -6)


#: name -> (function, default training domain)
TOY_TARGETS = {"sin": (_sin, (0.0, 2 * math.pi)), "square": (_square, (0.0, 2 * math.pi)),
               "lj": (_lj, (0.95, 2.5))}


@dataclass
class ToyProblem:
    """What to learn: target, number of samples, Gaussian noise, oversampling near the LJ minimum,
    and how far outside the training domain to look (extrapolation, as a fraction of its width)."""

    target: str = "sin"
    n_samples: int = 30
    noise: float = 0.0
    oversample_minimum: bool = False
    extrapolate: float = 0.25
    seed: int = 0

    def __post_init__(self):
        if self.target not in TOY_TARGETS:
            raise InputError(f"unknown target {self.target!r}; choose from {', '.join(TOY_TARGETS)}", field="target")
        if self.n_samples < 2:
            raise InputError("need at least two samples", field="n_samples")
        if self.noise < 0 or self.extrapolate < 0:
            raise InputError("noise and extrapolate must be ≥ 0", field="noise")


def toy_data(problem: ToyProblem) -> dict[str, np.ndarray]:
    """Training samples ``x, y`` (noisy), validation samples, and a dense ``grid``/``truth`` that
    extends ``extrapolate`` beyond the training domain on both sides."""
    f, (lo, hi) = TOY_TARGETS[problem.target]
    rng = np.random.default_rng(problem.seed)
    n = problem.n_samples
    if problem.target == "lj" and problem.oversample_minimum:
        r_min = 2 ** (1 / 6)
        half = n // 2
        x = np.concatenate([rng.uniform(lo, hi, n - half), rng.normal(r_min, 0.08, half).clip(lo, hi)])
    else:
        x = rng.uniform(lo, hi, n)
    x_val = rng.uniform(lo, hi, max(n // 4, 2))
    width = hi - lo
    g_lo = max(lo - problem.extrapolate * width, 0.9 if problem.target == "lj" else -np.inf)
    grid = np.linspace(g_lo, hi + problem.extrapolate * width, 400)
    return {"x": x, "y": f(x) + rng.normal(0, problem.noise, n), "x_val": x_val,
            "y_val": f(x_val) + rng.normal(0, problem.noise, len(x_val)), "grid": grid, "truth": f(grid),
            "domain": np.array([lo, hi])}


@dataclass
class ToyFit:
    """The trained network's prediction on the grid and the loss curves."""

    grid: np.ndarray
    prediction: np.ndarray
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


class ToyObjective(Objective):
    """A one-input MLP on standardised ``(x, y)`` samples (mean-square loss), for
    :func:`~mlexplore.training.engine.train_loop`. The epoch's scores are the full-set MSEs."""

    def __init__(self, net: torch.nn.Module, x, y, x_val, y_val, batch_size: int):
        self.net, self.x, self.y, self.x_val, self.y_val = net, x, y, x_val, y_val
        self.n_train, self.batch_size = len(x), int(batch_size)

    def parameters(self):
        return list(self.net.parameters())

    def _mse(self, x, y) -> torch.Tensor:
        return output_loss(self.net(x) - y, "mse")[0]

    def batch_loss(self, idx, sums):
        loss = self._mse(self.x[idx], self.y[idx])
        return loss, {"y": loss}

    def train_scores(self, sums):
        with torch.no_grad():
            return np.array([float(self._mse(self.x, self.y))]), {}

    def validation_scores(self):
        with torch.no_grad():
            return np.array([float(self._mse(self.x_val, self.y_val))]), {}


_DEF = DEFAULTS["toy"]


def fit_toy(data: dict[str, np.ndarray], hidden: tuple[int, ...] = (20,), activation: str = "softplus",
            epochs: int = _DEF.epochs, batch_size: int = _DEF.batch_size, lr: float = _DEF.lr, seed: int = 0,
            callback=None) -> ToyFit:
    """Train a small MLP on ``data`` from :func:`toy_data` (the one training loop,
    :func:`~mlexplore.training.engine.train_loop`; defaults ``DEFAULTS["toy"]``); inputs and targets
    are standardised. The network ends with its last weights (no early stopping: the point is to
    watch it fit). ``callback(epoch, fit)`` is called every 10 epochs (return False to stop)."""
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}", field="activation")
    check_training_options(epochs, lr, batch_size=batch_size, seed=seed)
    torch.manual_seed(seed)
    x_mu, x_sd = data["x"].mean(), data["x"].std() or 1.0
    y_mu, y_sd = data["y"].mean(), data["y"].std() or 1.0

    def t(a, mu, sd):
        return torch.as_tensor((a - mu) / sd, dtype=torch.float64)[:, None]

    x, y = t(data["x"], x_mu, x_sd), t(data["y"], y_mu, y_sd)
    xv, yv = t(data["x_val"], x_mu, x_sd), t(data["y_val"], y_mu, y_sd)
    grid = t(data["grid"], x_mu, x_sd)
    net = mlp(1, hidden, 1, activation).double()
    result = ToyFit(grid=data["grid"], prediction=np.zeros_like(data["grid"]))

    def predict_grid() -> None:
        with torch.no_grad():
            result.prediction = net(grid)[:, 0].numpy() * y_sd + y_mu

    def every_tenth(epoch: int, history: History) -> bool | None:
        if callback is not None and (epoch % 10 == 9 or epoch == epochs - 1):
            result.train_loss, result.val_loss = list(history.train_loss), list(history.val_loss)
            predict_grid()
            return callback(epoch, result)
        return None

    history = train_loop(ToyObjective(net, x, y, xv, yv, batch_size), epochs=epochs, lr=lr, seeds=[seed],
                         callbacks=every_tenth, desc="toy", restore_best=False)[0]
    result.train_loss, result.val_loss = list(history.train_loss), list(history.val_loss)
    predict_grid()
    return result

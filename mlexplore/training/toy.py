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


def fit_toy(data: dict[str, np.ndarray], hidden: tuple[int, ...] = (20,), activation: str = "softplus",
            epochs: int = 500, batch_size: int = 16, lr: float = 1e-2, seed: int = 0, callback=None) -> ToyFit:
    """Train a small MLP on ``data`` from :func:`toy_data`; inputs and targets are standardised.
    ``callback(epoch, fit)`` is called every 10 epochs (return False to stop)."""
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}", field="activation")
    torch.manual_seed(seed)
    x_mu, x_sd = data["x"].mean(), data["x"].std() or 1.0
    y_mu, y_sd = data["y"].mean(), data["y"].std() or 1.0

    def t(a, mu, sd):
        return torch.as_tensor((a - mu) / sd, dtype=torch.float64)[:, None]

    x, y = t(data["x"], x_mu, x_sd), t(data["y"], y_mu, y_sd)
    xv, yv = t(data["x_val"], x_mu, x_sd), t(data["y_val"], y_mu, y_sd)
    grid = t(data["grid"], x_mu, x_sd)
    net = mlp(1, hidden, 1, activation).double()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    result = ToyFit(grid=data["grid"], prediction=np.zeros_like(data["grid"]))
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss = ((net(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            result.train_loss.append(float(((net(x) - y) ** 2).mean()))
            result.val_loss.append(float(((net(xv) - yv) ** 2).mean()))
        if callback is not None and (epoch % 10 == 9 or epoch == epochs - 1):
            with torch.no_grad():
                result.prediction = net(grid)[:, 0].numpy() * y_sd + y_mu
            if callback(epoch, result) is False:
                break
    with torch.no_grad():
        result.prediction = net(grid)[:, 0].numpy() * y_sd + y_mu
    return result

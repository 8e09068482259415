"""Figures of the one-dimensional regression toys of :mod:`mlexplore.training.toy` (002 ch. 2): the
data, the truth and the network's fit; the loss curves (what
:class:`~mlexplore.widgets.RegressionPlayground` shows).

    from mlexplore.training.toy import ToyProblem, fit_toy, toy_data
    from mlexplore.viz import toy_fit_figure, toy_loss_figure

    data = toy_data(ToyProblem("lj", n_samples=60))
    fit = fit_toy(data, epochs=300)
    toy_fit_figure(data, fit, target="lj"), toy_loss_figure(fit)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = ["toy_fit_figure", "toy_loss_figure"]

#: y range that shows the Lennard-Jones well rather than its wall (reduced units).
LJ_Y_RANGE = (-1.5, 2.0)


def toy_fit_figure(data: Mapping[str, np.ndarray], fit: Any | None = None, target: str | None = None) -> go.Figure:
    """Four traces, always in this order: the truth on the dense grid (dotted), the training and the
    validation samples, and the network's prediction (``fit.prediction`` on ``fit.grid``; empty
    without a fit). The training domain is shaded; for ``target="lj"`` the y axis shows the well.
    ``data``: the dict of :func:`mlexplore.training.toy.toy_data`."""
    fig = go.Figure(data=[
        go.Scatter(x=data["grid"], y=data["truth"], name="truth", mode="lines", line=dict(color="black", dash="dot")),
        go.Scatter(x=data["x"], y=data["y"], name="training", mode="markers"),
        go.Scatter(x=data["x_val"], y=data["y_val"], name="validation", mode="markers"),
        go.Scatter(x=[] if fit is None else fit.grid, y=[] if fit is None else fit.prediction, name="network",
                   mode="lines", line=dict(color="crimson")),
    ])
    lo, hi = (float(v) for v in data["domain"])
    fig.update_layout(xaxis_title="x", yaxis_title="y",
                      shapes=[dict(type="rect", x0=lo, x1=hi, y0=0, y1=1, yref="paper", fillcolor="lightgrey",
                                   opacity=0.2, line_width=0)])
    if target == "lj":
        fig.update_layout(yaxis_range=list(LJ_Y_RANGE))
    return fig


def toy_loss_figure(fit: Any | None = None) -> go.Figure:
    """Training and validation loss (MSE of the standardised targets) against epoch, log scale;
    two empty traces without a fit."""
    train = [] if fit is None else list(fit.train_loss)
    val = [] if fit is None else list(fit.val_loss)
    fig = go.Figure(data=[go.Scatter(x=np.arange(len(train)), y=train, name="train", mode="lines"),
                          go.Scatter(x=np.arange(len(val)), y=val, name="validation", mode="lines")])
    fig.update_layout(yaxis_type="log", xaxis_title="epoch", yaxis_title="MSE (standardised)")
    return fig

"""`RegressionPlayground`: NN regression essentials (002 ch. 2) as a panel.

A thin view over :mod:`mlexplore.training.toy`: pick a target (sin, square wave,
Lennard-Jones), samples, noise, network size, activation, batch size, epochs,
oversampling near the LJ minimum and the extrapolation range; *Train* fits the
network in a background thread and redraws the fit and the loss curves as it goes. The
figures are :func:`mlexplore.viz.toy_fit_figure` and :func:`mlexplore.viz.toy_loss_figure`.
"""

from __future__ import annotations

import threading
import time

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from ..training.toy import TOY_TARGETS, ToyProblem, fit_toy, toy_data
from ..viz import toy_fit_figure, toy_loss_figure
from .plot_output import PlotOutput

_FIT_LAYOUT = dict(height=350, margin=dict(t=30))
_LOSS_LAYOUT = dict(height=250, margin=dict(t=30))

__all__ = ["RegressionPlayground"]


class RegressionPlayground(w.VBox):
    """Display it in a notebook; every control is an attribute, so it can be driven from Python."""

    def __init__(self, target: str = "sin") -> None:
        style = {"description_width": "110px"}
        self.target = w.Dropdown(options=list(TOY_TARGETS), value=target, description="target", style=style)
        self.samples = w.IntSlider(30, min=4, max=500, description="samples", style=style)
        self.noise = w.FloatSlider(0.0, min=0.0, max=0.5, step=0.01, description="noise", style=style)
        self.neurons = w.IntSlider(20, min=1, max=200, description="neurons/layer", style=style)
        self.layers = w.IntSlider(1, min=1, max=4, description="hidden layers", style=style)
        self.activation = w.Dropdown(options=["softplus", "relu", "tanh", "silu"], value="softplus",
                                     description="activation", style=style)
        self.batch_size = w.IntSlider(16, min=1, max=256, description="batch size", style=style)
        self.epochs = w.IntSlider(300, min=10, max=3000, step=10, description="epochs", style=style)
        self.oversample = w.Checkbox(False, description="oversample LJ minimum")
        self.extrapolate = w.FloatSlider(0.25, min=0.0, max=1.0, step=0.05, description="extrapolate",
                                         style=style)
        self.train_button = w.Button(description="Train", button_style="primary")
        self.status = w.HTML("")
        # plain figures through Output widgets (PlotOutput; see there why not FigureWidgets)
        self.data: dict[str, np.ndarray] | None = None
        self.fit_view = PlotOutput(go.Figure(layout=_FIT_LAYOUT), layout=w.Layout(width="100%"))
        self.loss_view = PlotOutput(toy_loss_figure().update_layout(_LOSS_LAYOUT), layout=w.Layout(width="100%"))
        self._last_draw = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        for control in (self.target, self.samples, self.noise, self.oversample, self.extrapolate):
            control.observe(self._on_data_change, names="value")
        self.train_button.on_click(lambda _: self.train(background=True))
        controls = w.VBox([self.target, self.samples, self.noise, self.oversample, self.extrapolate,
                           self.neurons, self.layers, self.activation, self.batch_size, self.epochs,
                           w.HBox([self.train_button, self.status])])
        super().__init__([w.HBox([controls, w.VBox([self.fit_view, self.loss_view], layout=w.Layout(width="60%"))])])
        self._on_data_change()

    @property
    def fit_figure(self) -> go.Figure:
        """The data and fit as shown now (from :func:`mlexplore.viz.toy_fit_figure`)."""
        return self.fit_view.figure

    @property
    def loss_figure(self) -> go.Figure:
        """The loss curves as shown now (from :func:`mlexplore.viz.toy_loss_figure`)."""
        return self.loss_view.figure

    # ------------------------------------------------------------------ data
    def problem(self) -> ToyProblem:
        return ToyProblem(self.target.value, self.samples.value, self.noise.value, self.oversample.value,
                          self.extrapolate.value)

    def _on_data_change(self, change=None) -> None:
        try:
            self.data = toy_data(self.problem())
        except Exception as exc:  # show the problem in the panel; the kernel keeps working
            self.status.value = f"<span style='color:crimson'>{exc}</span>"
            return
        self.fit_view.figure = toy_fit_figure(self.data, target=self.target.value).update_layout(_FIT_LAYOUT)
        self.fit_view.show()
        self.status.value = ""

    # --------------------------------------------------------------- training
    def _draw(self, epoch: int, fit, final: bool = False) -> bool:
        now = time.perf_counter()
        if not final and now - self._last_draw < 0.25:  # each draw resends both figures: 4 a second at most
            return not self._stop.is_set()
        self._last_draw = now
        self.fit_view.figure = toy_fit_figure(self.data, fit, target=self.target.value).update_layout(_FIT_LAYOUT)
        self.loss_view.figure = toy_loss_figure(fit).update_layout(_LOSS_LAYOUT)
        self.fit_view.show()
        self.loss_view.show()
        self.status.value = f"epoch {epoch + 1}/{self.epochs.value}"
        return not self._stop.is_set()

    def _run(self) -> None:
        try:
            self.result = fit_toy(self.data, hidden=(self.neurons.value,) * self.layers.value,
                                  activation=self.activation.value, epochs=self.epochs.value,
                                  batch_size=self.batch_size.value, callback=self._draw)
            self._draw(len(self.result.train_loss) - 1, self.result, final=True)
            self.status.value = (f"done: train MSE {self.result.train_loss[-1]:.3g}, "
                                 f"validation MSE {self.result.val_loss[-1]:.3g}")
        except Exception as exc:
            self.status.value = f"<span style='color:crimson'>{type(exc).__name__}: {exc}</span>"

    def train(self, background: bool = False) -> None:
        """Fit the network; in a background thread (the button) or here (scripts, tests)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        if background:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        else:
            self._run()

    def stop(self) -> None:
        """Ask a running fit to stop after its current epoch block."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

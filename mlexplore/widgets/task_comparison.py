"""`TaskComparison`: train single-task and multi-task models side by side, live (000, 001).

Pick a dataset and its targets, the STL/MTL combinations, the ensemble size and
the epochs; *Start* trains every (run, combination) job of
:func:`mlexplore.training.plan_task_comparison` in a background thread, drawing
the validation curves and a progress bar per model as it goes. The table
(:func:`mlexplore.training.summarise_task_runs`, 001 table 1 layout) fills in as
models finish; at the end the parity grid and the error PDFs appear. *Stop*
ends the thread after the current epoch and keeps every finished model
(``panel.runs``). Uses the GPU when there is one (``device="auto"``).

The jobs run through :func:`mlexplore.training.experiments.run_experiment`, the driver of
:func:`~mlexplore.training.compare_tasks`: with ``resume_file=`` every finished model is recorded
and a later *Start* with the same options reads it back instead of training it; on a CUDA device
the lattice runs of one combination train together (vectorised), on a CPU one at a time. The
result is ``panel.result`` (an :class:`~mlexplore.training.experiments.ExperimentResult`, the
type :func:`~mlexplore.training.compare_tasks` returns).
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from ..data.dataset import StructureDataset
from ..errors import InputError
from ..models import GraphNet
from ..training.experiments import (ExperimentResult, TaskRun, plan_task_comparison, run_experiment,
                                    task_combinations)
from ..training.labels import run_label
from ..viz.comparison import task_error_bands, task_parity
from ..viz.figures import PALETTE, task_table
from .plot_output import PlotOutput

__all__ = ["TaskComparison", "default_task_datasets"]

def default_task_datasets() -> dict[str, Callable[[], StructureDataset]]:
    """The built-in choices (loaded when picked): the CuAu FCC lattice of 000 with EMT mixing energy and
    per-site energies, and HydraGNN's Ising lattice test set."""
    from ..datasets import ising_lattice, lattice_alloy

    return {
        "CuAu FCC 2×2×2 (EMT, 000)": lambda: lattice_alloy("CuAu", n_per_composition=20, progress=False),
        "Ising 3×3×3 (HydraGNN test)": lambda: ising_lattice(L=3, n_per_composition=20, progress=False),
    }


def _scalar_targets(ds: StructureDataset) -> list[str]:
    out = []
    for name in ds.label_names:
        v = ds.label(name)
        if v.ndim == 1 and np.issubdtype(v.dtype, np.number) and name not in ("initial_magmoms",):
            out.append(name)
    return out


class TaskComparison(w.VBox):
    """Display it in a notebook; drive it from Python with the controls and :meth:`start` / :meth:`stop`.

    Parameters
    ----------
    datasets:
        ``{name: dataset or zero-argument loader}`` or one dataset (default: :func:`default_task_datasets`).
    model:
        ``"lattice"`` (:class:`~mlexplore.models.LatticeMLP`) or ``"graph"`` (:class:`~mlexplore.models.GraphNet`).
    resume_file:
        A ``.jsonl`` record file (:mod:`mlexplore.training.task_records`): finished models are
        appended, and a *Start* with the same data and options skips those already there.
    vectorise:
        As :func:`~mlexplore.training.compare_tasks` (default: on a CUDA device, lattice models).
    epochs, n_runs, device, **fit_options:
        Passed to :func:`~mlexplore.training.plan_task_comparison` (e.g. ``lr``, ``width``).
        ``cutoff`` (Å) is the starting value of the "graph radius" control, which goes to the
        GraphNet only (default: GraphNet's 7 Å). On a small periodic cell choose it from the cell:
        on ``fept_dft`` (5.96 Å cells) 3.2 Å gave 11.7 meV/atom and 5 Å no better than the
        composition alone (README, STL vs MTL on FePt).
    """

    def __init__(self, datasets: dict[str, Any] | StructureDataset | None = None, model: str = "lattice",
                 epochs: int = 200, n_runs: int = 3, device: Any = "auto",
                 resume_file: str | os.PathLike | None = None, vectorise: bool | None = None,
                 **fit_options) -> None:
        if datasets is None:
            datasets = default_task_datasets()
        elif isinstance(datasets, StructureDataset):
            datasets = {datasets.name or "dataset": datasets}
        self._sources = dict(datasets)
        self._loaded: dict[str, StructureDataset] = {}
        self.device = device
        radius = float(fit_options.pop("cutoff", inspect.signature(GraphNet).parameters["cutoff"].default))
        self.fit_options = fit_options
        self.resume_file = resume_file
        self.vectorise = vectorise
        self.runs: list[TaskRun] = []
        self.rows: list[dict] = []
        self.result: ExperimentResult | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_draw = 0.0
        style = {"description_width": "100px"}
        self.dataset_choice = w.Dropdown(options=list(self._sources), description="dataset", style=style)
        self.targets = w.SelectMultiple(options=[], description="targets", style=style, rows=4)
        self.combinations = w.SelectMultiple(options=[], description="STL / MTL", style=style, rows=7)
        self.model = w.Dropdown(options=["lattice", "graph"], value=model, description="model", style=style)
        self.radius = w.BoundedFloatText(value=radius, min=0.5, max=20.0, step=0.1, description="graph radius Å",
                                         style=style, disabled=model != "graph")
        self.n_runs = w.IntSlider(value=n_runs, min=1, max=12, description="runs each", style=style)
        self.vary = w.Dropdown(options=[("new split each run (000)", "split"), ("new init each run (001)", "init")],
                               value="split", description="repeat with", style=style)
        self.epochs = w.IntSlider(value=epochs, min=1, max=3000, step=1, description="epochs", style=style)
        self.start_button = w.Button(description="Start", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="models", style=style)
        self.model_bars = w.VBox([])
        self.status = w.HTML("")
        # plain figures shown through Output widgets (PlotOutput): they change while a background
        # thread trains, and a FigureWidget's updates can be lost on a busy machine
        self.curves = go.Figure(layout=dict(height=300, margin=dict(t=40), title="validation loss per model",
                                            xaxis_title="epoch", yaxis_title="loss (standardised)",
                                            yaxis_type="log", legend=dict(font_size=9)))
        self.table = go.Figure(go.Table(header=dict(values=["model", "target", "RMSE", "R²", "time (s)", "FOM"]),
                                        cells=dict(values=[[]] * 6)),
                               layout=dict(height=260, margin=dict(t=10, b=10)))
        self.parity = go.Figure(layout=dict(height=320, margin=dict(t=40), title="parity (test sets)"))
        self.error_pdfs = go.Figure(layout=dict(height=320, margin=dict(t=40),
                                                title="test error PDF (mean ± 1 std over runs)"))
        self.views = {name: PlotOutput(getattr(self, name), layout=w.Layout(width="100%"))
                      for name in ("curves", "table", "parity", "error_pdfs")}
        self.dataset_choice.observe(lambda _: self._load_dataset(), names="value")
        self.model.observe(lambda change: setattr(self.radius, "disabled", change["new"] != "graph"), names="value")
        self.targets.observe(lambda _: self._update_combinations(), names="value")
        self.start_button.on_click(lambda _: self.start(background=True))
        self.stop_button.on_click(lambda _: self.stop())
        controls = w.VBox([self.dataset_choice, self.targets, self.combinations, self.model, self.radius, self.n_runs,
                           self.vary,
                           self.epochs, w.HBox([self.start_button, self.stop_button]), self.progress, self.status,
                           self.model_bars])
        v = self.views
        # the plots take the width of their boxes: give the boxes one
        super().__init__([w.HBox([controls, w.VBox([v["curves"], v["table"]], layout=w.Layout(width="62%"))]),
                          w.HBox([w.Box([v["parity"]], layout=w.Layout(width="50%")),
                                  w.Box([v["error_pdfs"]], layout=w.Layout(width="50%"))])])
        self._load_dataset()

    # ------------------------------------------------------------------ inputs
    @property
    def dataset(self) -> StructureDataset:
        return self._loaded[self.dataset_choice.value]

    def _load_dataset(self) -> None:
        name = self.dataset_choice.value
        try:
            if name not in self._loaded:
                src = self._sources[name]
                self._loaded[name] = src() if callable(src) else src
        except Exception as exc:
            self._error(exc)
            return
        options = _scalar_targets(self._loaded[name])
        self.targets.options = options
        self.targets.value = tuple(options[:3])

    def _update_combinations(self) -> None:
        combos = ["+".join(c) for c in task_combinations(list(self.targets.value))] if self.targets.value else []
        self.combinations.options = combos
        self.combinations.value = tuple(combos)

    # ----------------------------------------------------------------- running
    def start(self, background: bool = False) -> None:
        """Train every chosen job (in a background thread with the button, here otherwise)."""
        if self._thread is not None and self._thread.is_alive():
            return
        try:
            combos = [tuple(c.split("+")) for c in self.combinations.value]
            if not combos:
                raise InputError("choose at least one target and one task combination", field="combinations")
            graph = {"cutoff": float(self.radius.value)} if self.model.value == "graph" else {}
            self.plan = plan_task_comparison(self.dataset, list(self.targets.value), combos, model=self.model.value,
                                             n_runs=self.n_runs.value, epochs=self.epochs.value,
                                             device=self.device, vary=self.vary.value, **graph, **self.fit_options)
        except Exception as exc:
            self._error(exc)
            return
        self._stop.clear()
        self.runs, self.rows, self.result = [], [], None
        jobs = self.plan.jobs
        self.progress.max, self.progress.value = len(jobs), 0
        self.model_bars.children = [w.IntProgress(value=0, min=0, max=self.epochs.value,
                                                  description=f"{run_label(c)} #{r}",
                                                  style={"description_width": "150px"}) for r, c in jobs]
        with self.curves.batch_update():
            self.curves.data = []
            for r, c in jobs:
                self.curves.add_scatter(x=[], y=[], mode="lines", name=f"{'+'.join(c)} #{r}",
                                        line=dict(color=PALETTE[combos.index(c) % len(PALETTE)]))
        for name in ("parity", "error_pdfs"):
            getattr(self, name).data = []
            self.views[name].show()
        self.views["curves"].show()
        self._fill_table()
        self.start_button.disabled, self.stop_button.disabled = True, False
        if background:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        else:
            self._run()

    def stop(self, wait: float = 30.0) -> None:
        """Stop after the current epoch; finished models are kept, the unfinished one is dropped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=wait)

    def _run(self) -> None:
        try:
            self.result = run_experiment(self.plan, resume_file=self.resume_file, vectorise=self.vectorise,
                                         progress=False, on_epoch=self._on_epoch, on_start=self._on_start,
                                         on_finished=self._on_finished, should_stop=self._stop.is_set)
            self.runs, self.rows = list(self.result.runs), self.result.rows
            stopped = self._stop.is_set()
            if self.runs:
                self._draw_results()
            self.status.value = (f"stopped: kept {len(self.runs)} finished models" if stopped
                                 else f"done: {len(self.runs)} models")
        except Exception as exc:
            self._error(exc)
        finally:
            self.start_button.disabled, self.stop_button.disabled = False, True

    def _on_start(self, group: list[int]) -> None:
        n = len(self.plan.jobs)
        which = f"model {group[0] + 1}" if len(group) == 1 else f"models {', '.join(str(j + 1) for j in group)}"
        self.status.value = f"training {which} of {n} on {self.device}"

    def _on_finished(self, j: int, run: TaskRun, finished: list[TaskRun]) -> None:
        bar = self.model_bars.children[j]
        bar.value, bar.bar_style = bar.max, "success"
        self._draw_curve(j, run.history)
        self.runs = list(finished)
        self.progress.value = len(finished)
        self.rows = self.plan.summarise(self.runs)
        self._fill_table()

    def _on_epoch(self, j: int, epoch: int, history) -> bool:
        self.model_bars.children[j].value = epoch + 1
        now = time.perf_counter()
        if now - self._last_draw > 0.5:  # redraw (the whole figure) at most twice a second
            self._last_draw = now
            self._draw_curve(j, history)
        return not self._stop.is_set()

    # ----------------------------------------------------------------- drawing
    def _draw_curve(self, j: int, history) -> None:
        self.curves.data[j].update(x=np.asarray(history.epoch), y=np.asarray(history.val_loss))
        self.views["curves"].show()

    def _fill_table(self) -> None:
        rows = self.rows
        fig = task_table(rows) if rows else None
        cells = fig.data[0].cells.values if fig is not None else [[]] * 6
        with self.table.batch_update():
            self.table.data[0].cells.values = cells
            self.table.layout.height = min(720, 80 + 48 * max(1, len(rows)))  # every row visible
        self.views["table"].show()

    def _draw_results(self) -> None:
        """The parity grid and error PDFs of the finished runs (:func:`~mlexplore.viz.task_parity`,
        :func:`~mlexplore.viz.task_error_bands`), in the panel's layout."""
        for name, make in (("parity", task_parity), ("error_pdfs", task_error_bands)):
            drawn = make(self.runs, self.plan.targets)
            fig = getattr(self, name)
            with fig.batch_update():
                fig.data = []
                fig.add_traces(drawn.data)
                fig.layout.xaxis.title = drawn.layout.xaxis.title
                fig.layout.yaxis.title = drawn.layout.yaxis.title
            self.views[name].show()

    def _error(self, exc: Exception) -> None:
        self.status.value = f"<span style='color:crimson'>{type(exc).__name__}: {exc}</span>"

"""`SpinMonteCarloPanel`: spin Monte Carlo of a fixed lattice with a spin-aware potential, live.

Controls: the temperatures (one replica per temperature and initial state), the initial states
(FM, AFM, PM), the move and its size, sweeps per redraw; Run starts the sweeps in a background
thread and Stop ends it after the current sweep. Shown: the net-spin ratio |M| and the energy per
atom of every replica against the sweep (:func:`mlexplore.viz.spin_traces`), the statistics after
the burn-in, and the lattice of one replica in the :class:`StructureViewer` with its moments as
arrows, coloured by their polar angle to the net spin (:func:`mlexplore.analysis.polar_angles`).
Everything is a call into :class:`mlexplore.simulation.SpinMonteCarlo`; from Python:
``panel.temperatures.value = "300, 900"``, ``panel.run_sweeps(20)``, ``panel.mc.net_spin_ratio_``.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w
import numpy as np
from ase import Atoms

from ..data.dataset import StructureDataset
from ..analysis.magnetism import polar_angles
from ..errors import InputError
from ..io.text import parse_numbers
from ..simulation.spin_monte_carlo import SpinMonteCarlo
from ..training.potential import Potential
from ..viz.spins import spin_traces
from .plot_output import PlotOutput
from .structure_viewer import StructureViewer

__all__ = ["SpinMonteCarloPanel"]


class SpinMonteCarloPanel(w.VBox):
    """Display it in a notebook.

    Parameters
    ----------
    potential:
        A :class:`~mlexplore.training.Potential` over a spin-aware model.
    lattice:
        The fixed lattice (``ase.Atoms``), e.g. ``bulk("Fe", "bcc", a=2.83, cubic=True).repeat(3)``.
    temperatures, initial:
        The starting values of the controls: temperatures (K) and initial states; every
        combination is one replica.
    seed:
        Seed of the runs (a new Run continues the present one; Reset starts again).
    """

    def __init__(self, potential: Potential, lattice: Atoms, temperatures: tuple[float, ...] = (300.0, 1200.0),
                 initial: tuple[str, ...] = ("FM", "PM"), seed: int = 0) -> None:
        if not isinstance(lattice, Atoms):
            raise InputError("lattice must be an ase.Atoms", field="lattice")
        self.potential, self.lattice, self.seed = potential, lattice, int(seed)
        style = {"description_width": "110px"}
        self.temperatures = w.Text(", ".join(f"{t:g}" for t in temperatures), description="temperatures (K)",
                                   style=style)
        self.initial = w.SelectMultiple(options=["FM", "AFM", "PM"], value=tuple(initial), description="initial",
                                        style=style, rows=3)
        self.move = w.Dropdown(options=["cone", "sphere"], value="cone", description="move", style=style)
        self.max_angle = w.FloatSlider(value=0.3, min=0.02, max=3.14, step=0.02, description="cone (rad)",
                                       style=style, continuous_update=False)
        self.sweeps_per_draw = w.IntSlider(value=5, min=1, max=50, description="sweeps / redraw", style=style)
        self.replica = w.IntSlider(value=0, min=0, max=0, description="replica shown", style=style,
                                   continuous_update=False)
        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop")
        self.reset_button = w.Button(description="Reset", icon="undo")
        self.status = w.HTML("")
        self.stats = w.HTML("")
        self.traces = PlotOutput(spin_traces(np.zeros((0, 0)), np.zeros((0, 0)), []), layout=w.Layout(width="100%"))
        self.mc: SpinMonteCarlo | None = None
        self.labels: list[str] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.viewer = StructureViewer(self._lattice_dataset(np.zeros((len(lattice), 3))))
        self.viewer.arrows_of.options = ["none", "magmoms"]
        self.viewer.arrows_of.value = "magmoms"
        self.run_button.on_click(lambda _: self.start(background=True))
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.replica.observe(lambda _: self.draw_lattice(), names="value")
        for c in (self.temperatures, self.initial, self.move, self.max_angle):
            c.observe(lambda _: self.reset(), names="value")
        controls = w.VBox([self.temperatures, self.initial, self.move, self.max_angle, self.sweeps_per_draw,
                           w.HBox([self.run_button, self.stop_button, self.reset_button]), self.replica, self.stats,
                           self.status])
        super().__init__([w.HBox([controls, self.traces]), self.viewer])
        self.reset()

    # -------------------------------------------------------------- Python API
    def reset(self) -> None:
        """A new run from the controls' settings (one replica per temperature and initial state)."""
        self.stop()
        try:
            temps = parse_numbers(self.temperatures.value, "temperatures")
            kinds = list(self.initial.value)
            if not kinds:
                raise InputError("choose at least one initial state", field="initial")
            pairs = [(t, k) for k in kinds for t in temps]
            self.labels = [k for _, k in pairs]
            self.mc = SpinMonteCarlo(self.potential, [self.lattice] * len(pairs), temperature_K=[t for t, _ in pairs],
                                     initial=self.labels, move=self.move.value, max_angle=self.max_angle.value,
                                     seed=self.seed)
        except InputError as exc:
            self.status.value = f"<span style='color:crimson'>{exc}</span>"
            return
        self.status.value = f"{len(pairs)} replicas of {self.mc.n_atoms} atoms"
        self.replica.max = len(pairs) - 1
        self.draw()

    def run_sweeps(self, sweeps: int) -> None:
        """Run ``sweeps`` sweeps here (not in the background) and redraw."""
        if self.mc is None:
            raise InputError(f"no run: {self.status.value}", field="settings")
        self.mc.run(sweeps)
        self.draw()

    def start(self, background: bool = False) -> None:
        """Run sweeps until :meth:`stop` (in a background thread with the button)."""
        if self.mc is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        if not background:
            self._loop()
            return
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self, wait: float = 30.0) -> None:
        """End the running sweeps after the current one."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=wait)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_sweeps(self.sweeps_per_draw.value)
            except Exception as exc:  # the panel shows it; the kernel keeps working
                self.status.value = f"<span style='color:crimson'>{type(exc).__name__}: {exc}</span>"
                return
            if self._stop.is_set() or self._thread is None:  # run here: one batch only
                return

    # ---------------------------------------------------------------- drawing
    def draw(self) -> None:
        """Redraw the traces, the statistics and the lattice."""
        mc = self.mc
        self.traces.figure = spin_traces(mc.net_spin_ratio_, mc.energies_ / mc.n_atoms, mc.temperature_K, self.labels)
        self.traces.show()
        if mc.sweeps_done >= 8:
            stats = mc.statistics("auto")
            rows = "".join(f"<tr><td>{t:.0f} K</td><td>{k}</td><td>{m:.3f} ± {e:.3f}</td></tr>"
                           for t, k, m, e in zip(mc.temperature_K, self.labels, stats["net_spin_ratio"]["mean"],
                                                 stats["net_spin_ratio"]["error"]))
            self.stats.value = (f"<b>|M| after {stats['burn_in']} sweeps of burn-in</b> ({mc.sweeps_done} run)"
                                f"<table>{rows}</table>")
        else:
            self.stats.value = f"{mc.sweeps_done} sweeps run"
        self.draw_lattice()

    def draw_lattice(self) -> None:
        """The replica chosen by the slider: moments as arrows, coloured by polar angle."""
        if self.mc is None:
            return
        spins = self.mc.spins[self.replica.value]
        self.viewer.dataset.atom_labels["magmoms"][:] = spins
        self.viewer.add_quantity("polar angle (rad)", polar_angles(spins))
        self.viewer.centre_zero.value = False
        self.viewer.redraw()

    def _lattice_dataset(self, spins: np.ndarray) -> StructureDataset:
        atoms = self.lattice.copy()
        ds = StructureDataset.from_atoms([atoms])
        ds.atom_labels["magmoms"] = np.array(spins, float)
        return ds

    @property
    def figure(self) -> Any:
        """The traces figure as last drawn."""
        return self.traces.figure

"""`LDOSExplorer`: a snapshot's electron density, its prediction and the LDOS at a clicked point.

Shown: one plane of the density on the grid — DFT, the surrogate's prediction and their
difference (:func:`mlexplore.viz.density_slice`) — in a figure whose points can be clicked; the
LDOS at the clicked grid point, DFT against prediction (:func:`mlexplore.viz.dos_figure`); the
whole cell's DOS; and a table of the observables' errors (:func:`mlexplore.analysis.ldos_errors`).
Controls: the lattice vector normal to the plane and the plane's index. Every number comes from
the library; from Python: ``panel.axis.value = 0``, ``panel.plane.value = 3``,
``panel.pick(i, j, k)`` (what a click does), then read ``panel.point_figure``.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np

from ..analysis.ldos import ldos_errors, ldos_observables
from ..errors import InputError
from ..viz.ldos import density_slice, dos_figure
from .clickable_figure import ClickableFigure
from .plot_output import PlotOutput

__all__ = ["LDOSExplorer"]

_AXES = [("a (plane ⟂ lattice vector 0)", 0), ("b (plane ⟂ lattice vector 1)", 1), ("c (plane ⟂ lattice vector 2)", 2)]
_LDOS_UNIT = "LDOS (states/(eV Å³))"


class LDOSExplorer(w.VBox):
    """Display it in a notebook.

    Parameters
    ----------
    reference : LDOSResult or snapshot
        The DFT LDOS (:class:`~mlexplore.dft.LDOSResult`, or a snapshot of
        :func:`~mlexplore.dft.load_aluminium_ldos` / :func:`~mlexplore.dft.load_ldos_set`): its
        ``ldos (nx, ny, nz, n_E)``, ``energies``, ``cell``, ``positions``, ``numbers``,
        ``voxel_volume``, ``n_electrons`` and ``kT``.
    predicted : array_like, optional
        The surrogate's LDOS on the same grid (e.g. :func:`~mlexplore.training.predict_snapshot`);
        without it the panel shows the DFT data alone.
    method : str
        Energy integration rule of the observables (:func:`~mlexplore.analysis.integration_weights`).
    """

    def __init__(self, reference: Any, predicted: Any = None, method: str = "cubic") -> None:
        if not hasattr(reference, "ldos") and hasattr(reference, "result"):
            reference = reference.result
        ldos = getattr(reference, "ldos", None)
        if not isinstance(ldos, np.ndarray) or ldos.ndim != 4:
            raise InputError("reference must be an LDOS result with an (nx, ny, nz, n_E) ldos", field="reference")
        self.reference = reference
        self.predicted = None if predicted is None else np.asarray(predicted)
        if self.predicted is not None and self.predicted.shape != ldos.shape:
            raise InputError(f"predicted has shape {self.predicted.shape}, the reference's LDOS {ldos.shape}",
                             field="predicted")
        r = reference
        self.energies = np.asarray(r.energies, float)
        self.reference_obs = ldos_observables(ldos, self.energies, r.voxel_volume, r.n_electrons, r.kT, method)
        self.predicted_obs = None if self.predicted is None else ldos_observables(
            self.predicted, self.energies, r.voxel_volume, r.n_electrons, r.kT, method)
        self.errors = None if self.predicted is None else ldos_errors(
            self.predicted, ldos, self.energies, r.voxel_volume, r.n_electrons, r.kT, len(r.numbers), method)
        self.grid_shape = tuple(int(n) for n in ldos.shape[:3])
        self.cell = np.asarray(r.cell, float).reshape(3, 3)
        self.point: tuple[int, int, int] | None = None

        style = {"description_width": "90px"}
        self.axis = w.Dropdown(options=_AXES, value=2, description="plane ⟂", style=style)
        self.plane = w.IntSlider(value=0, min=0, max=self.grid_shape[2] - 1, description="plane index", style=style,
                                 continuous_update=False)
        self.status = w.HTML("Click a point of the density to see its LDOS.")
        self.summary = w.HTML(self._summary_html())
        # the slice takes clicks (ClickableFigure); the two line figures are only shown (PlotOutput)
        self.slice_figure = ClickableFigure(layout=dict(height=360))
        self.point_view = PlotOutput(dos_figure(self.energies, {"DFT": np.zeros_like(self.energies)},
                                                title="LDOS at a grid point (click the density)",
                                                yaxis_title=_LDOS_UNIT), layout=w.Layout(width="100%"))
        curves = {"DFT": self.reference_obs.dos}
        fermi = {"DFT": self.reference_obs.e_fermi}
        if self.predicted_obs is not None:
            curves["prediction"] = self.predicted_obs.dos
            fermi["prediction"] = self.predicted_obs.e_fermi
        self.dos_view = PlotOutput(dos_figure(self.energies, curves, fermi, title="density of states of the cell"),
                                   layout=w.Layout(width="100%"))
        self.axis.observe(self._axis_changed, names="value")
        self.plane.observe(lambda _: self.draw_slice(), names="value")
        super().__init__([w.HBox([self.axis, self.plane]), self.slice_figure, self.status,
                          w.HBox([self.point_view, self.dos_view]), self.summary])
        self.draw_slice()

    # -------------------------------------------------------------- Python API
    def pick(self, i: int, j: int, k: int) -> tuple[int, int, int]:
        """Select grid point ``(i, j, k)`` (what a click does): draws its LDOS and marks it."""
        idx = tuple(int(v) for v in (i, j, k))
        if any(not 0 <= v < n for v, n in zip(idx, self.grid_shape)):
            raise InputError(f"grid point {idx} lies outside the grid {self.grid_shape}", field="point")
        self.point = idx
        frac = np.array(idx, float) / np.array(self.grid_shape)
        xyz = frac @ self.cell
        curves = {"DFT": self.reference.ldos[idx]}
        if self.predicted is not None:
            curves["prediction"] = self.predicted[idx]
        fermi = {"DFT": self.reference_obs.e_fermi}
        if self.predicted_obs is not None:
            fermi["prediction"] = self.predicted_obs.e_fermi
        self.point_view.figure = dos_figure(
            self.energies, curves, fermi, yaxis_title=_LDOS_UNIT,
            title=f"LDOS at grid point {idx} = ({xyz[0]:.2f}, {xyz[1]:.2f}, {xyz[2]:.2f}) Å")
        self.point_view.show()
        density = f"density {self.reference_obs.density[idx]:.4f} e/Å³ (DFT)"
        if self.predicted_obs is not None:
            density += f", {self.predicted_obs.density[idx]:.4f} (prediction)"
        self.status.value = f"grid point {idx}: {density}"
        self._mark()
        return idx

    @property
    def point_figure(self) -> Any:
        """The LDOS-at-a-point figure as last drawn."""
        return self.point_view.figure

    # ---------------------------------------------------------------- drawing
    def _axis_changed(self, _: Any) -> None:
        n = self.grid_shape[self.axis.value]
        with self.plane.hold_trait_notifications():
            self.plane.max = n - 1
            self.plane.value = min(self.plane.value, n - 1)
        self.draw_slice()

    def draw_slice(self) -> None:
        """Redraw the density plane chosen by the controls (the clicks stay connected)."""
        pred = None if self.predicted_obs is None else self.predicted_obs.density
        new = density_slice(self.reference_obs.density, self.cell, self.reference.positions, predicted=pred,
                            axis=self.axis.value, index=self.plane.value)
        fig = self.slice_figure
        with fig.batch_update():
            fig.data = []
            fig.layout = new.layout
            fig.add_traces(new.data)  # each trace keeps its subplot's axes (x, x2, x3)
        for trace in fig.data:
            trace.on_click(self._on_click)
        self._mark()

    def _mark(self) -> None:
        """Mark the picked point on every panel of the slice when it lies in the plane shown."""
        fig = self.slice_figure
        keep = [t for t in fig.data if t.name != "picked point"]
        if len(keep) != len(fig.data):
            fig.data = keep
        axis = self.axis.value
        if self.point is not None and self.point[axis] == self.plane.value:
            u, v = [a for a in range(3) if a != axis]
            x = self.point[u] / self.grid_shape[u] * np.linalg.norm(self.cell[u])
            y = self.point[v] / self.grid_shape[v] * np.linalg.norm(self.cell[v])
            panels = 1 if self.predicted is None else 3
            for col in range(1, panels + 1):
                fig.add_scatter(x=[x], y=[y], mode="markers", name="picked point", showlegend=col == 1,
                                marker=dict(symbol="x", size=12, color="red"),
                                xaxis="x" if col == 1 else f"x{col}", yaxis="y" if col == 1 else f"y{col}")
        fig.sync()

    def _on_click(self, trace: Any, points: Any, selector: Any) -> None:
        if not points.xs:
            return
        self.pick(*self.grid_index(points.xs[0], points.ys[0]))

    def grid_index(self, x: float, y: float) -> tuple[int, int, int]:
        """The grid point of the plane shown at in-plane coordinates ``(x, y)`` (Å, as drawn)."""
        axis = self.axis.value
        u, v = [a for a in range(3) if a != axis]
        idx = [0, 0, 0]
        idx[axis] = self.plane.value
        idx[u] = int(round(float(x) / np.linalg.norm(self.cell[u]) * self.grid_shape[u])) % self.grid_shape[u]
        idx[v] = int(round(float(y) / np.linalg.norm(self.cell[v]) * self.grid_shape[v])) % self.grid_shape[v]
        return tuple(idx)

    def _summary_html(self) -> str:
        ref = self.reference_obs
        head = (f"<b>DFT LDOS</b>: E_F {ref.e_fermi:.3f} eV, band energy {ref.band_energy:.2f} eV, "
                f"{len(self.reference.numbers)} atoms, grid {self.grid_shape}, {len(self.energies)} energies")
        if self.errors is None:
            return head
        e = self.errors
        rows = [("band energy", f"{e.band_energy:+.1f} meV/atom"), ("Fermi level", f"{e.e_fermi:+.1f} meV"),
                ("density (mean abs. %)", f"{e.density_mape:.2f} %"), ("density (max abs.)", f"{e.density_max:.4f} e/Å³"),
                ("DOS (∫|ΔD| / ∫D)", f"{e.dos_error:.2f} %"),
                ("electrons at DFT's E_F", f"{e.electrons:+.3f}"), ("LDOS RMSE", f"{e.ldos_rmse:.2e} states/(eV Å³)")]
        body = "".join(f"<tr><td>{a}</td><td style='text-align:right'>{b}</td></tr>" for a, b in rows)
        return f"{head}<br><b>prediction − DFT</b><table>{body}</table>"

"""`StructureViewer`: browse a dataset in 3-D (nglview), atoms coloured by any per-atom quantity.

Colour by element or by a per-atom label of the dataset (charges, moments, per-atom
energies, |force|) or by any quantity you add (a per-atom error, one feature column):
``viewer.add_quantity("error", values)``. Given a potential (or its predictions), atoms can also be
coloured by how far to trust it: ``force std`` (the norm of a committee's per-atom force std),
``energy std``, ``extrapolation`` (the grade against the training domain) and ``novelty``:
``StructureViewer(ds, potential=Potential(committee))`` or ``viewer.add_prediction(pred)``.
Arrows show forces or spins; the unit cell and a
supercell repeat can be switched on. Browse with the index slider, or link it to a PCA map:
``tuner.on_pick(viewer.show_atom)``.

The predictions come from :meth:`mlexplore.training.Potential.predict`, the per-atom values from
:func:`mlexplore.viz.atom_uncertainties` and the colours from :mod:`mlexplore.viz.colors` and
:func:`mlexplore.viz.uncertainty_colors`; the widget only sends them to nglview.
``viewer.colors``, ``viewer.arrows`` and ``viewer.atoms`` hold what is displayed.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import torch
from ase import Atoms

from ..data.dataset import StructureDataset
from ..errors import InputError
from ..training.potential import Potential, model_place
from ..viz.colors import element_colors, value_colors
from ..viz.uncertainty import UNCERTAINTY_QUANTITIES, atom_uncertainties, uncertainty_colors

__all__ = ["StructureViewer"]


def _nglview():
    import warnings

    with warnings.catch_warnings():  # nglview 3.1.4 imports pkg_resources
        warnings.simplefilter("ignore")
        import nglview
    return nglview


class StructureViewer(w.VBox):
    """Display it in a notebook; ``show(index)`` / ``show_atom(structure, atom)`` from Python.

    Parameters
    ----------
    dataset:
        Structures to browse (default: the shipped ``fe_spin_dft`` iron set, with moments and
        forces; the EMT gold set when that file is missing).
    index:
        The structure shown first.
    potential:
        A :class:`~mlexplore.training.Potential` (or a :class:`~mlexplore.models.Committee` /
        :class:`~mlexplore.models.BPNN`, run where its parameters are): its
        :meth:`~mlexplore.training.Potential.predict` over the dataset gives the uncertainty
        colourings (see :meth:`add_prediction`), and the viewer starts coloured by the first.
    prediction:
        Instead of ``potential``: its predictions, already computed over the dataset.
    """

    def __init__(self, dataset: StructureDataset | None = None, index: int = 0, potential: Any = None,
                 prediction: Any = None) -> None:
        self.dataset = dataset if dataset is not None else _default_dataset()
        if len(self.dataset) == 0:
            raise InputError("no structures to show", field="dataset")
        if potential is not None and prediction is not None:
            raise InputError("give a potential or its prediction, not both", field="prediction")
        self.quantities: dict[str, np.ndarray] = {}
        #: per-atom uncertainty values over the dataset, by name (:data:`~mlexplore.viz.UNCERTAINTY_QUANTITIES`)
        self.uncertainties: dict[str, np.ndarray] = {}
        #: per atom, whether the potential extrapolates there (None without a training domain)
        self.extrapolating: np.ndarray | None = None
        if potential is not None:
            prediction = _as_potential(potential).predict(self.dataset, extrapolation="ignore")
        if prediction is not None:
            self._take_prediction(prediction)
        for name in self.dataset.atom_labels:
            v = np.asarray(self.dataset.atom_labels[name], dtype=float)
            if v.ndim == 1:
                self.quantities[name] = v
            elif v.ndim == 2 and v.shape[1] == 3:
                self.quantities[f"|{name}|"] = np.linalg.norm(v, axis=1)
        style = {"description_width": "90px"}
        self.index = w.IntSlider(value=index, min=0, max=len(self.dataset) - 1, description="structure",
                                 style=style, continuous_update=False)
        self.color_by = w.Dropdown(options=self._color_options(), value=next(iter(self.uncertainties), "element"),
                                   description="colour by", style=style)
        self.colorscale = w.Dropdown(options=["RdBu_r", "Viridis", "Plasma", "Cividis"], value="RdBu_r",
                                     description="scale", style=style)
        self.centre_zero = w.Checkbox(True, description="scale centred on 0")
        self.arrows_of = w.Dropdown(options=["none"] + self._vector_options(), value="none", description="arrows",
                                    style=style)
        self.arrow_scale = w.FloatSlider(value=0.5, min=0.05, max=3.0, step=0.05, description="arrow Å per unit",
                                         style=style, continuous_update=False)
        self.show_cell = w.Checkbox(True, description="unit cell")
        self.repeat = w.IntSlider(value=1, min=1, max=4, description="repeat", style=style, continuous_update=False)
        self.radius = w.FloatSlider(value=0.6, min=0.2, max=1.5, step=0.05, description="atom size", style=style,
                                    continuous_update=False)
        self.info = w.HTML("")
        self.status = w.HTML("")
        self.view = _nglview().NGLWidget(width="520px", height="420px")
        # nglview resizes its stage only when layout.width/height change (not a new Layout object)
        self.view.layout.width, self.view.layout.height = "520px", "420px"
        self.highlight: int | None = None
        self.colors: list[str] = []
        self.arrows = np.zeros((0, 2, 3))
        self.atoms: Atoms | None = None
        self.color_range: tuple[float, float] | None = None
        for c in (self.index, self.repeat):
            c.observe(lambda _: self.redraw(reload=True), names="value")
        for c in (self.color_by, self.colorscale, self.centre_zero, self.arrows_of, self.arrow_scale, self.show_cell, self.radius):
            c.observe(lambda _: self.redraw(), names="value")
        controls = w.VBox([self.index, self.color_by, self.colorscale, self.centre_zero, self.arrows_of, self.arrow_scale,
                           self.show_cell, self.repeat, self.radius, self.info, self.status])
        super().__init__([w.HBox([self.view, controls])])
        self.redraw(reload=True)

    # -------------------------------------------------------------- Python API
    def show(self, index: int) -> None:
        """Show structure ``index``."""
        if not 0 <= index < len(self.dataset):
            raise InputError(f"structure {index} is out of range (the dataset has {len(self.dataset)})",
                             field="index")
        self.highlight = None
        if self.index.value == index:
            self.redraw(reload=True)
        else:
            self.index.value = index

    def show_atom(self, structure: int, atom: int) -> None:
        """Show a structure with one atom highlighted (what a click on a PCA point calls)."""
        self.show(structure)
        self.highlight = int(atom)
        self.redraw()

    def add_quantity(self, name: str, values: Any) -> None:
        """A per-atom quantity over the whole dataset (one value per atom, dataset order) to colour by,
        e.g. per-atom errors or a feature column; selects it."""
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        v = np.asarray(values, dtype=float).reshape(-1)
        if v.size != self.dataset.n_total_atoms:
            raise InputError(f"{name!r} has {v.size} values but the dataset has {self.dataset.n_total_atoms} atoms",
                             field=name)
        if name == "element" or name in UNCERTAINTY_QUANTITIES:
            raise InputError(f"{name!r} is a built-in colouring; give the quantity another name", field="name")
        self.quantities[name] = v
        self.color_by.options = self._color_options()
        self.color_by.value = name

    def add_prediction(self, prediction: Any) -> None:
        """Colour by the uncertainty of a potential's predictions over the whole dataset (dataset
        order): :meth:`mlexplore.training.Potential.predict` of the dataset, ``atoms.calc.results``
        of its ASE calculator for a one-structure dataset, or a :class:`~mlexplore.training.Potential`
        (or model), which is asked for them. A committee gives ``force std`` (eV/Å) and
        ``energy std`` (eV); a model with a recorded training domain ``extrapolation`` and
        ``novelty``. Selects the first of them."""
        if isinstance(prediction, (Potential, torch.nn.Module)):
            prediction = _as_potential(prediction).predict(self.dataset, extrapolation="ignore")
        self._take_prediction(prediction)
        self.color_by.options = self._color_options()
        first = next(iter(self.uncertainties))
        if self.color_by.value == first:  # no change event: new values under the same name
            self.redraw()
        else:
            self.color_by.value = first

    # ----------------------------------------------------------------- drawing
    def _take_prediction(self, prediction: Any) -> None:
        found = atom_uncertainties(prediction, n_atoms=self.dataset.n_total_atoms)
        if not found:
            raise InputError("the prediction holds no per-atom uncertainty (forces_std, energies_std, "
                             "extrapolation_grade or novelty): give a Committee, or a model with a recorded "
                             "training domain", field="prediction")
        self.uncertainties = found
        flags = prediction.get("extrapolating")
        flags = None if flags is None else np.asarray(flags, dtype=bool).reshape(-1)
        if flags is not None and flags.size != self.dataset.n_total_atoms:
            raise InputError(f"extrapolating has {flags.size} values but the dataset has "
                             f"{self.dataset.n_total_atoms} atoms", field="extrapolating")
        self.extrapolating = flags

    def _color_options(self) -> list[str]:
        return ["element"] + list(self.quantities) + list(self.uncertainties)

    def _vector_options(self) -> list[str]:
        out = []
        if "forces" in self.dataset.atom_labels:
            out.append("forces")
        for name in ("magmoms", "initial_magmoms"):
            if name in self.dataset.atom_labels:
                out.append(name)
        return out

    def _structure_values(self, per_atom: np.ndarray) -> np.ndarray:
        sl = self.dataset.atom_slice(self.index.value)
        reps = self.repeat.value ** 3
        return np.tile(per_atom[sl], (reps,) + (1,) * (per_atom.ndim - 1))

    def redraw(self, reload: bool = False) -> None:
        """Recompute colours and arrows and send them to the viewer (``reload``: the structure too)."""
        try:
            if reload or self.atoms is None:
                base = self.dataset.get_atoms(self.index.value)
                n = self.repeat.value
                self.atoms = base.repeat((n, n, n)) if n > 1 and base.pbc.any() else base
            self._load(self.atoms)  # a fresh component: old arrows and cells go with the old one
            self._colour()
            self._arrows()
            self._send()
        except Exception as exc:  # the panel shows it; the kernel keeps working
            self.status.value = f"<span style='color:crimson'>{type(exc).__name__}: {exc}</span>"
            return
        self.status.value = ""

    def _colour(self) -> None:
        by = self.color_by.value
        if by == "element":
            self.colors = element_colors(self.atoms.numbers)
            self.color_range = None
            legend = ", ".join(dict.fromkeys(self.atoms.get_chemical_symbols()))
        elif by in self.uncertainties:
            v = self._structure_values(self.uncertainties[by])
            self.colors, lo, hi = uncertainty_colors(v, self.colorscale.value)
            self.color_range = (lo, hi)
            span = f"{lo:.3g} (blue) … {hi:.3g} (red)" if self.colorscale.value == "RdBu_r" else f"{lo:.3g} … {hi:.3g}"
            legend = f"{by} ({UNCERTAINTY_QUANTITIES[by][1]}): {span}"
            if self.extrapolating is not None and by in ("extrapolation", "novelty"):
                k = int(self._structure_values(self.extrapolating).sum())
                legend += f"<br>{k} of {len(v)} atoms extrapolating"
        else:
            v = self._structure_values(self.quantities[by])
            self.colors, lo, hi = value_colors(v, self.colorscale.value, symmetric=self.centre_zero.value or None)
            self.color_range = (lo, hi)
            legend = f"{by}: {lo:.3g} (blue) … {hi:.3g} (red)" if self.colorscale.value == "RdBu_r" else \
                f"{by}: {lo:.3g} … {hi:.3g}"
        tags = " ".join(self.dataset.tags[self.index.value])
        energy = ""
        if "energy" in self.dataset:
            energy = f"; E = {float(self.dataset.label('energy')[self.index.value]):.4f} eV"
        picked = f"<br>atom {self.highlight} highlighted (green)" if self.highlight is not None else ""
        self.info.value = (f"<b>{self.atoms.get_chemical_formula()}</b> ({len(self.atoms)} atoms){energy}<br>"
                           f"{tags}<br>{legend}{picked}")

    def _arrows(self) -> None:
        name = self.arrows_of.value
        if name == "none":
            self.arrows = np.zeros((0, 2, 3))
            return
        v = np.asarray(self.dataset.atom_labels[name], dtype=float)
        if v.ndim == 1:  # collinear moments: along z
            v = np.stack([np.zeros_like(v), np.zeros_like(v), v], axis=1)
        vec = self._structure_values(v) * self.arrow_scale.value
        start = self.atoms.positions
        self.arrows = np.stack([start, start + vec], axis=1)

    def _load(self, atoms: Atoms) -> None:
        ngl = _nglview()
        for cid in list(self.view._ngl_component_ids):
            self.view.remove_component(cid)
        self.view.add_component(ngl.ASEStructure(atoms), default_representation=False)
        self.view.center()  # fit the camera to the structure

    def _send(self) -> None:
        v = self.view
        v.clear_representations()
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(self.colors):
            groups.setdefault(c, []).append(i)
        for color, idx in groups.items():
            v.add_representation("spacefill", selection=idx, color=color, radiusScale=self.radius.value)
        if self.highlight is not None and self.highlight < len(self.atoms):
            v.add_representation("spacefill", selection=[self.highlight], color="#39ff14",
                                 radiusScale=self.radius.value * 1.35, opacity=0.6)
        if self.show_cell.value and self.atoms.pbc.any():
            v.add_unitcell()
        if len(self.arrows):
            shapes = [("arrow", a.tolist(), b.tolist(), [0.1, 0.1, 0.1], 0.08) for a, b in self.arrows
                      if np.linalg.norm(b - a) > 1e-6]
            if shapes:
                v._add_shape(shapes, name="arrows")


def _as_potential(potential: Any) -> Potential:
    """A :class:`Potential` as given, or one over a model where its parameters are."""
    if isinstance(potential, Potential):
        return potential
    if isinstance(potential, torch.nn.Module):
        device, dtype = model_place(potential)
        return Potential(potential, device=device, dtype=dtype)
    raise InputError(f"expected a Potential, a Committee or a BPNN, got {type(potential).__name__}",
                     field="potential")


def _default_dataset() -> StructureDataset:
    try:
        from ..datasets import fe_spin_dft

        return fe_spin_dft()
    except InputError:
        from ..datasets import gold

        return gold(n_per_group=2, progress=False)

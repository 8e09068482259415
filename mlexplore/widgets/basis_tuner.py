"""`BasisTuner`: choose symmetry-function parameters while watching what they do (002 §2.3, app. F).

A thin view over library calls: the terms come from
:func:`mlexplore.descriptors.radial_grid` / :func:`~mlexplore.descriptors.angular_grid`
or a preset, the curves from :meth:`SymmetryFunctions.radial_values`, the RDF
from :func:`mlexplore.analysis.rdf`, the maxima from
:func:`~mlexplore.descriptors.g2_maximum`, the correlation summary from
:func:`mlexplore.analysis.feature_report` and the map from
:func:`mlexplore.analysis.pca`. ``tuner.descriptor`` hands the tuned
:class:`~mlexplore.descriptors.SymmetryFunctions` on to training; ``Save basis``
(:meth:`BasisTuner.save_basis`) writes it to a JSON file for ``mlexplore train``.

Every control change redraws the basis functions at once (a few ms); the
re-featurisation and PCA of the environment sample run after the controls have
been still for ``debounce`` seconds, in a background thread (``debounce=0``:
immediately, in the caller's thread — scripts and tests).
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from ..analysis import feature_report, pca, rdf
from ..data.dataset import StructureDataset
from ..descriptors import (PRESETS, SymmetryFunctions, angular_grid, eta_from_attenuation, g2_maxima,
                           preset_terms, radial_grid, rs_at_rdf_modes, save_basis)
from ..descriptors.cutoffs import CUTOFFS
from ..descriptors.neighbors import Neighbors, neighbor_pairs, pair_vectors
from ..descriptors.terms import G2, SpinGaussPair, SpinGaussSelf, SpinLocal, SpinPair, SpinSelf
from ..errors import InputError
from .clickable_figure import ClickableFigure
from .plot_output import PlotOutput

__all__ = ["BasisTuner", "default_tuner_dataset"]

_ZETAS = {"1": (1,), "1, 2": (1, 2), "1, 2, 4": (1, 2, 4), "1, 4, 16": (1, 4, 16)}
_LAMBDAS = {"−1 and +1": (-1, 1), "+1": (1,), "−1": (-1,)}
_SPIN = (SpinSelf, SpinPair, SpinGaussSelf, SpinGaussPair, SpinLocal)


def default_tuner_dataset() -> StructureDataset:
    """The built-in data of the panel: rattled CuAu FCC 2×2×2 cells, 3 per composition (EMT)."""
    from ..datasets import lattice_alloy

    return lattice_alloy("CuAu", n_per_composition=3, rattle=0.1, strain=0.02, progress=False)


class BasisTuner(w.VBox):
    """Tune a radial + angular basis on a dataset; display it in a notebook.

    Parameters
    ----------
    dataset:
        Periodic structures (default: :func:`default_tuner_dataset`).
    elements:
        Element-resolved features for these elements (default: the dataset's).
    max_environments:
        Size of the environment sample that is featurised for the PCA map and the
        correlation summary (whole structures are taken until it is reached).
    debounce:
        Seconds of quiet before re-featurising; 0 does it synchronously.
    compile:
        Fuse the angular sums with ``torch.compile`` (see :class:`SymmetryFunctions`):
        ``"auto"`` does it for samples of 5 000 environments or more, where it pays
        for its one-off compilation (~10–60 s the first time on a machine, cached
        on disk afterwards).
    precision:
        ``"float32"`` (default; plenty for a PCA map and correlations, and faster)
        or ``"float64"``. The tuned :attr:`descriptor` itself has no precision:
        training chooses its own.
    """

    def __init__(self, dataset: StructureDataset | None = None, elements: list[str] | None = None,
                 max_environments: int = 2000, debounce: float = 0.4, seed: int = 0,
                 compile: bool | str = "auto", precision: str = "float32") -> None:
        if precision not in ("float32", "float64"):
            raise InputError(f"precision must be 'float32' or 'float64', got {precision!r}", field="precision")
        if compile not in (True, False, "auto"):
            raise InputError(f"compile must be True, False or 'auto', got {compile!r}", field="compile")
        self.dataset = dataset if dataset is not None else default_tuner_dataset()
        self.elements = list(elements or self.dataset.elements)
        self.debounce = float(debounce)
        self._sample = _environment_sample(self.dataset, max_environments, seed)
        self.compile = bool(self._sample.n_total_atoms >= 5000) if compile == "auto" else compile
        self.precision = precision
        self._neighbor_cache: dict[float, list] = {}
        self._block_cache: dict[tuple, np.ndarray] = {}
        self._master: tuple[float, list] | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._pick_callbacks: list[Callable[[int, int], None]] = []
        self.features: np.ndarray | None = None
        self.timings: dict[str, float] = {}
        style = {"description_width": "120px"}
        lay = w.Layout(width="340px")

        def slider(cls, value, lo, hi, step, label, **kw):
            return cls(value=value, min=lo, max=hi, step=step, description=label, style=style, layout=lay,
                       continuous_update=False, **kw)

        self.preset = w.Dropdown(options=["custom grid"] + list(PRESETS), value="custom grid",
                                 description="preset", style=style, layout=lay)
        self.cutoff_function = w.Dropdown(options=list(CUTOFFS), value="cosine", description="cutoff function",
                                          style=style, layout=lay)
        self.rc = slider(w.FloatSlider, 5.0, 2.5, 9.0, 0.1, "R_c (Å)")
        self.radial_mode = w.ToggleButtons(options=["shifted", "centred", "RDF modes"], value="shifted",
                                           description="radial grid", style=style)
        self.n_radial = slider(w.IntSlider, 8, 0, 32, 1, "radial count")
        self.r_range = w.FloatRangeSlider(value=(1.5, 4.5), min=0.0, max=9.0, step=0.05, description="R_s range (Å)",
                                          style=style, layout=lay, continuous_update=False)
        self.auto_eta = w.Checkbox(True, description="η from spacing (1/2Δ²)", indent=False)
        self.eta = w.FloatLogSlider(value=2.0, base=10, min=-3, max=2, step=0.01, description="radial η (Å⁻²)",
                                    style=style, layout=lay, continuous_update=False)
        self.angular_family = w.ToggleButtons(options=["G4", "G5"], value="G4", description="angular",
                                              style=style)
        self.n_angular_eta = slider(w.IntSlider, 2, 0, 6, 1, "angular η count")
        self.angular_eta = w.FloatLogSlider(value=0.02, base=10, min=-4, max=0, step=0.01,
                                            description="angular η max", style=style, layout=lay,
                                            continuous_update=False)
        self.zetas = w.Dropdown(options=list(_ZETAS), value="1, 2, 4", description="ζ", style=style, layout=lay)
        self.lambdas = w.Dropdown(options=list(_LAMBDAS), value="−1 and +1", description="λ", style=style,
                                  layout=lay)
        self.attenuation = slider(w.FloatSlider, 0.5, 0.05, 0.95, 0.05, "attenuation at Δ")
        self.rdf_modes_button = w.Button(description="R_s at RDF modes", tooltip="centre the radial terms on the "
                                         "strongest peaks of the dataset's g(r)")
        self.attenuation_button = w.Button(description="η from attenuation", tooltip="η so that a term falls to "
                                           "the attenuation value one grid spacing from its centre")
        self.color_by = w.Dropdown(options=self._color_options(), value="element", description="colour PCA by",
                                   style=style, layout=lay)
        self.save_path = w.Text(value="basis.json", description="basis file", style=style,
                                layout=w.Layout(width="240px"))
        self.save_button = w.Button(description="Save basis", tooltip="write the tuned basis as JSON, for "
                                    "load_basis() or `mlexplore train FILE --basis <file>`")
        self.status = w.HTML("")
        self.maxima = w.HTML("")
        self.correlation = w.HTML("")
        self._rdf_r, self._rdf_g, self._rdf_name = _reference_density(self.dataset)
        self._mode_cache: dict[tuple, np.ndarray] = {}
        # the function plot is redrawn on every control change: a plain figure through an Output
        # widget (PlotOutput); the PCA map is a FigureWidget because its clicks reach Python
        # (ClickableFigure: one that a slow first load in the page does not leave blank)
        self.basis_figure = go.Figure(layout=dict(
            height=330, margin=dict(t=30, r=10), xaxis_title="r (Å)", yaxis_title="term value (one neighbour)",
            yaxis2=dict(title="g(r)", overlaying="y", side="right", showgrid=False), legend=dict(font_size=9)))
        self.pca_figure = ClickableFigure(layout=dict(height=330, margin=dict(t=30, r=10), xaxis_title="PC 1",
                                                      yaxis_title="PC 2"))
        self.point_structure: list[np.ndarray] = []
        self.point_atom: list[np.ndarray] = []

        for c in (self.preset, self.cutoff_function, self.rc, self.radial_mode, self.n_radial, self.r_range,
                  self.auto_eta, self.eta, self.angular_family, self.n_angular_eta, self.angular_eta, self.zetas,
                  self.lambdas):
            c.observe(self._on_change, names="value")
        self.color_by.observe(lambda _: self._draw_pca(), names="value")
        self.rdf_modes_button.on_click(lambda _: self.rs_at_rdf_modes())
        self.attenuation_button.on_click(lambda _: self.eta_from_attenuation())
        self.save_button.on_click(lambda _: self.save_basis())

        controls = w.VBox([
            self.preset, self.cutoff_function, self.rc, w.HTML("<b>radial (G2)</b>"), self.radial_mode,
            self.n_radial, self.r_range, self.auto_eta, self.eta,
            w.HBox([self.rdf_modes_button]), w.HBox([self.attenuation, self.attenuation_button]),
            w.HTML("<b>angular</b>"), self.angular_family, self.n_angular_eta, self.angular_eta, self.zetas,
            self.lambdas, self.color_by, w.HBox([self.save_path, self.save_button]), self.status])
        self.basis_view = PlotOutput(self.basis_figure, layout=w.Layout(width="100%"))
        figures = w.VBox([self.basis_view, w.HBox([self.maxima, self.correlation]), self.pca_figure],
                         layout=w.Layout(width="60%"))
        super().__init__([w.HBox([controls, figures])])
        self.update_basis()
        self.update_features()

    # ------------------------------------------------------------- the basis
    def terms(self) -> list:
        """The current term list: the preset's, or the grid the controls describe."""
        if self.preset.value != "custom grid":
            return [t for t in preset_terms(self.preset.value) if not isinstance(t, _SPIN)]
        lo, hi = self.r_range.value
        eta = None if self.auto_eta.value and self.radial_mode.value != "RDF modes" else self.eta.value
        if self.radial_mode.value == "RDF modes":
            radial = radial_grid(self.n_radial.value, lo, hi, eta=eta, rs=self._modes(self.n_radial.value))
        else:
            mode = "centred" if self.radial_mode.value == "centred" else "shifted"
            radial = radial_grid(self.n_radial.value, lo, hi, eta=eta, mode=mode)
        n_eta = self.n_angular_eta.value
        etas = self.angular_eta.value * np.logspace(-(n_eta - 1), 0, n_eta, base=4.0) if n_eta else []
        angular = angular_grid(etas, _ZETAS[self.zetas.value], _LAMBDAS[self.lambdas.value],
                               family=self.angular_family.value)
        return radial + angular

    @property
    def descriptor(self) -> SymmetryFunctions:
        """The tuned descriptor (a new module on every call), element-resolved for ``elements``."""
        cutoff = self.rc.value
        return SymmetryFunctions(self.terms(), cutoff=cutoff, cutoff_function=self.cutoff_function.value,
                                 elements=self.elements)

    def save_basis(self, path: str | None = None) -> str | None:
        """Write :attr:`descriptor` to ``path`` (default: the panel's file field) with
        :func:`mlexplore.descriptors.save_basis`; the status line says where. Returns the path,
        or None when the basis could not be built or written (the status says why)."""
        path = path or self.save_path.value.strip()
        try:
            if not path:
                raise InputError("give a file name for the basis", field="basis file")
            sf = self.descriptor
            save_basis(sf, path)
        except (InputError, OSError) as exc:
            self._error(exc)
            return None
        self.status.value = (f"saved {sf.n_features} features ({len(sf.terms)} terms, R_c {sf.cutoff:g} Å) to "
                             f"<code>{html.escape(path)}</code>: <code>mlexplore train FILE --basis "
                             f"{html.escape(path)}</code>")
        return path

    def _modes(self, n: int) -> np.ndarray:
        """The ``n`` strongest g(r) peaks below R_c (fewer when there are fewer), cached."""
        key = (n, round(self.rc.value, 6))
        if key not in self._mode_cache:
            self._mode_cache[key] = rs_at_rdf_modes(self.dataset, n_modes=max(1, n), r_max=self.rc.value)
        return self._mode_cache[key][:n]

    def rs_at_rdf_modes(self) -> None:
        """Centre the radial terms on the strongest g(r) peaks below R_c (``radial count`` of them);
        in this mode the count and R_c controls keep choosing peaks."""
        try:
            self._modes(self.n_radial.value)
        except Exception as exc:
            self._error(exc)
            return
        self.preset.value = "custom grid"
        self.auto_eta.value = False
        if self.radial_mode.value == "RDF modes":
            self._on_change()
        else:
            self.radial_mode.value = "RDF modes"

    def eta_from_attenuation(self) -> None:
        """Set radial η so every term falls to ``attenuation`` one grid spacing from its centre."""
        try:
            radial = [t for t in self.terms() if isinstance(t, G2)]
            rs = sorted({t.rs for t in radial})
            spacing = float(np.min(np.diff(rs))) if len(rs) > 1 else float(np.diff(self.r_range.value)[0])
            eta = eta_from_attenuation(self.attenuation.value, spacing)
        except Exception as exc:
            self._error(exc)
            return
        self.auto_eta.value = False
        self.eta.value = float(np.clip(eta, 10 ** self.eta.min, 10 ** self.eta.max))

    # ---------------------------------------------------------------- redraw
    def _on_change(self, change=None) -> None:
        if change is not None and change["owner"] is not self.preset and self.preset.value != "custom grid":
            if change["owner"] not in (self.rc, self.cutoff_function):
                self.preset.unobserve(self._on_change, names="value")
                self.preset.value = "custom grid"
                self.preset.observe(self._on_change, names="value")
        if change is not None and change["owner"] is self.preset and self.preset.value != "custom grid":
            spec = PRESETS[self.preset.value]
            with self.hold_trait_notifications():
                self.rc.unobserve(self._on_change, names="value")
                self.cutoff_function.unobserve(self._on_change, names="value")
                self.rc.value = spec["cutoff"]
                self.cutoff_function.value = spec["cutoff_function"]
                self.rc.observe(self._on_change, names="value")
                self.cutoff_function.observe(self._on_change, names="value")
        self.eta.disabled = self.auto_eta.value and self.radial_mode.value != "RDF modes"
        self.r_range.disabled = self.radial_mode.value == "RDF modes"  # the peaks choose R_s, not the range
        if self.update_basis():
            self.schedule_features()

    def update_basis(self) -> bool:
        """Redraw the basis functions over g(r) and the table of maxima (fast path)."""
        t0 = time.perf_counter()
        try:
            sf = self.descriptor
        except Exception as exc:
            self._error(exc)
            return False
        r = np.linspace(0.0, max(sf.neighbor_cutoff, self.r_range.value[1]) + 0.3, 400)
        values = sf.radial_values(r)
        fig = self.basis_figure
        with fig.batch_update():
            if len(fig.data) == len(sf.radial) + 1:  # same number of curves: update them in place
                for k, term in enumerate(sf.radial):
                    fig.data[k].update(x=r, y=values[:, k], name=term.label())
            else:
                fig.data = []
                for k, term in enumerate(sf.radial):
                    fig.add_scatter(x=r, y=values[:, k], mode="lines", name=term.label())
                fig.add_scatter(x=self._rdf_r, y=self._rdf_g, mode="lines", name=self._rdf_name, yaxis="y2",
                                line=dict(color="black", width=1))
            self.basis_figure.layout.shapes = [dict(type="line", x0=sf.cutoff, x1=sf.cutoff, y0=0, y1=1,
                                                    yref="paper", line=dict(color="grey", dash="dot"))]
            self.basis_figure.layout.title = (f"{len(sf.radial)} radial + {len(sf.angular)} angular terms, "
                                              f"{sf.n_features} features")
        self.basis_view.show()
        g2 = [t for t in sf.radial if isinstance(t, G2)]
        peaks = g2_maxima([t.rs for t in g2], [t.eta for t in g2], sf.cutoff, sf.cutoff_name)
        rows = "".join(f"<tr><td>{t.eta:.4g}</td><td>{t.rs:.3g}</td><td>{m:.3f}</td></tr>" for t, m in zip(g2, peaks))
        note = ""
        if (self.preset.value == "custom grid" and self.radial_mode.value == "RDF modes"
                and len(g2) < self.n_radial.value):
            note = (f"<br><i>{len(g2)} g(r) peaks below R_c = {sf.cutoff:g} Å, so {len(g2)} radial terms, not "
                    f"{self.n_radial.value}</i>")
        self.maxima.value = ("<b>G2 maxima</b> (one neighbour, 002 table 2.1)<table><tr><th>η (Å⁻²)</th>"
                             f"<th>R_s (Å)</th><th>r_max (Å)</th></tr>{rows}</table>{note}")
        self.status.value = ""
        self.timings["basis"] = time.perf_counter() - t0
        return True

    def schedule_features(self) -> None:
        """Re-featurise after ``debounce`` seconds of quiet (at once when ``debounce`` is 0)."""
        if self._timer is not None:
            self._timer.cancel()
        if self.debounce <= 0:
            self.update_features()
            return
        self.status.value = "featurising…"
        self._timer = threading.Timer(self.debounce, self.update_features)
        self._timer.daemon = True
        self._timer.start()

    def update_features(self) -> None:
        """Featurise the environment sample with the current basis; redraw the PCA map and the
        correlation summary."""
        with self._lock:
            t0 = time.perf_counter()
            try:
                sf = self.descriptor
                self.features = self._featurise(sf)
                self._pca = pca(self.features, 2)
                report = feature_report(self.features, sf.feature_names)
            except Exception as exc:
                self._error(exc)
                return
            self.timings["features"] = time.perf_counter() - t0
            self._draw_pca()
            ratio = self._pca.explained_variance_ratio
            self.correlation.value = (f"<b>features</b> ({len(self.features)} environments)<pre style='font-size:"
                                      f"11px'>{report.summary(max_items=3)}\nPC1 {ratio[0]:.1%}, PC2 "
                                      f"{ratio[1]:.1%} of the variance</pre>")
            self.timings["total"] = time.perf_counter() - t0
            self.status.value = f"featurised in {self.timings['features']:.2f} s"

    def _featurise(self, sf: SymmetryFunctions) -> np.ndarray:
        """Features of the environment sample, columns as ``sf`` orders them (radial, then angular).

        The neighbour list is kept while R_c stays, and each family's block while its own
        terms, R_c and cutoff function stay: moving a radial control recomputes only the
        radial block (the angular one, the expensive part, is reused) and vice versa.
        """
        import torch

        key = round(sf.neighbor_cutoff, 6)
        if key not in self._neighbor_cache:
            self._neighbor_cache = {key: self._neighbors_within(sf, key)}  # one list at a time
            self._block_cache = {}
        blocks = []
        for terms in (sf.radial, sf.angular):
            if not terms:
                continue
            block_key = (tuple(terms), sf.cutoff, sf.cutoff_name, key)
            if block_key not in self._block_cache:
                part = SymmetryFunctions(terms, cutoff=sf.cutoff, cutoff_function=sf.cutoff_name,
                                         elements=sf.elements, compile=self.compile)
                with torch.no_grad():
                    self._block_cache[block_key] = torch.cat(
                        [part(**batch, neighbors=nb) for batch, nb in self._neighbor_cache[key]]).numpy()
            blocks.append(self._block_cache[block_key])
        live = {(tuple(t), sf.cutoff, sf.cutoff_name, key) for t in (sf.radial, sf.angular) if t}
        self._block_cache = {k: v for k, v in self._block_cache.items() if k in live}
        return np.concatenate(blocks, axis=1)

    def _neighbors_within(self, sf: SymmetryFunctions, cutoff: float) -> list[tuple[dict, Neighbors]]:
        """Per chunk of the sample: the batch tensors and its neighbour list for ``cutoff`` (Å),
        carrying its pair vectors. Cut from one list built once for the largest R_c the
        slider allows, so moving R_c costs a filter over the pairs, not a neighbour search."""
        import torch

        reach = max(float(self.rc.max), cutoff)
        if self._master is None or self._master[0] < reach:
            dtype = torch.float32 if self.precision == "float32" else torch.float64
            chunks = []
            for a, b in _chunk_bounds(self._sample.n_atoms, 4096):
                batch = sf.prepare(self._sample[a:b], dtype=dtype)
                nb = neighbor_pairs(batch["positions"], batch["cells"], batch["pbc"], batch["n_atoms"], reach)
                owner = torch.repeat_interleave(torch.arange(len(batch["n_atoms"])), batch["n_atoms"])
                vec = pair_vectors(batch["positions"], batch["cells"], owner, nb)
                d = torch.linalg.vector_norm(vec, dim=1)
                nb.keep_vectors(batch["positions"], batch["cells"], vec, d)
                chunks.append((batch, nb, d))
            self._master = (reach, chunks)
        return [(batch, nb.within(d, cutoff)) for batch, nb, d in self._master[1]]

    # ------------------------------------------------------------------- PCA
    def _color_options(self) -> list[str]:
        opts = ["element", "structure"]
        if "energy" in self.dataset:
            opts.append("energy per atom")
        if any(len(t) for t in self.dataset.tags):
            opts.append("tag")
        return opts

    def _draw_pca(self) -> None:
        if getattr(self, "_pca", None) is None:
            return
        s = self._pca.scores
        ds = self._sample
        structure = np.repeat(np.arange(len(ds)), ds.n_atoms)[: len(s)]
        atom = (np.arange(ds.n_total_atoms) - np.repeat(ds.offsets[:-1], ds.n_atoms))[: len(s)]
        ids = np.stack([self._sample_index[structure], atom], axis=1)  # hover: numbers, not 10⁴ strings
        by = self.color_by.value
        groups: list[tuple[str, np.ndarray]]
        color = None
        if by == "element":
            from ase.data import chemical_symbols

            sym = np.array([chemical_symbols[z] for z in ds.numbers[: len(s)]])
            groups = [(e, sym == e) for e in dict.fromkeys(sym.tolist())]
        elif by == "tag":
            tag = np.array([(ds.tags[k][0] if ds.tags[k] else "—") for k in structure])
            groups = [(t, tag == t) for t in dict.fromkeys(tag.tolist())]
        else:
            groups = [("environments", np.ones(len(s), bool))]
            if by == "energy per atom":
                color = (ds.label("energy") / ds.n_atoms)[structure]
            else:
                color = self._sample_index[structure].astype(float)
        self.point_structure = [self._sample_index[structure[m]] for _, m in groups]
        self.point_atom = [atom[m] for _, m in groups]
        r = self._pca.explained_variance_ratio
        same = [t.name for t in self.pca_figure.data] == [name for name, _ in groups]
        with self.pca_figure.batch_update():
            if not same:  # other groups (first draw, or the colouring changed): new traces
                self.pca_figure.data = []
                for name, _ in groups:
                    self.pca_figure.add_scattergl(mode="markers", name=name, marker=dict(size=4),
                                                  hovertemplate="structure %{customdata[0]}, atom "
                                                                "%{customdata[1]}<extra>%{fullData.name}</extra>")
            for trace, (_, m) in zip(self.pca_figure.data, groups):  # numpy arrays straight in
                trace.x, trace.y, trace.customdata = s[m, 0], s[m, 1], ids[m]
                if color is not None:
                    trace.marker.update(color=color[m], colorscale="Viridis", colorbar=dict(title=by, len=0.8))
            self.pca_figure.layout.xaxis.title = f"PC 1 ({r[0]:.0%})"
            self.pca_figure.layout.yaxis.title = f"PC 2 ({r[1]:.0%})"
        self.pca_figure.sync()
        if not same:
            for trace in self.pca_figure.data:
                trace.on_click(self._on_click)

    def _on_click(self, trace, points, selector) -> None:
        k = list(self.pca_figure.data).index(trace)
        for p in points.point_inds[:1]:
            self.pick(k, p)

    def pick(self, trace: int, point: int) -> tuple[int, int]:
        """Select a PCA point (what a click does): returns (structure index in the dataset, atom index)
        and tells the callbacks registered with :meth:`on_pick`."""
        s, a = int(self.point_structure[trace][point]), int(self.point_atom[trace][point])
        for cb in self._pick_callbacks:
            cb(s, a)
        return s, a

    def on_pick(self, callback: Callable[[int, int], None]) -> None:
        """``callback(structure, atom)`` when a PCA point is clicked (e.g. ``viewer.show``)."""
        self._pick_callbacks.append(callback)

    def _error(self, exc: Exception) -> None:
        self.status.value = f"<span style='color:crimson'>{type(exc).__name__}: {exc}</span>"

    @property
    def _sample_index(self) -> np.ndarray:
        return self._sample.meta_index


def _reference_density(ds: StructureDataset) -> tuple[np.ndarray, np.ndarray, str]:
    """g(r) of the dataset's periodic structures, or (none periodic: clusters, molecules) the pair-distance
    density h(r)/r² scaled to a maximum of 1."""
    from ..descriptors import distance_histogram

    periodic = np.flatnonzero(ds.pbc.all(axis=1))
    if len(periodic):
        res = rdf(ds[periodic], r_max=9.0, bin_width=0.02, partial=False)
        return res.r, res.g["total"], "g(r)" if len(periodic) == len(ds) else "g(r), periodic structures"
    r, h = distance_histogram(ds, r_max=9.0)
    return r, h / max(float(h.max()), 1e-300), "pair density (scaled)"


def _environment_sample(ds: StructureDataset, max_environments: int, seed: int) -> StructureDataset:
    """Whole structures in random order until ``max_environments`` atoms; remembers the indices."""
    order = np.random.default_rng(seed).permutation(len(ds))
    total = np.cumsum(ds.n_atoms[order])
    n = int(np.searchsorted(total, max_environments) + 1)
    chosen = np.sort(order[: min(n, len(ds))])
    sample = ds[chosen]
    sample.meta_index = chosen
    return sample


def _chunk_bounds(n_atoms: np.ndarray, max_atoms: int) -> list[tuple[int, int]]:
    from ..descriptors.symmetry import _chunks

    return _chunks(n_atoms, max_atoms)

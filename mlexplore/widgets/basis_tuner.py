"""`BasisTuner`: choose symmetry-function parameters while watching what they do (002 §2.3, app. F).

A thin view over library calls: the terms come from
:func:`mlexplore.descriptors.radial_grid` / :func:`~mlexplore.descriptors.angular_grid`
or a preset, the curves from :meth:`SymmetryFunctions.radial_values`, the RDF
from :func:`mlexplore.analysis.pair_density`, the maxima from
:func:`~mlexplore.descriptors.g2_maxima`, the features from a
:class:`mlexplore.descriptors.FeatureCache` (one neighbour list, a block per term family
reused), the correlation summary from :func:`mlexplore.analysis.feature_report`, the map from
:func:`mlexplore.analysis.pca`; both figures are drawn by :mod:`mlexplore.viz`
(:func:`~mlexplore.viz.basis_over_rdf`, :func:`~mlexplore.viz.environment_map`). ``tuner.descriptor`` hands the tuned
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

from ..analysis import PairDensity, PCAResult, feature_report, pair_density, pca
from ..data.dataset import StructureDataset
from ..descriptors import (CUTOFFS, G2, PRESETS, FeatureCache, SpinGaussPair, SpinGaussSelf, SpinLocal, SpinPair,
                           SpinSelf, SymmetryFunctions, angular_grid, environment_sample, eta_from_attenuation,
                           g2_maxima, preset_terms, radial_grid, rs_at_rdf_modes, save_basis)
from ..errors import InputError
from ..viz import basis_over_rdf, environment_colorings, environment_map
from .clickable_figure import ClickableFigure
from .plot_output import PlotOutput

__all__ = ["BasisTuner", "default_tuner_dataset"]

_ZETAS = {"1": (1,), "1, 2": (1, 2), "1, 2, 4": (1, 2, 4), "1, 4, 16": (1, 4, 16)}
_LAMBDAS = {"−1 and +1": (-1, 1), "+1": (1,), "−1": (-1,)}
_SPIN = (SpinSelf, SpinPair, SpinGaussSelf, SpinGaussPair, SpinLocal)
_BASIS_LAYOUT = dict(height=330, margin=dict(t=30, r=10), legend=dict(font_size=9))


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

    Attributes
    ----------
    sample, sample_index:
        The environment sample (whole structures) and the indices of its structures in ``dataset``.
    feature_cache:
        The :class:`~mlexplore.descriptors.FeatureCache` of the sample (its counters say what a
        control change reused).
    features, pca_result:
        The sample's current features ``(n_environments, n_features)`` and their PCA.
    density:
        The :class:`~mlexplore.analysis.PairDensity` under the basis curves.
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
        self.sample_index = environment_sample(self.dataset, max_environments, seed)
        self.sample = self.dataset[self.sample_index]
        self.compile = bool(self.sample.n_total_atoms >= 5000) if compile == "auto" else compile
        self.precision = precision
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._pick_callbacks: list[Callable[[int, int], None]] = []
        self.features: np.ndarray | None = None
        self.pca_result: PCAResult | None = None
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
        self.color_by = w.Dropdown(options=environment_colorings(self.dataset), value="element", description="colour PCA by",
                                   style=style, layout=lay)
        self.save_path = w.Text(value="basis.json", description="basis file", style=style,
                                layout=w.Layout(width="240px"))
        self.save_button = w.Button(description="Save basis", tooltip="write the tuned basis as JSON, for "
                                    "load_basis() or `mlexplore train FILE --basis <file>`")
        self.status = w.HTML("")
        self.maxima = w.HTML("")
        self.correlation = w.HTML("")
        self.density: PairDensity = pair_density(self.dataset, r_max=9.0, bin_width=0.02)
        # one neighbour list for the slider's largest R_c (a larger reach, e.g. a preset's
        # Gauss-Fourier window, searches again), feature blocks reused per term family
        self.feature_cache = FeatureCache(self.sample, max_cutoff=float(self.rc.max), dtype=precision,
                                          compile=self.compile, rebuild=True)
        self._mode_cache: dict[tuple, np.ndarray] = {}
        # the function plot is redrawn on every control change: a plain figure through an Output
        # widget (PlotOutput); the PCA map is a FigureWidget because its clicks reach Python
        # (ClickableFigure: one that a slow first load in the page does not leave blank)
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
        self.basis_view = PlotOutput(go.Figure(layout=_BASIS_LAYOUT), layout=w.Layout(width="100%"))
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
        r_max = max(sf.neighbor_cutoff, self.r_range.value[1]) + 0.3
        self.basis_view.figure = basis_over_rdf(sf, density=self.density, r_max=r_max, n=400, show_counts=True,
                                                layout=_BASIS_LAYOUT)
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
                self.features = self.feature_cache.features(sf)
                self.pca_result = pca(self.features, 2)
                report = feature_report(self.features, sf.feature_names)
            except Exception as exc:
                self._error(exc)
                return
            self.timings["features"] = time.perf_counter() - t0
            self._draw_pca()
            ratio = self.pca_result.explained_variance_ratio
            self.correlation.value = (f"<b>features</b> ({len(self.features)} environments)<pre style='font-size:"
                                      f"11px'>{report.summary(max_items=3)}\nPC1 {ratio[0]:.1%}, PC2 "
                                      f"{ratio[1]:.1%} of the variance</pre>")
            self.timings["total"] = time.perf_counter() - t0
            self.status.value = f"featurised in {self.timings['features']:.2f} s"

    @property
    def basis_figure(self) -> go.Figure:
        """The figure of the basis functions over g(r) as shown now (from :func:`mlexplore.viz.basis_over_rdf`)."""
        return self.basis_view.figure

    # ------------------------------------------------------------------- PCA
    def _draw_pca(self) -> None:
        """Draw the map of :func:`mlexplore.viz.environment_map` into the live figure, in place (the
        traces are kept, with their click handlers, while the groups stay the same)."""
        if self.pca_result is None:
            return
        new = environment_map(self.pca_result.scores, self.sample, color_by=self.color_by.value,
                              structure_index=self.sample_index,
                              explained_variance=self.pca_result.explained_variance_ratio)
        ids = [np.asarray(t.customdata) for t in new.data]
        self.point_structure = [d[:, 0] for d in ids]
        self.point_atom = [d[:, 1] for d in ids]
        fig = self.pca_figure
        same = [t.name for t in fig.data] == [t.name for t in new.data]
        with fig.batch_update():
            if same:  # numpy arrays straight in
                for trace, source in zip(fig.data, new.data):
                    trace.x, trace.y, trace.customdata = source.x, source.y, source.customdata
                    trace.marker = source.marker
            else:  # other groups (first draw, or the colouring changed): new traces
                fig.data = []
                fig.add_traces(new.data)
            fig.layout.xaxis.title = new.layout.xaxis.title
            fig.layout.yaxis.title = new.layout.yaxis.title
        fig.sync()
        if not same:
            for trace in fig.data:
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

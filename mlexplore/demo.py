"""The main demo, end to end on built-in data: generate, featurise, train STL and MTL, compare,
and write a self-contained HTML report (``mlexplore demo``).

    from mlexplore.demo import run_demo
    result = run_demo(n_per_composition=20, report="demo.html")

Steps: a CuAu alloy on the 32-site FCC lattice of seed 000 (EMT labels); its g(r) and a radial
symmetry-function basis centred on the g(r) peaks; the PCA map of the atomic environments;
single-task and multi-task LatticeMLPs for the mixing energy and the per-site energy over
repeated stratified splits (000's protocol); the table in 001 table 1's layout, learning curves,
parity plots and test-error PDFs. The report embeds plotly.js, so it opens without a network.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go

from .analysis import pca, rdf
from .data.dataset import StructureDataset
from .viz.figures import task_error_pdfs
from .viz.report import html_report

__all__ = ["DemoResult", "run_demo", "write_report"]


@dataclass
class DemoResult:
    """What the demo computed: the dataset, the comparison rows and runs, the figures (title → figure)
    and the seconds each step took."""

    dataset: StructureDataset
    rows: list[dict]
    runs: list[Any]
    figures: dict[str, go.Figure] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    table: str = ""


def run_demo(n_per_composition: int = 20, n_runs: int = 3, epochs: int = 150, seed: int = 0,
             report: str | os.PathLike | None = "mlexplore-demo.html", device: Any = "auto",
             progress: bool = True, log: Callable[[str], None] = print) -> DemoResult:
    """Run every step (see the module docstring); write the HTML report unless ``report`` is None."""
    from .data import stratified_split
    from .datasets import lattice_alloy
    from .descriptors import SymmetryFunctions, eta_from_attenuation, radial_grid, rs_at_rdf_modes
    from .training import compare_tasks
    from .training.labels import run_label
    from .viz import basis_over_rdf, learning_curves, parity_plot, pca_map, rdf_plot, task_table

    timings: dict[str, float] = {}
    t = time.perf_counter()
    log("1/5 data: CuAu on a fixed 32-site FCC lattice, every composition, EMT labels")
    ds = lattice_alloy("CuAu", n_per_composition=n_per_composition, rattle=0.05, seed=seed, progress=progress)
    log(ds.summary())
    train, val, test = stratified_split(ds, (0.7, 0.15, 0.15), seed=seed)
    log(f"stratified split: {len(train)} train / {len(val)} validation / {len(test)} test structures")
    timings["data"] = time.perf_counter() - t

    t = time.perf_counter()
    log("\n2/5 features: radial symmetry functions centred on the g(r) peaks")
    g = rdf(ds, r_max=6.0)
    modes = rs_at_rdf_modes(ds, n_modes=6, r_max=5.5)
    eta = eta_from_attenuation(0.5, float(np.min(np.diff(modes))))
    sf = SymmetryFunctions(radial_grid(len(modes), rs=modes, eta=eta), cutoff=6.0, elements=list(ds.elements))
    sample = ds[: max(1, min(len(ds), 4000 // int(ds.n_atoms[0])))]
    features = sf.compute(sample).numpy()
    res = pca(features, 2)
    log(f"{sf.n_features} features ({', '.join(sf.feature_names[:2])}, …) on {len(features)} environments; "
        f"PC1 + PC2 explain {res.explained_variance_ratio.sum():.0%} of the variance")
    timings["features"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"\n3/5 training: STL and MTL LatticeMLPs, {n_runs} stratified splits each, {epochs} epochs")
    rows = compare_tasks(ds, ["mixing_energy", "energies"], model="lattice", n_runs=n_runs, epochs=epochs,
                         lr=1e-3, width=200, seed=seed, device=device, progress=progress)
    runs = rows.runs
    timings["training"] = time.perf_counter() - t

    table = rows.to_text()
    log("\n4/5 comparison (test RMSE, eV/atom for the mixing energy, eV for the per-site energy):\n" + table)

    t = time.perf_counter()
    figures: dict[str, go.Figure] = {}
    figures["Radial distribution function"] = rdf_plot(g, title="g(r), total and partial")
    figures["Basis functions over g(r)"] = basis_over_rdf(sf, g)
    element = np.array([{29: "Cu", 79: "Au"}.get(int(z), str(z)) for z in sample.numbers[: len(features)]])
    figures["PCA of the atomic environments"] = pca_map(res.scores, color=element, title="environments by element")
    figures["Comparison table (001 table 1 layout)"] = task_table(rows)
    for combo in dict.fromkeys(r.tasks for r in runs):
        first = next(r for r in runs if r.tasks == combo)
        label = run_label(combo)
        figures[f"Learning curves, {label} (run 0)"] = learning_curves(first.history)
    for target, unit in (("mixing_energy", "eV/atom"), ("energies", "eV")):
        for combo in dict.fromkeys(r.tasks for r in runs if target in r.tasks):
            chosen = [r for r in runs if r.tasks == combo]
            label = run_label(combo)
            ref = np.concatenate([r.reference[target] for r in chosen])
            pred = np.concatenate([r.predicted[target] for r in chosen])
            figures[f"Parity, {target}, {label}"] = parity_plot(ref, pred, title=f"{target}: {label}", unit=unit)
        figures[f"Test-error PDFs, {target}"] = task_error_pdfs(runs, target, unit)
    timings["figures"] = time.perf_counter() - t
    result = DemoResult(dataset=ds, rows=rows, runs=runs, figures=figures, timings=timings, table=table)
    if report is not None:
        path = write_report(result, report)
        log(f"\n5/5 report: {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained; open it in a browser)")
    return result


def write_report(result: DemoResult, path: str | os.PathLike) -> Path:
    """A single HTML file with the summary, the comparison table and every figure (plotly.js inline);
    written atomically."""
    from . import __version__

    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    blocks = [("Dataset", result.dataset.summary()),
              (f"Comparison (test RMSE over {max(r['n_runs'] for r in result.rows)} runs)", result.table),
              *result.figures.items()]
    return html_report(path, "mlexplore demo: single- vs multi-task learning on CuAu", blocks,
                       intro=f"mlexplore {__version__}; {len(result.dataset)} structures; {timing}.")

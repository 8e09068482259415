"""Self-contained HTML reports: text blocks and plotly figures in one file that opens without a network,
and the reports of the ``mlexplore`` commands (train, evaluate, compare, featurise) built from library results."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

from ..io.files import atomic_write

if TYPE_CHECKING:  # (types only: the reports import the training layer when they run)
    from ..analysis.featurisation import Featurisation
    from ..data.dataset import StructureDataset
    from ..training import PotentialFit, TaskRun

__all__ = ["html_report", "parity_blocks", "training_report", "evaluation_report", "comparison_report",
           "featurisation_report", "training_summary", "comparison_summary"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
          "pre{background:#f6f6f6;padding:1em;overflow-x:auto} h2{border-bottom:1px solid #ddd;padding-bottom:.2em}")


def html_report(path: str | os.PathLike, title: str, blocks: Sequence[tuple[str, str | go.Figure]],
                intro: str = "") -> Path:
    """Write ``blocks`` — ``(heading, text or figure)`` pairs — under ``title`` to one HTML file.

    Text goes in a ``<pre>`` block (tables stay aligned); plotly.js is inlined once, with the
    first figure. The file is written atomically.
    """
    parts, first_figure = [], True
    for heading, content in blocks:
        if isinstance(content, go.Figure):
            body = content.to_html(full_html=False, include_plotlyjs=first_figure, default_height="460px")
            first_figure = False
        else:
            body = f"<pre>{html.escape(str(content))}</pre>"
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
           f"<style>{_STYLE}</style>\n</head><body>\n<h1>{html.escape(title)}</h1>\n"
           + (f"<p>{html.escape(intro)}</p>\n" if intro else "") + "\n".join(parts) + "\n</body></html>\n")
    path = Path(path)
    with atomic_write(path) as fh:
        fh.write(doc)
    return path


Block = tuple[str, "str | go.Figure"]


def parity_blocks(metrics: dict[str, Any], predictions: dict[str, Any], data: StructureDataset,
                  name: str) -> list[Block]:
    """Report blocks of one scored set: its scores (:func:`~mlexplore.training.format_evaluation`) and
    the parity plots of energy per atom (eV/atom) and, when scored, force components (eV/Å).

    ``metrics``: :func:`~mlexplore.training.evaluate_potential`'s scores; ``predictions``: the
    model's arrays for ``data`` (``predict()``'s ``energy`` (n,) eV and ``forces`` (N, 3) eV/Å).
    """
    from ..training import format_evaluation
    from .figures import parity_plot

    blocks: list[Block] = [
        (f"Scores, {name}", format_evaluation(metrics)),
        (f"Energy per atom, {name}", parity_plot(data.label("energy") / data.n_atoms,
                                                 predictions["energy"] / data.n_atoms, unit="eV/atom"))]
    if "forces" in metrics:
        blocks.append((f"Force components, {name}", parity_plot(data.label("forces"), predictions["forces"],
                                                                unit="eV/Å")))
    return blocks


def training_report(path: str | os.PathLike, result: PotentialFit, title: str, intro: str = "") -> Path:
    """The report of a :class:`~mlexplore.training.PotentialFit`: learning curves, then the scores and
    parity plots of the test set (of the validation set when there is none)."""
    from .figures import learning_curves

    key = "test" if result.test is not None else "val"
    blocks = [("Learning curves", learning_curves(result.history))]
    blocks += parity_blocks(result.metrics[key], result.predictions[key], getattr(result, key),
                            "test set" if key == "test" else "validation set")
    return html_report(path, title, blocks, intro=intro)


def evaluation_report(path: str | os.PathLike, metrics: dict[str, Any], data: StructureDataset, title: str,
                      name: str = "") -> Path:
    """The report of :func:`~mlexplore.training.evaluate_potential`'s ``metrics`` on ``data`` (with
    its ``predictions``): scores and parity plots, headed ``name``."""
    return html_report(path, title, parity_blocks(metrics, metrics["predictions"], data, name or "data"))


def comparison_report(path: str | os.PathLike, rows: Sequence[dict], runs: Sequence[TaskRun], targets: Sequence[str],
                      title: str, intro: str = "") -> Path:
    """The report of a task comparison (the rows and ``.runs`` of
    :func:`~mlexplore.training.compare_tasks`'s result): the text table, the table figure and the test-error PDFs of every target
    (in the target's unit from ``LABEL_UNITS``)."""
    from ..data.dataset import LABEL_UNITS
    from ..training import format_task_table
    from .figures import task_error_pdfs, task_table

    blocks: list[Block] = [("Comparison", format_task_table(list(rows))), ("Table", task_table(rows))]
    for t in targets:
        blocks.append((f"Test-error PDFs, {t}", task_error_pdfs(runs, t, LABEL_UNITS.get(t, "").split(" ")[0])))
    return html_report(path, title, blocks, intro=intro)


def featurisation_report(path: str | os.PathLike, result: Featurisation, dataset: StructureDataset, title: str,
                         intro: str | None = None) -> Path | None:
    """The report of a :class:`~mlexplore.analysis.Featurisation` of ``dataset``: the correlation
    report and PCA maps coloured by element and by each structure's first tag. None (nothing
    written) when there are fewer than two principal components to map."""
    from ase.data import chemical_symbols

    from ..analysis.featurisation import first_tags
    from .figures import pca_map

    if result.pca is None or result.pca.scores.shape[1] < 2:
        return None
    structure = result.structure
    element = np.array([chemical_symbols[z] for z in result.numbers])
    first_tag = np.array(first_tags(dataset), dtype=object)[structure]
    atom = np.arange(len(structure)) - dataset.offsets[structure]
    hover = [f"structure {s}, atom {a}" for s, a in zip(structure, atom)]
    blocks: list[Block] = [("Correlations", result.report.summary(max_items=20)),
                           ("PCA map by element", pca_map(result.pca.scores, element, hover=hover)),
                           ("PCA map by first tag", pca_map(result.pca.scores, first_tag, hover=hover))]
    if intro is None:
        intro = (f"{result.n_structures} structures, {result.features.shape[0]} atoms, "
                 f"{result.features.shape[1]} features ({result.basis})")
    return html_report(path, title, blocks, intro=intro)


def training_summary(result: PotentialFit) -> str:
    """A :class:`~mlexplore.training.PotentialFit` as text: basis, network, targets and split sizes,
    training time (s) and best epoch, then the scores of every set (meV/atom, eV/Å)."""
    from ..training import format_evaluation

    s, h = result.settings, result.history
    lines = [f"basis {s['basis']} ({s['n_features']} features per atom), network {s['hidden']} {s['activation']}, "
             f"targets {'+'.join(s['targets'])}; split {'/'.join(str(k) for k in s['split_sizes'])}"]
    if h.interrupted:
        lines.append(f"interrupted: keeping the best model (epoch {h.best_epoch})")
    lines.append(f"trained in {result.seconds:.1f} s, best epoch {h.best_epoch} of {len(h.epoch)}")
    for key, name in (("train", "training set"), ("val", "validation set"), ("test", "test set")):
        if key in result.metrics:
            lines += ["", format_evaluation(result.metrics[key], title=name)]
    return "\n".join(lines)


def comparison_summary(rows: Sequence[dict]) -> str:
    """The rows of :func:`~mlexplore.training.compare_tasks` as text: the table
    (:func:`~mlexplore.training.format_task_table`), the test R² (mean ± std) of every model and
    target, and the models no better than predicting the mean (R² ≤ 0)."""
    from ..training import format_task_table
    from ..training.labels import run_label

    lines = [format_task_table(list(rows)), ""]
    lines += [f"{run_label(r['tasks']):<40} {r['target']:<18} R² {r['r2_mean']:.4f} ± {r['r2_std']:.2g}"
              for r in rows]
    worse = [f"{r['tasks']} → {r['target']}" for r in rows if r["r2_mean"] <= 0]
    if worse:
        lines += ["", "no better than predicting the mean (R² ≤ 0): " + "; ".join(worse)
                  + " — more epochs, a lower --lr, or more data"]
    return "\n".join(lines)

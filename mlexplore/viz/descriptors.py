"""Figures of descriptors and their features: the PCA map of atomic environments, grouped by
element, structure, energy per atom or tag (what :class:`~mlexplore.widgets.BasisTuner` shows).

The basis functions over g(r) are :func:`mlexplore.viz.basis_over_rdf`; this module adds the map
of the environments those functions describe.

    from mlexplore.analysis import pca
    from mlexplore.viz import environment_map

    res = pca(sf.compute(ds).numpy(), 2)
    environment_map(res.scores, ds, color_by="energy per atom", explained_variance=res.explained_variance_ratio)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..data.dataset import StructureDataset
from ..errors import InputError
from .figures import pca_map

__all__ = ["environment_map", "environment_colorings", "ENVIRONMENT_HOVER"]

#: Hover text of a map point: its structure (index in the dataset) and atom (index in the structure).
ENVIRONMENT_HOVER = "structure %{customdata[0]}, atom %{customdata[1]}<extra>%{fullData.name}</extra>"


def environment_colorings(dataset: StructureDataset) -> list[str]:
    """The ``color_by`` choices of :func:`environment_map` that ``dataset`` has data for:
    ``"element"``, ``"structure"``, and ``"energy per atom"`` (an ``energy`` label) and ``"tag"``
    (any tags) where present."""
    opts = ["element", "structure"]
    if "energy" in dataset:
        opts.append("energy per atom")
    if any(len(t) for t in dataset.tags):
        opts.append("tag")
    return opts


def environment_map(scores: Any, dataset: StructureDataset, color_by: str = "element",
                    structure_index: Sequence[int] | None = None,
                    explained_variance: Sequence[float] | None = None, marker_size: int = 4,
                    title: str = "") -> go.Figure:
    """The first two PCA scores of the atomic environments of ``dataset`` (one row per atom, in
    dataset order; fewer rows: the first atoms), one trace per group.

    Parameters
    ----------
    scores:
        ``(n_atoms, ≥2)`` PCA scores (e.g. :attr:`mlexplore.analysis.PCAResult.scores`).
    dataset:
        The structures the environments belong to.
    color_by:
        ``"element"`` or ``"tag"`` (the structure's first tag): a trace per group;
        ``"structure"`` (its index) or ``"energy per atom"`` (eV/atom): one trace on a colour scale.
    structure_index:
        The index of each of ``dataset``'s structures in a larger dataset it was taken from (a
        sample), shown and handed back instead of its position in ``dataset``.
    explained_variance:
        Variance ratios of the components, for the axis titles.

    Every trace carries ``customdata`` rows ``(structure index, atom index in the structure)``
    of its points, which a click handler reads back.
    """
    s = np.asarray(scores, dtype=float)
    n = len(s)
    if n > dataset.n_total_atoms:
        raise InputError(f"{n} score rows for the {dataset.n_total_atoms} atoms of the dataset", field="scores")
    index = np.arange(len(dataset)) if structure_index is None else np.asarray(structure_index, dtype=np.int64)
    if len(index) != len(dataset):
        raise InputError(f"{len(index)} structure indices for {len(dataset)} structures", field="structure_index")
    structure = np.repeat(np.arange(len(dataset)), dataset.n_atoms)[:n]
    atom = (np.arange(dataset.n_total_atoms) - np.repeat(dataset.offsets[:-1], dataset.n_atoms))[:n]
    ids = np.stack([index[structure], atom], axis=1)
    if color_by == "element":
        from ase.data import chemical_symbols

        color: np.ndarray = np.array(chemical_symbols, dtype=object)[dataset.numbers[:n]]
        name = ""
    elif color_by == "tag":
        color = np.array([(dataset.tags[k][0] if dataset.tags[k] else "—") for k in range(len(dataset))],
                         dtype=object)[structure]
        name = ""
    elif color_by == "energy per atom":
        if "energy" not in dataset:
            raise InputError("the dataset has no 'energy' label to colour by", field="color_by")
        color = (dataset.label("energy") / dataset.n_atoms)[structure]
        name = "energy per atom"
    elif color_by == "structure":
        color = index[structure].astype(float)
        name = "structure"
    else:
        raise InputError(f"color_by must be one of 'element', 'structure', 'energy per atom', 'tag', got "
                         f"{color_by!r}", field="color_by")
    return pca_map(s, color=color, color_name=name, customdata=ids, hovertemplate=ENVIRONMENT_HOVER,
                   explained_variance=explained_variance, name="environments", marker_size=marker_size,
                   title=title)

"""Featurise a dataset with a symmetry-function basis and diagnose the features in one call (what
``mlexplore featurise`` runs).

    from mlexplore.io import read
    from mlexplore.analysis import featurise

    result = featurise(read("my.extxyz"), "loeffler-au")
    print(result.summary())           # dead / redundant features, PCA explained variance
    result.save("features.npz")       # features, feature_names, structure, numbers
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset
from ..descriptors.presets import resolve_basis
from ..descriptors.symmetry import SymmetryFunctions
from ..io.files import atomic_write
from .features import FeatureReport, feature_report
from .pca import PCAResult, pca

__all__ = ["Featurisation", "featurise", "first_tags"]


def first_tags(dataset: StructureDataset, untagged: str = "(untagged)") -> list[str]:
    """The first tag of every structure of ``dataset`` (``untagged`` for a structure without tags)."""
    return [tags[0] if len(tags) else untagged for tags in dataset.tags]


@dataclass
class Featurisation:
    """The per-atom features of a dataset and their diagnostics, as :func:`featurise` returns them.

    ``features``: ``(n_atoms, n_features)`` array (the basis's units: G2/G4 values are
    dimensionless sums); ``feature_names``: one per column; ``structure``: ``(n_atoms,)`` index of
    each atom's structure; ``numbers``: ``(n_atoms,)`` atomic numbers; ``report``: dead and
    redundant features (:func:`~mlexplore.analysis.feature_report`); ``pca``: principal components
    of the standardised features (None for fewer than two atoms); ``seconds``: featurisation wall
    time (s); ``basis``: the basis's name in summaries; ``n_structures``: structures featurised.
    """

    features: np.ndarray
    feature_names: list[str]
    structure: np.ndarray
    numbers: np.ndarray
    report: FeatureReport
    pca: PCAResult | None
    seconds: float
    basis: str
    n_structures: int

    def summary(self) -> str:
        """Sizes and speed, the dead/redundant-feature report and the PCA explained variance, as text."""
        n_atoms, n_features = self.features.shape
        lines = [f"{self.n_structures} structures, {n_atoms} atoms × {n_features} features ({self.basis}; "
                 f"{self.seconds:.2f} s, {n_atoms / max(self.seconds, 1e-9):.0f} atoms/s)", "", self.report.summary()]
        if self.pca is not None:
            lines.append("PCA (standardised features): explained variance "
                         + ", ".join(f"PC{k + 1} {v:.1%}" for k, v in enumerate(self.pca.explained_variance_ratio)))
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``features``, ``feature_names``, ``structure`` and ``numbers`` to a compressed ``.npz``
        file (atomically); returns its path."""
        path = Path(path)
        with atomic_write(path, text=False) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, features=self.features, feature_names=np.array(self.feature_names),
                                    structure=self.structure, numbers=self.numbers)
        return path


def featurise(dataset: StructureDataset, basis: str | SymmetryFunctions, device: Any = "cpu",
              n_components: int = 5, progress: bool = True, name: str | None = None) -> Featurisation:
    """Features of every atom of ``dataset`` with ``basis``, their correlations and their PCA.

    ``basis``: a preset name (built for the dataset's elements) or a :class:`SymmetryFunctions`
    covering them. ``device``: where the features are computed (``"auto"``: CUDA when present).
    ``n_components``: principal components kept (at most the number of atoms and of features).
    ``name``: how summaries call the basis (default: the preset name, or ``"custom"``).
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    sf = resolve_basis(basis, dataset.elements)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.perf_counter()
    features = sf.compute(dataset, device=torch.device(device), progress=progress).cpu().numpy()
    seconds = time.perf_counter() - t0
    names = list(sf.feature_names)
    report = feature_report(features, names)
    n_pc = min(int(n_components), *features.shape)
    result = pca(features, n_components=n_pc) if features.shape[0] > 1 and n_pc >= 1 else None
    return Featurisation(features=features, feature_names=names,
                         structure=np.repeat(np.arange(len(dataset)), dataset.n_atoms),
                         numbers=np.asarray(dataset.numbers), report=report, pca=result, seconds=seconds,
                         basis=name or (basis if isinstance(basis, str) else "custom"), n_structures=len(dataset))

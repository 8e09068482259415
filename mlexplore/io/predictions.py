"""Write structures with a model's predictions beside their reference labels (what
``mlexplore evaluate --predictions`` writes)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ..data.dataset import StructureDataset

__all__ = ["write_predictions"]


def write_predictions(path: str | os.PathLike, dataset: StructureDataset,
                      predictions: Mapping[str, np.ndarray]) -> list[str]:
    """Write ``dataset`` (any format :func:`~mlexplore.io.write` knows) with the labels
    ``energy_predicted`` (per structure, eV) and, when predicted, ``forces_predicted`` (per atom,
    eV/Å) from ``predictions`` (``predict()``'s arrays); the reference labels are kept. Returns the
    names of the labels added."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    out = dataset.copy()
    names = []
    for key in [k for k in ("energy", "forces") if k in predictions]:
        out.add_label(f"{key}_predicted", np.asarray(predictions[key]), per_atom=key == "forces")
        names.append(f"{key}_predicted")
    out.save(path)
    return names

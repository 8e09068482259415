"""Generate a built-in dataset by its name (what ``mlexplore generate`` runs).

    from mlexplore.datasets.generate import generate_dataset

    ds = generate_dataset("lattice_alloy", n=4, pair="AgPd")
"""

from __future__ import annotations

from typing import Any

from ..data.dataset import StructureDataset
from ..errors import InputError
from .registry import REGISTRY

__all__ = ["generate_dataset"]


def generate_dataset(name: str, n: int | None = None, seed: int = 0, progress: bool = True, cache: bool = True,
                     **params: Any) -> StructureDataset:
    """The built-in dataset ``name`` (a key of :data:`mlexplore.datasets.REGISTRY`).

    ``n`` sets the dataset's size parameter (e.g. ``n_per_composition``; None: the generator's
    default); ``seed`` the random seed unless ``params`` holds one; ``params`` go to the generator
    (e.g. ``pair="AgPd"``). An unknown name or argument raises :class:`InputError`.
    """

    entry = REGISTRY.get(name)
    if entry is None:
        raise InputError(f"unknown dataset {name!r}; choose from {', '.join(REGISTRY)}", field="name")
    if n is not None:
        params[entry.size_parameter] = n
    params.setdefault("seed", seed)
    try:
        return entry.function(progress=progress, cache=cache, **params)
    except TypeError as exc:
        raise InputError(f"{name}: {exc}") from None

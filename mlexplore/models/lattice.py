"""The fixed-lattice MLP of seed 000 §3.2: single-task (STL) and multi-task (MTL).

Input: the occupation of every site of a fixed lattice (one column per site and
element, 1 where that element sits there). Outputs: per-structure targets
(total energy, mixing enthalpy) and per-site targets (charge transfer, moment).

- STL: ``n_in → width → width → n_out`` for one target.
- MTL: ``n_in → width → width`` shared, then one task-specific layer of
  ``width`` nodes split evenly between the tasks (``width // n_tasks`` each),
  then each task's output layer — the CuAu/FePt networks of 000 (200 / 300).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data.dataset import StructureDataset
from ..errors import InputError
from .bpnn import ACTIVATIONS

__all__ = ["LatticeMLP", "site_occupations", "check_tasks"]


def check_tasks(tasks: dict[str, str]) -> None:
    """Raise unless ``tasks`` maps at least one name to ``"structure"`` or ``"site"``."""
    if not tasks:
        raise InputError("at least one task is needed", field="tasks")
    for name, kind in tasks.items():
        if kind not in ("structure", "site"):
            raise InputError(f"task {name!r}: kind must be 'structure' or 'site', got {kind!r}", field="tasks")


def site_occupations(dataset: StructureDataset, elements: Sequence[str]) -> np.ndarray:
    """One-hot site occupations, shape ``(n_structures, n_sites × n_elements)``.

    All structures must have the same number of atoms, listed in the same site
    order (a fixed lattice, as made by :func:`mlexplore.datasets.lattice_alloy`).
    """
    from ase.data import atomic_numbers

    if len(dataset) == 0:
        raise InputError("no structures", field="dataset")
    n_sites = int(dataset.n_atoms[0])
    if (dataset.n_atoms != n_sites).any():
        raise InputError("a lattice model needs every structure on the same lattice (same number of sites); "
                         f"found {sorted(set(dataset.n_atoms.tolist()))} atoms", field="n_atoms")
    z = dataset.numbers.reshape(len(dataset), n_sites)
    onehot = np.stack([z == atomic_numbers[e] for e in elements], axis=-1)
    missing = ~onehot.any(axis=-1)
    if missing.any():
        s, site = np.argwhere(missing)[0]
        raise InputError(f"site {site} holds element Z={int(z[s, site])}, not one of {list(elements)}",
                         structure=int(s), field="numbers")
    return onehot.reshape(len(dataset), -1).astype(np.float64)


class LatticeMLP(nn.Module):
    """STL or MTL network on fixed-lattice site occupations.

    Parameters
    ----------
    n_sites, elements:
        The lattice size and the elements that can occupy a site.
    tasks:
        ``{name: "structure" | "site"}`` — one entry for STL, several for MTL.
    width:
        Hidden width (000: 200 for CuAu, 300 for FePt).
    activation:
        ``"relu"`` (000), ``"tanh"``, ``"softplus"`` or ``"silu"``.
    """

    def __init__(self, n_sites: int, elements: Sequence[str], tasks: dict[str, str], width: int = 200,
                 activation: str = "relu") -> None:
        super().__init__()
        check_tasks(tasks)
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}", field="activation")
        if width < len(tasks):
            raise InputError(f"width {width} cannot be split between {len(tasks)} tasks", field="width")
        self.n_sites, self.elements, self.tasks = int(n_sites), list(elements), dict(tasks)
        self.width, self.activation = int(width), activation
        act = ACTIVATIONS[activation]
        n_in = self.n_sites * len(self.elements)
        self.shared = nn.Sequential(nn.Linear(n_in, width), act(), nn.Linear(width, width), act())
        self.heads = nn.ModuleDict()
        multi = len(tasks) > 1
        per_task = width // len(tasks)
        for name, kind in self.tasks.items():
            n_out = 1 if kind == "structure" else self.n_sites
            if multi:
                self.heads[name] = nn.Sequential(nn.Linear(width, per_task), act(), nn.Linear(per_task, n_out))
            else:
                self.heads[name] = nn.Linear(width, n_out)
        # target normalisation (set by training): y = raw * scale + shift
        self.register_buffer("target_shift", torch.zeros(len(tasks)))
        self.register_buffer("target_scale", torch.ones(len(tasks)))

    @property
    def is_multitask(self) -> bool:
        return len(self.tasks) > 1

    def config(self) -> dict:
        return {"n_sites": self.n_sites, "elements": self.elements, "tasks": self.tasks, "width": self.width,
                "activation": self.activation}

    def encode(self, dataset: StructureDataset, device=None, dtype=None) -> torch.Tensor:
        """The network input for ``dataset``: one-hot site occupations."""
        return torch.as_tensor(site_occupations(dataset, self.elements), dtype=dtype, device=device)

    def forward(self, occupations: torch.Tensor, normalised: bool = False) -> dict[str, torch.Tensor]:
        """Predictions per task: ``(S,)`` per structure or ``(S · n_sites,)`` per site (structure-major,
        as the atoms of a dataset); physical units unless ``normalised``."""
        h = self.shared(occupations)
        out = {}
        for k, (name, kind) in enumerate(self.tasks.items()):
            y = self.heads[name](h)
            y = y[:, 0] if kind == "structure" else y.reshape(-1)
            out[name] = y if normalised else y * self.target_scale[k] + self.target_shift[k]
        return out

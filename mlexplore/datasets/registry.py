"""The built-in datasets by name: what ``mlexplore datasets`` lists and ``generate_dataset`` builds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .alloys import lattice_alloy
from .gold import gold
from .ising import ising_lattice

__all__ = ["BuiltinDataset", "REGISTRY"]


@dataclass(frozen=True)
class BuiltinDataset:
    """A built-in dataset: its generator, what it is, and which argument sets its size."""

    function: Callable
    description: str
    size_parameter: str


REGISTRY: dict[str, BuiltinDataset] = {
    "lattice_alloy": BuiltinDataset(
        lattice_alloy, "binary alloy (default CuAu) on a fixed FCC 2x2x2 lattice, every composition, "
        "EMT energy / mixing energy / per-atom energies / forces", "n_per_composition"),
    "gold": BuiltinDataset(
        gold, "Au FCC/BCC bulk under strain, (100)/(111) slabs, clusters; rattled; EMT energy, "
        "per-atom energies, forces", "n_per_group"),
    "ising_lattice": BuiltinDataset(
        ising_lattice, "Ising spins on an LxLxL cubic lattice: graph energy E and site values S "
        "(HydraGNN's multi-task test data)", "n_per_composition"),
}

"""A neighbour list kept between the steps of a trajectory: a Verlet list with a skin.

    track = VerletList(skin=1.0)
    for step in trajectory:
        nb = track.neighbors(descriptor, batch)       # rebuilt only when needed
        features = descriptor(**batch, neighbors=nb)

The list is built for the descriptor's reach plus ``skin`` (Å) and kept while no atom has moved
more than ``skin / 2`` from where it was at the build: then no pair can have come from beyond
``reach + skin`` to within ``reach`` (each of its atoms moved at most ``skin / 2``), so the kept
list still holds every pair the descriptor needs — LAMMPS' ``neighbor … bin`` with ``neigh_modify
check yes`` and ASE's ``NeighborList(skin=…)`` follow the same rule. Pairs in the skin add exactly
zero (every term and cutoff function is zero beyond its reach, with zero slope). What depends on the
pair list alone — the dense angular layout, the triplets — is kept with the list, so a reused list
also skips those.

A new list is built when the atoms, their elements, the cell, the periodicity, the descriptor or
the precision or device of the positions change, or an atom
moved by more than half the skin, counted in raw coordinates: an atom wrapped back into the cell
has "moved" a cell vector and forces a rebuild, as it must (its image shifts changed).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError
from .neighbors import Neighbors

__all__ = ["VerletList", "DEFAULT_SKIN"]

#: Default skin (Å). The pairs in the skin cost as much in the descriptor as those inside R_c
#: (they are laid out with them, adding zeros), so a wide skin costs more than the searches it saves:
#: with n2p2's gold basis (R_c = 6 Å) at 300 K, velocity-Verlet steps of 2 fs, one core, the best
#: step times were at 0.2–0.4 Å (108 atoms: 11.9–12.5 ms against 13.8 with a new list every step
#: and 19.0 with a 1 Å skin, which holds (7/6)³ ≈ 1.6× the pairs; 864 atoms: 95 against 97 and 159);
#: at 0.3 Å the list is rebuilt every ~10 steps there.
DEFAULT_SKIN = 0.3


class VerletList:
    """A neighbour list reused over the steps of a trajectory while it is valid.

    Parameters
    ----------
    skin:
        Extra distance (Å) beyond the descriptor's reach; the list is rebuilt once an atom has
        moved more than ``skin / 2``. 0 rebuilds it at every call (the exact list each step).

    Attributes
    ----------
    builds, calls:
        How many lists were built, and for how many calls (``calls − builds`` were reused).
    """

    def __init__(self, skin: float = DEFAULT_SKIN) -> None:
        if not (isinstance(skin, (int, float)) and 0 <= skin < float("inf")):
            raise InputError(f"skin must be a distance ≥ 0 Å, got {skin!r}", field="skin")
        self.skin = float(skin)
        self.builds = 0
        self.calls = 0
        self._list: Neighbors | None = None
        self._key: tuple | None = None
        self._reference: torch.Tensor | None = None
        self._armed: Any = None

    def reset(self) -> None:
        """Forget the kept list: the next call builds a new one."""
        self._list = self._key = self._reference = self._armed = None

    def _key_of(self, descriptor, batch: dict[str, torch.Tensor], min_distance: Any) -> tuple:
        positions = batch["positions"]
        return (id(descriptor), descriptor.neighbor_cutoff, repr(min_distance), positions.dtype, positions.device,
                tuple(batch["n_atoms"].tolist()), batch["numbers"].cpu().numpy().tobytes(),
                batch["cells"].detach().cpu().double().numpy().tobytes(), batch["pbc"].cpu().numpy().tobytes())

    def needs_build(self, descriptor, batch: dict[str, torch.Tensor], min_distance: Any = None) -> bool:
        """True when the next :meth:`neighbors` call will build a new list."""
        if self._list is None or self._key != self._key_of(descriptor, batch, min_distance):
            return True
        if self.skin == 0:
            return True
        moved = (batch["positions"].detach() - self._reference).pow(2).sum(dim=1).max()
        return bool(moved > (self.skin / 2) ** 2)

    def neighbors(self, descriptor, batch: dict[str, torch.Tensor], min_distance: Any = None,
                  first_structure: int = 0) -> Neighbors:
        """The list for ``batch`` (a :meth:`SymmetryFunctions.prepare` dict) and ``descriptor``:
        the kept one while valid, else a new one from
        :meth:`SymmetryFunctions.neighbor_list` (``min_distance``: its overlap check, armed again
        for every call, so a reused list checks the new distances too)."""
        self.calls += 1
        if self.needs_build(descriptor, batch, min_distance):
            nb = descriptor.neighbor_list(batch, min_distance, first_structure=first_structure, skin=self.skin)
            self._armed = nb.cache.get("overlap_check")
            self._list, self._key = nb, self._key_of(descriptor, batch, min_distance)
            self._reference = batch["positions"].detach().clone()
            self.builds += 1
            return nb
        if self._armed is not None:
            self._list.cache["overlap_check"] = self._armed
        return self._list

    def __repr__(self) -> str:
        return f"VerletList(skin={self.skin} Å; {self.builds} list(s) built for {self.calls} call(s))"

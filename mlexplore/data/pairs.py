"""The one call into vesin's cell list, for the structure checks and the descriptors' neighbour lists.

vesin 0.6 bins an open (non-periodic) structure over its bounding box, and its binning fails
with a floating-point exception that kills the process (a Jupyter kernel dies with it) once the
atoms spread over about 10⁵ Å, the cutoff in a ratio that we measured between 3·10⁴ and 10⁵ Å for
a 1.5 Å cutoff. A structure with an atom that far away is broken, but it must be refused with a
message, not a crash; and the same search is exact for any spread if the open structure is put in a
periodic box larger than its spread plus twice the cutoff (no image can then come within the
cutoff, and every pair keeps the zero shift). That is what :func:`vesin_search` does for open
structures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["vesin_search"]

#: the longest periodic cell vector searched (Å); vesin 0.6 fails with SIGFPE from about 5·10⁵ Å
_MAX_CELL = 1e5


def vesin_search(points: np.ndarray, cell: np.ndarray, pbc: Any, cutoff: float, quantities: str = "ijd",
                 full_list: bool = False) -> tuple[np.ndarray, ...]:
    """vesin's neighbour search of one structure: pairs within ``cutoff`` (Å).

    ``points (n, 3)`` Å, ``cell (3, 3)`` Å (rows), ``pbc`` three booleans (or one). Returns the
    arrays named by ``quantities`` (``i``, ``j``, ``S`` integer cell shifts, ``d``, ``D``) as vesin
    does. Open structures are searched in a periodic box of their spread plus twice the cutoff
    (see the module's docstring), so atoms far apart never crash the search.
    """
    import vesin

    points = np.ascontiguousarray(points, dtype=np.float64)
    periodic = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=full_list)
    if periodic.any():
        lengths = np.linalg.norm(np.asarray(cell, dtype=np.float64), axis=1)
        if not np.isfinite(lengths).all() or (lengths[periodic] > _MAX_CELL).any():
            raise InputError(f"periodic cell vectors of {np.round(lengths, 3).tolist()} Å: non-finite or longer "
                             f"than {_MAX_CELL:g} Å, which vesin's cell list cannot bin (it would kill the process)",
                             field="cell")
        return nl.compute(points=points, box=np.asarray(cell, dtype=np.float64),
                          periodic=[bool(p) for p in periodic], quantities=quantities)
    if len(points) == 0:
        return tuple(np.zeros((0, 3) if q in "SD" else 0, dtype=np.float64 if q in "dD" else np.int64)
                     for q in quantities)
    low = points.min(axis=0)
    spread = float((points.max(axis=0) - low).max())
    box = np.eye(3) * (spread + 2.0 * float(cutoff) + 1.0)
    return nl.compute(points=points - low, box=box, periodic=True, quantities=quantities)

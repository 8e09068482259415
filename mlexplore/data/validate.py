"""Physical sanity checks for datasets read from files.

Readers call :func:`check_dataset` so that a bad file is reported with the
file, the line where the offending structure starts and what is wrong,
instead of failing later deep inside a descriptor or a training loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import numpy as np

from ..errors import InputError
from .dataset import StructureDataset

__all__ = ["check_dataset", "MIN_DISTANCE"]

#: Two atoms closer than this (Å) are taken as a broken structure.
MIN_DISTANCE = 0.1


def _closest_pair(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray,
                  min_distance: float) -> tuple[int, int, float] | None:
    """The first pair of atoms closer than ``min_distance`` (Å), or None."""
    import vesin

    if len(positions) < 2:
        return None
    # vesin bins space by the cutoff: a tiny cutoff makes many bins, so search a
    # comfortable radius and filter afterwards.
    periodic = [bool(p) for p in pbc]
    box = np.array(cell, dtype=np.float64)
    if not any(periodic):
        box = np.zeros((3, 3))
    elif np.abs(np.linalg.det(box)) < 1e-12:
        raise InputError("the cell is singular but the structure is periodic", field="cell")
    nl = vesin.NeighborList(cutoff=max(1.5, 2 * min_distance), full_list=False)
    i, j, d = nl.compute(points=positions, box=box, periodic=periodic if any(periodic) else False,
                         quantities="ijd")
    close = np.flatnonzero(d < min_distance)
    if len(close) == 0:
        return None
    k = close[np.argmin(d[close])]
    return int(i[k]), int(j[k]), float(d[k])


def check_dataset(
    dataset: StructureDataset,
    path: str | PathLike | None = None,
    lines: Sequence[int] | None = None,
    min_distance: float = MIN_DISTANCE,
) -> None:
    """Raise :class:`~mlexplore.errors.InputError` at the first broken structure.

    Checks: finite positions, cells and labels (no NaN/inf); no two atoms
    (periodic images included) closer than ``min_distance`` Å.

    Parameters
    ----------
    dataset:
        The dataset to check.
    path:
        File the dataset came from, named in the error.
    lines:
        Line number (1-based) where each structure starts in ``path``.
    min_distance:
        Smallest allowed interatomic distance in Å.
    """

    def fail(problem: str, s: int, field: str | None) -> None:
        raise InputError(problem, path=path, line=None if lines is None else int(lines[s]),
                         structure=s, field=field)

    struct_of_atom = dataset.structure_index
    for name, arr in (("positions", dataset.positions),) + tuple(dataset.atom_labels.items()):
        if arr.dtype.kind != "f":
            continue
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        if bad.any():
            a = int(np.flatnonzero(bad)[0])
            s = int(struct_of_atom[a])
            fail(f"non-finite value ({arr[a]}) for atom {a - int(dataset.offsets[s])}", s, name)
    for name, arr in (("cell", dataset.cells),) + tuple(dataset.structure_labels.items()):
        if arr.dtype.kind != "f":
            continue
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            fail(f"non-finite value ({arr[s]})", s, name)
    for s in range(len(dataset)):
        sl = dataset.atom_slice(s)
        try:
            pair = _closest_pair(dataset.positions[sl], dataset.cells[s], dataset.pbc[s], min_distance)
        except InputError as exc:
            fail(exc.problem, s, exc.field)
        if pair is not None:
            i, j, d = pair
            fail(f"atoms {i} and {j} are {d:.4f} Å apart (closer than {min_distance} Å: "
                 "overlapping atoms)", s, "positions")

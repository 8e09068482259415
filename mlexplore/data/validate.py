"""Physical sanity checks for structures, from files or from memory.

Two entry points share one core:

- :func:`check_dataset` — what the file readers call, so that a bad file is
  reported with the file, the line where the offending structure starts and
  what is wrong (labels are checked too; the overlap limit is a fixed
  :data:`MIN_DISTANCE` = 0.1 Å by default).
- :func:`check_structures` — what the in-memory entry points call (the
  descriptors' ``compute`` / ``prepare``, :class:`~mlexplore.descriptors.FeatureCache`,
  :meth:`Potential.predict <mlexplore.training.Potential.predict>`,
  :meth:`Potential.calculate <mlexplore.training.Potential.calculate>` and so the
  ASE calculator) on ASE ``Atoms`` or a :class:`StructureDataset`; the overlap
  limit defaults to a fraction :data:`COVALENT_FRACTION` of the sum of the
  two atoms' covalent radii.

Both raise :class:`~mlexplore.errors.InputError` naming the structure and the
atom indices (within the structure) for: non-finite positions, a non-finite
cell, a singular cell on a periodic structure, a size no neighbour search
survives (:data:`MAX_EXTENT`) and overlapping atoms — two atoms, periodic images
included, closer than the minimum distance.

Everything is vectorised over atoms and pairs; the only Python loop is over
structures, one vesin neighbour search each (:func:`mlexplore.data.pairs.vesin_search`)
with a small cutoff (about 1.5 Å: it finds few or no pairs; ~0.2 ms for a
100-atom cell). Code that has the pair distances already — the descriptors'
``compute``, :meth:`Potential.predict` and :meth:`Potential.calculate`, through
:meth:`SymmetryFunctions.neighbor_list <mlexplore.descriptors.SymmetryFunctions.neighbor_list>`
— checks them with :func:`check_pair_distances` instead: no second search.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
from ase.data import chemical_symbols, covalent_radii

from ..errors import InputError
from .dataset import StructureDataset

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["check_dataset", "check_structures", "check_pair_distances", "pair_limits", "check_limit",
           "MIN_DISTANCE", "COVALENT_FRACTION", "OVERLAP_HINT", "MAX_EXTENT"]

#: Two atoms closer than this (Å) are taken as a broken structure by the file readers
#: (:func:`check_dataset`).
MIN_DISTANCE = 0.1

#: Default overlap limit of :func:`check_structures` (``min_distance=None``): two atoms i, j closer
#: than ``COVALENT_FRACTION × (r_i + r_j)``, with r the covalent radii of ``ase.data.covalent_radii``
#: (Å), overlap. Measured over the shipped and generated datasets (``gold``, ``lattice_alloy`` CuAu /
#: AgPd / NiPt, FCC and BCC, rattled 0.1 Å and strained; ``ising_lattice``; ``fept_dft``,
#: ``fe_spin_dft`` and ``data/dft/*.jsonl``) the smallest ``d / (r_i + r_j)`` is 0.74 (a Cu–Cu pair
#: of a rattled CuAu cell, 1.95 Å), 0.81 in the DFT iron data; real bonds rarely go below ~0.77
#: (triple bonds such as N≡N). 0.5 is comfortably below both: Fe–Fe closer than 1.32 Å, Au–Au
#: closer than 1.36 Å or H–H closer than 0.31 Å is refused.
COVALENT_FRACTION = 0.5

#: Appended to the overlap message of the in-memory entry points.
OVERLAP_HINT = " (min_distance=0 switches this check off; min_distance=<Å> sets the limit)"

#: Largest size (Å) of a periodic cell vector, and of the spread of the atoms of a structure periodic
#: in some directions only. vesin dies of a floating-point exception (killing the process) on a box
#: with one edge ≳ 5·10⁵ Å and short others; nothing atomistic is 10⁵ Å (10 µm) across. (Open
#: structures may spread any distance: :func:`mlexplore.data.pairs.vesin_search` boxes them.)
MAX_EXTENT = 1e5

#: vesin bins space by its cutoff: a tiny cutoff makes many bins, so the overlap search uses at
#: least this radius (Å) and filters afterwards.
_SEARCH_RADIUS = 1.5


def check_limit(min_distance: float | None, fraction: float = COVALENT_FRACTION) -> None:
    """Raise :class:`~mlexplore.errors.InputError` unless ``min_distance`` is None or a distance ≥ 0 (Å)
    and ``fraction`` a positive number."""
    if min_distance is not None:
        ok = (isinstance(min_distance, (int, float, np.integer, np.floating)) and not isinstance(min_distance, bool)
              and bool(np.isfinite(min_distance)) and min_distance >= 0)
        if not ok:
            raise InputError(f"min_distance must be a distance ≥ 0 in Å (0: no overlap check) or None "
                             f"(a fraction of the covalent radii), got {min_distance!r}", field="min_distance")
    ok = (isinstance(fraction, (int, float, np.integer, np.floating)) and not isinstance(fraction, bool)
          and bool(np.isfinite(fraction)) and fraction > 0)
    if not ok:
        raise InputError(f"fraction must be a positive number, got {fraction!r}", field="fraction")


def pair_limits(z_i: np.ndarray, z_j: np.ndarray, min_distance: float | None = None,
                fraction: float = COVALENT_FRACTION) -> np.ndarray:
    """The smallest allowed distance (Å) of each pair of atoms with atomic numbers ``z_i``, ``z_j``:
    ``min_distance`` for every pair, or with ``min_distance=None``
    ``fraction × (r_cov(z_i) + r_cov(z_j))`` (``ase.data.covalent_radii``, Å)."""
    z_i, z_j = np.asarray(z_i), np.asarray(z_j)
    if min_distance is not None:
        return np.full(np.broadcast(z_i, z_j).shape, float(min_distance))
    return fraction * (covalent_radii[z_i] + covalent_radii[z_j])


def _largest_limit(numbers: np.ndarray, min_distance: float | None, fraction: float) -> float:
    """The largest pair limit (Å) among atoms of ``numbers``: what a neighbour search must reach."""
    if min_distance is not None:
        return float(min_distance)
    if len(numbers) == 0:
        return 0.0
    return float(2 * fraction * covalent_radii[np.asarray(numbers)].max())


def _limit_words(z_i: int, z_j: int, limit: float, min_distance: float | None, fraction: float) -> str:
    if min_distance is not None:
        return f"{limit:g} Å"
    a, b = chemical_symbols[z_i], chemical_symbols[z_j]
    return f"{limit:.3f} Å = {fraction:g} × (r_cov({a}) + r_cov({b}))"


def check_pair_distances(
    numbers: np.ndarray,
    offsets: np.ndarray,
    centers: np.ndarray,
    neighbors: np.ndarray,
    distances: np.ndarray,
    shifts: np.ndarray | None = None,
    min_distance: float | None = None,
    fraction: float = COVALENT_FRACTION,
    *,
    path: str | PathLike | None = None,
    lines: Sequence[int] | None = None,
    first_structure: int = 0,
    hint: str = "",
) -> None:
    """Raise :class:`~mlexplore.errors.InputError` if any of the given pairs overlaps, from pair
    distances computed already (e.g. by a neighbour list).

    Parameters
    ----------
    numbers:
        Atomic numbers of all atoms of the batch, flat, ``(N,)``.
    offsets:
        Index of each structure's first atom, with the total at the end, ``(n + 1,)``
        (:attr:`StructureDataset.offsets`).
    centers, neighbors, distances:
        Flat atom indices of the pairs ``(P,)`` and their distances ``(P,)`` in Å; a pair may
        appear in both directions. Only pairs closer than the limit matter, so any list that
        reaches past the largest limit will do.
    shifts:
        Integer cell shifts of the neighbour image ``(P, 3)``, to say when a pair is across a
        periodic boundary; optional.
    min_distance, fraction:
        The limit (Å) of :func:`pair_limits`; ``min_distance=0`` checks nothing.
    path, lines, first_structure:
        Where the batch came from, for the message: a file, the line of each structure, and the
        index of the batch's first structure in the caller's numbering.
    hint:
        Appended to the message (e.g. how to switch the check off).
    """
    check_limit(min_distance, fraction)
    if min_distance is not None and float(min_distance) == 0:
        return
    centers = np.asarray(centers, dtype=np.int64)
    neighbors = np.asarray(neighbors, dtype=np.int64)
    distances = np.asarray(distances, dtype=np.float64)
    numbers = np.asarray(numbers)
    if len(distances) == 0:
        return
    # only pairs within the largest limit can overlap: the rest is skipped before any lookup
    near = np.flatnonzero(distances < _largest_limit(numbers, min_distance, fraction))
    if len(near) == 0:
        return
    centers, neighbors, distances = centers[near], neighbors[near], distances[near]
    if shifts is not None:
        shifts = np.asarray(shifts)[near]
    limits = pair_limits(numbers[centers], numbers[neighbors], min_distance, fraction)
    close = np.flatnonzero(distances < limits)
    if len(close) == 0:
        return
    offsets = np.asarray(offsets, dtype=np.int64)
    structure = np.searchsorted(offsets, centers[close], side="right") - 1
    first = structure == structure.min()
    pick = close[first][np.argmin(distances[close[first]] / limits[close[first]])]
    s = int(structure.min())
    i, j = int(centers[pick]) - int(offsets[s]), int(neighbors[pick]) - int(offsets[s])
    d, lim = float(distances[pick]), float(limits[pick])
    image = shifts is not None and bool(np.any(np.asarray(shifts)[pick] != 0))
    words = _limit_words(int(numbers[centers[pick]]), int(numbers[neighbors[pick]]), lim, min_distance, fraction)
    if i == j:
        what = f"atom {i} is {d:.4f} Å from its own periodic image"
    else:
        i, j = min(i, j), max(i, j)
        what = f"atoms {i} and {j} are {d:.4f} Å apart" + (" (through a periodic image)" if image else "")
    s_out = s + int(first_structure)
    raise InputError(f"{what}, closer than {words}: overlapping atoms{hint}", path=path,
                     line=None if lines is None else int(lines[s]), structure=s_out, field="positions")


def _plane_spacings(cells: np.ndarray) -> np.ndarray:
    """Distance (Å) between neighbouring lattice planes along each cell vector, ``(n, 3)``:
    ``V / |a_j × a_k|`` (0 for a singular cell)."""
    cross = np.stack([np.cross(cells[:, 1], cells[:, 2]), np.cross(cells[:, 2], cells[:, 0]),
                      np.cross(cells[:, 0], cells[:, 1])], axis=1)
    area = np.linalg.norm(cross, axis=2)
    vol = np.abs(np.linalg.det(cells))[:, None]
    return np.where(area > 0, vol / np.where(area > 0, area, 1.0), 0.0)


def _geometry(
    dataset: StructureDataset,
    min_distance: float | None,
    fraction: float,
    path: str | PathLike | None = None,
    lines: Sequence[int] | None = None,
    hint: str = "",
    overlaps: bool = True,
) -> None:
    """The shared core: finite positions and cells, no singular periodic cell, a sane size, no
    overlaps."""

    def fail(problem: str, s: int, field: str) -> None:
        raise InputError(problem, path=path, line=None if lines is None else int(lines[s]),
                         structure=s, field=field)

    offsets = dataset.offsets
    pos = dataset.positions
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        a = int(np.flatnonzero(bad)[0])
        s = int(np.searchsorted(offsets, a, side="right") - 1)
        fail(f"non-finite position {tuple(float(x) for x in pos[a])} for atom {a - int(offsets[s])}",
             s, "positions")
    cells = dataset.cells
    bad = ~np.isfinite(cells.reshape(len(cells), -1)).all(axis=1)
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        fail(f"non-finite cell {cells[s].tolist()} (Å)", s, "cell")
    pbc = dataset.pbc
    periodic = pbc.any(axis=1)
    if periodic.any():
        det = np.abs(np.linalg.det(cells))
        # zero volume, or so flat that its plane spacing is ~1e-6 of its edges
        scale = np.prod(np.linalg.norm(cells, axis=2), axis=1)
        bad = periodic & ((det < 1e-9) | (det < 1e-6 * scale))
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            fail(f"the cell is singular (volume {det[s]:.3g} Å³) but the structure is periodic "
                 f"(pbc {pbc[s].tolist()})", s, "cell")
        edges = np.where(pbc, np.linalg.norm(cells, axis=2), 0.0)
        bad = edges.max(axis=1) > MAX_EXTENT
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            k = int(np.argmax(edges[s]))
            fail(f"periodic cell vector {k} is {edges[s, k]:.4g} Å long, more than {MAX_EXTENT:g} Å: not an "
                 "atomistic structure", s, "cell")
    filled = np.flatnonzero(dataset.n_atoms > 0)
    mixed = pbc[filled].any(axis=1) & ~pbc[filled].all(axis=1)
    if mixed.any():  # periodic in some directions only: the search box spans the atoms' spread
        first = offsets[filled]
        spread = (np.maximum.reduceat(pos, first, axis=0) - np.minimum.reduceat(pos, first, axis=0)).max(axis=1)
        bad = mixed & (spread > MAX_EXTENT)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            fail(f"the atoms spread over {spread[k]:.4g} Å, more than {MAX_EXTENT:g} Å, in a structure periodic "
                 f"in some directions only (pbc {pbc[filled[k]].tolist()}): not an atomistic structure",
                 int(filled[k]), "positions")
    if not overlaps or (min_distance is not None and float(min_distance) == 0):
        return
    _overlaps(dataset, min_distance, fraction, path, lines, hint)


def _search_box(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, spacing: np.ndarray, cutoff: float,
                self_limit: float) -> tuple[np.ndarray, float | None]:
    """A fully periodic box for vesin with the same periodic images as ``cell`` (Å) under ``pbc``,
    and the length of a lattice vector shorter than ``self_limit`` (an atom on its own image) or None.

    vesin needs many images where lattice planes are close (a skewed cell) and crawls on partly
    periodic structures with large extents; so a skewed cell is Minkowski-reduced (the same
    lattice), and non-periodic directions become periodic ones too long to make any image pair
    (the atoms' spread along them plus twice the search radius ``cutoff``).
    """
    box = np.array(cell, dtype=np.float64)
    if (np.where(pbc, spacing, np.inf) < cutoff).any():  # rare: close lattice planes
        if pbc.sum() > 1:
            from ase.geometry import minkowski_reduce

            box = np.asarray(minkowski_reduce(box, pbc=pbc)[0], dtype=np.float64)
        shortest = float(np.linalg.norm(box[pbc], axis=1).min())
        if shortest < self_limit:
            return box, shortest
    if not pbc.all():
        normals = np.linalg.svd(box[pbc], full_matrices=True)[2][int(pbc.sum()):]
        along = positions @ normals.T
        box[~pbc] = normals * (along.max(axis=0) - along.min(axis=0) + 2 * cutoff + 1.0)[:, None]
    return box, None


def _overlaps(dataset: StructureDataset, min_distance: float | None, fraction: float,
              path: str | PathLike | None, lines: Sequence[int] | None, hint: str) -> None:
    """One small-cutoff vesin search per structure, then one vectorised test over all pairs found."""
    from .pairs import vesin_search

    reach = _largest_limit(dataset.numbers, min_distance, fraction)
    if reach <= 0:
        return
    cutoff = max(_SEARCH_RADIUS, 1.0001 * reach)
    offsets = dataset.offsets
    spacing = _plane_spacings(dataset.cells)
    ii, jj, dd, ss = [], [], [], []
    for s in np.flatnonzero(dataset.n_atoms > 0):  # a loop over structures, not atoms
        start, stop = int(offsets[s]), int(offsets[s + 1])
        pbc = dataset.pbc[s]
        points = dataset.positions[start:stop]
        if not pbc.any():  # vesin_search puts an open structure in a box of its own
            if stop - start < 2:
                continue
            box, periodic = dataset.cells[s], pbc
        else:
            z = dataset.numbers[start:stop]
            self_limits = pair_limits(z, z, min_distance, fraction)
            box, short = _search_box(points, dataset.cells[s], pbc, spacing[s], cutoff, float(self_limits.max()))
            if short is not None:
                if ii:  # a broken structure before this one is reported first
                    check_pair_distances(dataset.numbers, offsets, np.concatenate(ii), np.concatenate(jj),
                                         np.concatenate(dd), np.concatenate(ss), min_distance, fraction, path=path,
                                         lines=lines, hint=hint)
                a = int(np.argmax(self_limits))
                words = _limit_words(int(z[a]), int(z[a]), float(self_limits[a]), min_distance, fraction)
                raise InputError(f"atom {a} is {short:.4f} Å from its own periodic image, closer than {words}: "
                                 f"overlapping atoms{hint}", path=path,
                                 line=None if lines is None else int(lines[s]), structure=int(s), field="positions")
            periodic = True
        i, j, S, d = vesin_search(points, box, periodic, cutoff, quantities="ijSd")
        if len(d):
            ii.append(i.astype(np.int64) + start)
            jj.append(j.astype(np.int64) + start)
            dd.append(d)
            ss.append(S)
    if ii:
        check_pair_distances(dataset.numbers, offsets, np.concatenate(ii), np.concatenate(jj), np.concatenate(dd),
                             np.concatenate(ss), min_distance, fraction, path=path, lines=lines, hint=hint)


def check_structures(
    data: "StructureDataset | Atoms | Sequence[Atoms]",
    min_distance: float | None = None,
    fraction: float = COVALENT_FRACTION,
    *,
    overlaps: bool = True,
    hint: str = "",
) -> StructureDataset:
    """Check structures that come from memory; return them as a :class:`StructureDataset`.

    Raises :class:`~mlexplore.errors.InputError` naming the structure (its index in ``data``)
    and the atoms (their indices within the structure) at the first of: a non-finite position
    (NaN/inf), a non-finite cell, a singular cell (zero volume, or flat to ~1e-6 of its
    edges) on a structure periodic in any direction, and two atoms — periodic images included,
    an atom and its own image too — closer than the minimum distance.

    Parameters
    ----------
    data:
        A dataset, one ``ase.Atoms`` or a sequence of them.
    min_distance:
        The minimum distance in Å for every pair; ``0`` switches the overlap check off (for
        structures that overlap on purpose); None (default): ``fraction × (r_i + r_j)`` with the
        covalent radii r of the two elements (``ase.data.covalent_radii``, Å).
    fraction:
        The fraction of the covalent radii sum for ``min_distance=None``; default
        :data:`COVALENT_FRACTION` (0.5; every shipped dataset is ≥ 0.74).
    overlaps:
        False: check only the finite positions and cells and the periodic cell, not the
        distances (for a caller that checks the distances from its own neighbour list with
        :func:`check_pair_distances`).
    hint:
        Appended to an overlap message.

    Also refused: a periodic cell vector, or the spread of the atoms of a structure periodic in
    some directions only, longer than :data:`MAX_EXTENT` (10⁵ Å), on which vesin would crash.

    Cost: vectorised over atoms and pairs; one vesin neighbour search per structure with a
    ~1.5 Å cutoff (~0.2 ms for a 100-atom cell); ``overlaps=False`` ~20 µs.
    """
    check_limit(min_distance, fraction)
    ds = StructureDataset.coerce(data, "data")
    _geometry(ds, min_distance, fraction, hint=hint, overlaps=overlaps)
    return ds


def check_dataset(
    dataset: StructureDataset,
    path: str | PathLike | None = None,
    lines: Sequence[int] | None = None,
    min_distance: float | None = MIN_DISTANCE,
    fraction: float = COVALENT_FRACTION,
) -> None:
    """Raise :class:`~mlexplore.errors.InputError` at the first broken structure of a file.

    Checks: finite labels (no NaN/inf) and everything :func:`check_structures` checks (finite
    positions and cells, no singular periodic cell, no two atoms — periodic images included —
    closer than ``min_distance`` Å).

    Parameters
    ----------
    dataset:
        The dataset to check.
    path:
        File the dataset came from, named in the error.
    lines:
        Line number (1-based) where each structure starts in ``path``.
    min_distance:
        Smallest allowed interatomic distance in Å (default :data:`MIN_DISTANCE`, 0.1 Å; 0: no
        overlap check; None: ``fraction`` of the covalent radii sum, as :func:`check_structures`).
    fraction:
        See :func:`check_structures`.
    """
    check_limit(min_distance, fraction)

    def fail(problem: str, s: int, field: str | None) -> None:
        raise InputError(problem, path=path, line=None if lines is None else int(lines[s]),
                         structure=s, field=field)

    _geometry(dataset, min_distance, fraction, path=path, lines=lines, overlaps=False)
    struct_of_atom = dataset.structure_index
    for name, arr in dataset.atom_labels.items():
        if arr.dtype.kind != "f":
            continue
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        if bad.any():
            a = int(np.flatnonzero(bad)[0])
            s = int(struct_of_atom[a])
            fail(f"non-finite value ({arr[a]}) for atom {a - int(dataset.offsets[s])}", s, name)
    for name, arr in dataset.structure_labels.items():
        if arr.dtype.kind != "f":
            continue
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            fail(f"non-finite value ({arr[s]})", s, name)
    if min_distance is None or float(min_distance) > 0:
        _overlaps(dataset, min_distance, fraction, path, lines, "")

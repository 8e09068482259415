"""Symmetry functions centred on arbitrary points: descriptors of a real-space grid.

MALA (Ellis et al., Phys. Rev. B 104, 035120 (2021)) learns the local density of states at
each point of a real-space grid from a descriptor of the atoms around that point. Here that
descriptor is the Behler-Parrinello set of a :class:`~.symmetry.SymmetryFunctions` (Behler &
Parrinello, Phys. Rev. Lett. 98, 146401 (2007); Behler, J. Chem. Phys. 134, 074106 (2011)),
evaluated at a point as if the point were a centre with no atom of its own::

    sf = SymmetryFunctions([G2(0.5), G2(1.0, 2.5), G4(0.02, 1, -1)], cutoff=6.0, elements=["Al"])
    r = grid_points(atoms.cell, (18, 18, 18))           # (5832, 3) Å, C order
    X = point_features(sf, r, atoms)                    # (5832, sf.n_features)
    X.reshape(18, 18, 18, -1)                           # the grid again

Same terms, cutoff function, element blocks and column order as the atom-centred features
(:mod:`.symmetry`), and exactly the same numbers: the features are computed by
:meth:`SymmetryFunctions.forward` itself, on a batch whose first rows are the points, with a
pair list in which only the points are centres. Spin terms need a moment at the centre and are
refused. An atom closer to a point than ``exclude_within`` (1e-6 Å) is left out of that point's
sums, as an atom is left out of its own: a point on an atom gets that atom's features (LAMMPS'
``compute sna/grid``, which MALA uses, does the same with 1e-10 Å). As a function of the
point's position the features jump there anyway — a nearby atom's angles turn undefined.

Point-atom search (:func:`point_neighbors`): a cell list in torch, on the features' device.
The atoms are wrapped into the cell, their periodic images within R_c of the cell added, and
the images sorted into cubic bins of side ≥ R_c spanning the points; each point looks at its
27 surrounding bins. Index arithmetic only, no loop over points or atoms; points are searched
and featurised in chunks of ``chunk_size``, so memory stays bounded for millions of points.
(The pair lists of :mod:`.neighbors` take every position as a centre: with the grid points as
extra atoms they would list every point-point pair too — about ten thousand per point on a
0.45 Å grid with R_c = 6 Å, against some fifty atoms.)

Timing (measured once, not asserted; one core of a 2-core CPU shared with other jobs, eager, default
``chunk_size``): 32-atom fcc Al (a = 4.05 Å) on an 18×18×18 grid, R_c = 6 Å, 3 G2 + 3 G4 terms,
~55 atoms per point: 0.7–0.8 s in float64 (about 0.2 s of it the search), 0.6 s in float32;
256 atoms on a 45×45×45 grid (91 125 points): 14 s, 0.5 GB peak for the whole process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from ..errors import InputError
from .neighbors import Neighbors
from .symmetry import SymmetryFunctions

__all__ = ["point_features", "point_neighbors", "grid_points"]

#: the 27 bin offsets a point looks at
_OFFSETS = torch.tensor([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
#: at most this many bins (a sparse open cluster spread far gets larger bins instead)
_MAX_BINS = 1 << 21


def grid_points(cell: Any, shape: Sequence[int], device: Any = "cpu", dtype: torch.dtype = torch.float64,
                ) -> torch.Tensor:
    """The points of a real-space grid of ``shape = (nx, ny, nz)`` over ``cell``, ``(nx·ny·nz, 3)`` Å.

    Row ``(i·ny + j)·nz + k`` is ``(i/nx, j/ny, k/nz) · cell``: the C order of a numpy array of
    that shape, as GPAW's periodic real-space arrays (and ``calc.get_pseudo_density()``, whose
    non-periodic directions are zero-padded to start at the cell's face) lay it out, so
    ``point_features(...).reshape(nx, ny, nz, -1)`` lines up with such an array. (GPAW's unpadded
    arrays of a non-periodic direction, ``pad=False``, hold N − 1 points starting at index 1:
    point ``i`` is then at ``(i + 1)/N``.)

    ``cell``: ``(3, 3)`` Å, rows the cell vectors (an ASE ``Cell`` or ``atoms.cell`` will do).
    """
    c = _cell(cell)
    if (isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 3
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in shape)):
        raise InputError(f"shape must be three positive integers (nx, ny, nz), got {shape!r}", field="shape")
    axes = [torch.arange(int(n), dtype=torch.float64, device=device) / int(n) for n in shape]
    frac = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    return (frac @ torch.as_tensor(c, device=device)).to(dtype)


def point_neighbors(points: Any, positions: Any, cell: Any = None, pbc: Any = False, cutoff: float = 6.0,
                    exclude_within: float = 1e-6) -> Neighbors:
    """Every (point, atom image) pair with ``exclude_within ≤ |r| < cutoff`` (Å), sorted by point.

    ``centers`` index the points, ``neighbors`` the atoms (both from 0), and
    ``r = positions[j] − points[i] + shifts · cell`` is the vector from the point to the atom
    image: the shifts (integer, as floats) include the wrapping of the point into the cell, so
    the points may lie anywhere. ``points (P, 3)``, ``positions (A, 3)``, ``cell (3, 3)`` Å;
    ``pbc``: one or three booleans. The search runs in float64 on the device of ``points``.
    """
    pts = _float_tensor(points, "points", None, torch.float64)
    pos = _float_tensor(positions, "positions", pts.device, torch.float64)
    cell_t = torch.zeros((3, 3), dtype=torch.float64) if cell is None else torch.as_tensor(_cell(cell))
    pbc_t = _pbc(pbc)
    cutoff, exclude_within = _distances(cutoff, exclude_within)
    bins = _AtomBins(pos, cell_t.to(pts.device), pbc_t.to(pts.device), cutoff, exclude_within)
    wrapped, shift = bins.wrap(pts)
    bins.span(wrapped)
    return bins.query(wrapped, shift)


def point_features(descriptor: SymmetryFunctions, points: Any, atoms: Atoms | None = None, *,
                   positions: Any = None, numbers: Any = None, cell: Any = None, pbc: Any = None,
                   device: Any = None, dtype: torch.dtype | None = None, chunk_size: int = 2048,
                   exclude_within: float = 1e-6, progress: bool = False) -> torch.Tensor:
    """The descriptor's features centred on every point, ``(P, descriptor.n_features)``.

    Parameters
    ----------
    descriptor:
        The symmetry functions (radial and angular terms only: spin terms need a moment at the
        centre and are an :class:`~mlexplore.errors.InputError`). Its ``neighbor_method`` is not
        used: the points' neighbours come from :func:`point_neighbors`.
    points:
        ``(P, 3)`` Å, anywhere (wrapped into the cell along periodic directions), e.g.
        :func:`grid_points`.
    atoms:
        The structure, or None and ``positions (A, 3)`` Å, ``numbers (A,)``, ``cell (3, 3)`` Å
        (default zeros) and ``pbc`` (one or three booleans, default False).
    device, dtype:
        Where and in what the features are computed; by default those of ``points`` if it is a
        floating-point tensor, else the CPU and float64. The search runs in float64 there.
    chunk_size:
        Points searched and featurised at a time (memory grows linearly with it: some hundred
        candidate pairs per point for a metal at R_c = 6 Å).
    exclude_within:
        Atoms closer than this to a point (Å) are left out of its sums (see the module docstring).
    progress:
        Show a progress bar over the chunks.

    Returns
    -------
    torch.Tensor
        ``(P, n_features)`` in the column order of ``descriptor.feature_names``; differentiable
        with respect to ``points`` and ``positions`` where they require grad (otherwise computed
        without a graph).
    """
    if not isinstance(descriptor, SymmetryFunctions):
        raise InputError(f"expected a SymmetryFunctions, got {type(descriptor).__name__}", field="descriptor")
    if descriptor.spin:
        raise InputError("spin terms need a magnetic moment at the centre, which a point does not have: "
                         f"{[t.label() for t in descriptor.spin]}", field="terms")
    if not (isinstance(chunk_size, (int, np.integer)) and not isinstance(chunk_size, bool) and chunk_size >= 1):
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size!r}", field="chunk_size")
    if atoms is not None:
        given = [n for n, v in (("positions", positions), ("numbers", numbers), ("cell", cell), ("pbc", pbc))
                 if v is not None]
        if given:
            raise InputError(f"pass the structure as atoms or as tensors, not both ({', '.join(given)} given too)",
                             field="atoms")
        if not isinstance(atoms, Atoms):
            raise InputError(f"atoms must be an ase.Atoms, got {type(atoms).__name__}", field="atoms")
        positions, numbers, cell, pbc = atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc
    elif positions is None or numbers is None:
        raise InputError("give the structure: atoms, or positions and numbers", field="positions")
    if device is None:
        device = points.device if isinstance(points, torch.Tensor) else "cpu"
    if dtype is None:
        floating = isinstance(points, torch.Tensor) and points.is_floating_point()
        dtype = points.dtype if floating else torch.float64
    pts64 = _float_tensor(points, "points", device, torch.float64)  # for the search
    pos64 = _float_tensor(positions, "positions", device, torch.float64)
    pts, pos = pts64.to(dtype), pos64.to(dtype)  # for the features (tensors keep their graphs)
    num = torch.as_tensor(np.asarray(numbers) if not isinstance(numbers, torch.Tensor) else numbers, device=device)
    if num.dim() != 1 or num.shape[0] != pos.shape[0] or num.is_floating_point() or num.is_complex():
        raise InputError(f"numbers must be {pos.shape[0]} integer atomic numbers (one per position), got shape "
                         f"{tuple(num.shape)} of {num.dtype}", field="numbers")
    num = num.long()
    if num.numel() and (int(num.min()) < 1 or int(num.max()) > 118):
        raise InputError("atomic numbers must lie in 1 … 118", field="numbers")
    if cell is None:
        cell_t = torch.zeros((3, 3), dtype=dtype, device=device)
    else:  # a (3, 3) tensor keeps its graph
        _cell(cell)
        cell_t = (cell if isinstance(cell, torch.Tensor) else torch.as_tensor(np.asarray(cell, dtype=np.float64))
                  ).to(device=device, dtype=dtype)
    pbc_t = _pbc(False if pbc is None else pbc).to(device)
    cutoff, exclude_within = _distances(descriptor.neighbor_cutoff, exclude_within)
    P, A = pts.shape[0], pos.shape[0]
    if P == 0 or A == 0:
        return torch.zeros((P, descriptor.n_features), dtype=dtype, device=device)
    cell64 = torch.as_tensor(_cell(cell) if cell is not None else np.zeros((3, 3)), device=device)
    bins = _AtomBins(pos64.detach(), cell64, pbc_t, cutoff, exclude_within)
    wrapped, shift = bins.wrap(pts64.detach())
    bins.span(wrapped)
    # the points' own atomic number only has to be one of the descriptor's elements: no pair has
    # a point as its neighbour, so no column depends on it
    filler = atomic_numbers[descriptor.elements[0]] if descriptor.elements else int(num[0])
    cells = cell_t[None]
    pbcs = pbc_t[None]
    grad = torch.is_grad_enabled() and (pts.requires_grad or pos.requires_grad or cell_t.requires_grad)
    starts = range(0, P, int(chunk_size))
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="point features", disable=len(starts) < 2)
    out = []
    with torch.set_grad_enabled(grad):
        for a in starts:
            b = min(a + int(chunk_size), P)
            n = b - a
            nb = bins.query(wrapped[a:b], shift[a:b])
            nb = Neighbors(nb.centers, nb.neighbors + n, nb.shifts.to(dtype), nb.cutoff)
            batch_numbers = torch.cat([torch.full((n,), filler, dtype=num.dtype, device=device), num])
            n_atoms = torch.tensor([n + A], device=device)
            rows = descriptor(torch.cat([pts[a:b], pos]), batch_numbers, cells, pbcs, n_atoms, neighbors=nb)
            out.append(rows[:n])
    return torch.cat(out)


class _AtomBins:
    """The atoms' periodic images near the cell, sorted into cubic bins of side ≥ R_c (float64, Å).

    Made in three steps: the images (``__init__``), the points wrapped (:meth:`wrap`), and the bins
    over the box that holds all points (:meth:`span`); then :meth:`query` finds the pairs of any
    subset of the wrapped points.
    """

    def __init__(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, cutoff: float,
                 exclude_within: float) -> None:
        device = positions.device
        self.cutoff, self.exclude_within = cutoff, exclude_within
        self.pbc = pbc.bool()
        if not bool(torch.isfinite(positions).all()):
            bad = int(torch.nonzero(~torch.isfinite(positions).all(dim=1))[0])
            raise InputError(f"non-finite position for atom {bad}", field="positions")
        if not bool(torch.isfinite(cell).all()):
            raise InputError("non-finite cell (NaN/inf)", field="cell")
        if bool(self.pbc.any()):
            # as for the atom-centred features (neighbors.py): a periodic structure needs three
            # independent cell vectors; those of its open directions set only its fractional coordinates
            volume = float(torch.linalg.det(cell).abs())
            if volume < 1e-9:
                raise InputError("periodic structure with a singular (zero-volume) cell", field="cell")
            normals = torch.stack([torch.linalg.cross(cell[1], cell[2]), torch.linalg.cross(cell[2], cell[0]),
                                   torch.linalg.cross(cell[0], cell[1])])
            spacing = volume / torch.linalg.norm(normals, dim=1)  # between lattice planes, Å
            reach = torch.where(self.pbc, cutoff / spacing, torch.zeros_like(spacing))  # in fractions
            self.cell, self.inverse = cell, torch.linalg.inv(cell)
            wrapped, home = self.wrap(positions)
            # ≥ ceil(reach) images each way (the extra ones are dropped); none along open directions
            reps = torch.where(self.pbc, torch.floor(reach).long() + 1, 0).tolist()
            grid = [torch.arange(-r, r + 1, device=device) for r in reps]
            images = torch.stack(torch.meshgrid(*grid, indexing="ij"), dim=-1).reshape(-1, 3)  # (K, 3)
            frac = (wrapped @ self.inverse)[None] + images[:, None].double()  # (K, A, 3)
            window = (frac >= -reach - 1e-9) & (frac <= 1 + reach + 1e-9)
            near = (window | ~self.pbc).all(dim=2)  # the points lie in [0, 1) along periodic directions
            k, atom = torch.nonzero(near, as_tuple=True)
            self.xyz = wrapped[atom] + images[k].double() @ cell
            self.shift = home[atom] + images[k].double()  # from the atom as given
            self.atom = atom
        else:
            self.cell = self.inverse = None
            self.xyz = positions
            self.shift = torch.zeros_like(positions)
            self.atom = torch.arange(positions.shape[0], device=device)

    def wrap(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points moved into the cell along the periodic directions, and the integer shifts (as
        floats) that did it: ``wrapped = points + shift · cell``."""
        if not bool(torch.isfinite(points).all()):
            bad = int(torch.nonzero(~torch.isfinite(points).all(dim=1))[0])
            raise InputError(f"non-finite coordinates of point {bad}", field="points")
        if self.cell is None:
            return points, torch.zeros_like(points)
        shift = torch.where(self.pbc, -torch.floor(points @ self.inverse), torch.zeros_like(points))
        return points + shift @ self.cell, shift

    def span(self, points: torch.Tensor) -> None:
        """Bins over the box of the (wrapped) points plus R_c on every side; the images outside it
        are dropped, the others sorted by bin."""
        rc = self.cutoff
        self.origin = points.min(dim=0).values - rc
        extent = points.max(dim=0).values + rc - self.origin
        n = torch.clamp(torch.floor(extent / rc), min=1)
        total = float(n.prod())
        if total > _MAX_BINS:  # far-apart points of an open structure: fewer, larger bins
            n = torch.clamp(torch.floor(n / (total / _MAX_BINS) ** (1 / 3)), min=1)
        self.n_bins = n.long()
        self.size = extent / n  # ≥ R_c
        inside = ((self.xyz >= self.origin) & (self.xyz <= self.origin + extent)).all(dim=1)
        xyz, shift, atom = self.xyz[inside], self.shift[inside], self.atom[inside]
        key = self._bin_index(self._bin(xyz))
        order = torch.argsort(key, stable=True)
        self.sorted_xyz, self.sorted_shift, self.sorted_atom = xyz[order], shift[order], atom[order]
        self.counts = torch.bincount(key, minlength=int(self.n_bins.prod()))
        self.first = torch.cumsum(self.counts, 0) - self.counts

    def _bin(self, xyz: torch.Tensor) -> torch.Tensor:
        b = torch.floor((xyz - self.origin) / self.size).long()
        return torch.minimum(b.clamp(min=0), self.n_bins - 1)

    def _bin_index(self, b: torch.Tensor) -> torch.Tensor:
        return (b[..., 0] * self.n_bins[1] + b[..., 1]) * self.n_bins[2] + b[..., 2]

    def query(self, wrapped: torch.Tensor, shift: torch.Tensor) -> Neighbors:
        """The pairs of these wrapped points (centres from 0, in their order) and their shifts."""
        device = wrapped.device
        around = self._bin(wrapped)[:, None] + _OFFSETS.to(device)  # (P, 27, 3)
        valid = ((around >= 0) & (around < self.n_bins)).all(dim=2)
        key = self._bin_index(torch.minimum(around.clamp(min=0), self.n_bins - 1))
        count = torch.where(valid, self.counts[key], torch.zeros_like(key)).reshape(-1)
        start = self.first[key].reshape(-1)
        total = int(count.sum())
        row = torch.repeat_interleave(torch.arange(count.shape[0], device=device), count, output_size=total)
        image = start[row] + torch.arange(total, device=device) - (torch.cumsum(count, 0) - count)[row]
        point = row // _OFFSETS.shape[0]
        vec = self.sorted_xyz[image] - wrapped[point]
        d2 = (vec * vec).sum(dim=1)
        keep = torch.nonzero((d2 < self.cutoff ** 2) & (d2 >= self.exclude_within ** 2)).squeeze(1)
        point, image = point[keep], image[keep]
        return Neighbors(point, self.sorted_atom[image], self.sorted_shift[image] - shift[point], self.cutoff)


def _float_tensor(x: Any, name: str, device: Any, dtype: torch.dtype) -> torch.Tensor:
    """``x`` as a ``(n, 3)`` floating-point tensor (a tensor keeps its graph), or an InputError naming it."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.dim() != 2 or t.shape[1] != 3 or not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise InputError(f"{name} must be an (n, 3) array of coordinates in Å, got shape {tuple(t.shape)}",
                         field=name)
    return t.to(device=t.device if device is None else device, dtype=dtype)


def _cell(cell: Any) -> np.ndarray:
    c = cell.detach().cpu().double().numpy() if isinstance(cell, torch.Tensor) else np.asarray(cell, dtype=np.float64)
    if c.shape != (3, 3) or not np.isfinite(c).all():
        raise InputError(f"cell must be a finite (3, 3) array of cell vectors in Å, got shape {c.shape}",
                         field="cell")
    return c


def _pbc(pbc: Any) -> torch.Tensor:
    p = pbc.detach().cpu().numpy() if isinstance(pbc, torch.Tensor) else np.asarray(pbc)
    if p.shape not in ((), (3,)) or p.dtype.kind not in "bi":
        raise InputError(f"pbc must be one or three booleans, got {pbc!r}", field="pbc")
    return torch.as_tensor(np.broadcast_to(p.astype(bool), (3,)).copy())


def _distances(cutoff: float, exclude_within: float) -> tuple[float, float]:
    if not (isinstance(cutoff, (int, float)) and 0 < cutoff < math.inf):
        raise InputError(f"the cutoff must be a positive distance in Å, got {cutoff!r}", field="cutoff")
    if not (isinstance(exclude_within, (int, float)) and 0 <= exclude_within < cutoff):
        raise InputError(f"exclude_within must be a distance in Å, ≥ 0 and below the cutoff {cutoff}, got "
                         f"{exclude_within!r}", field="exclude_within")
    return float(cutoff), float(exclude_within)

"""Neighbour pairs and triplets for a batch of structures.

A *batch* is many structures concatenated (as in :class:`StructureDataset`):
``positions (N, 3)``, ``numbers (N,)``, ``cells (S, 3, 3)``, ``pbc (S, 3)``,
``batch (N,)`` = structure index of each atom. Pairs are returned as integer
indices into the flat atom arrays plus integer cell shifts, so that pair vectors
``r_ij = x_j − x_i + shift_ij · cell`` can be recomputed from positions that
require grad (forces and stress by autograd).

Two builders, same result (tested against each other):

- ``"vesin"`` — vesin's C++ cell list, structure by structure, on the CPU.
  Periodic, triclinic, any cutoff (many images when R_c exceeds half the cell),
  open clusters.
- ``"torch"`` — all candidate (i, j, image) triples of the batch at once, in
  torch, on any device: no Python loop over structures or atoms; memory is
  bounded by processing structures in chunks. For the small cells typical of
  training sets (≤ a few hundred atoms per structure) this is what makes the
  GPU path end-to-end fast.

Triplets (i, j, k), j < k, both neighbours of i, are built from the pair list by
index arithmetic (:func:`triplets`), again without Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.pairs import vesin_search
from ..errors import InputError

__all__ = ["Neighbors", "neighbor_pairs", "triplets", "pair_vectors"]


@dataclass
class Neighbors:
    """Directed pairs (both i→j and j→i), sorted by centre.

    Attributes
    ----------
    centers, neighbors:
        Atom indices (N-based, flat over the batch), shape ``(P,)``, int64.
    shifts:
        Integer cell shifts of the neighbour image, shape ``(P, 3)``, float
        (same dtype as positions, so it can be multiplied with the cell).
    cutoff:
        The cutoff radius (Å) the list was built for.
    skin:
        The part of ``cutoff`` (Å) beyond the reach it serves: a list built with a skin
        (:class:`~mlexplore.descriptors.VerletList`) holds every pair within ``cutoff − skin``
        as long as no atom has moved more than ``skin / 2`` since it was built; the pairs
        beyond the reach add exactly zero (every term and cutoff function is zero there, with
        zero slope).
    cache:
        Derived data kept while the list is reused: the descriptor stores its
        triplet indices here (they depend on the pair list alone) and, for
        positions that need no gradient, the pair vectors together with the very
        position and cell tensors (and their in-place versions) they came from. A
        panel that re-evaluates terms on the same list rebuilds neither.
    """

    centers: torch.Tensor
    neighbors: torch.Tensor
    shifts: torch.Tensor
    cutoff: float
    skin: float = 0.0
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.centers.shape[0])

    def keep_vectors(self, positions: torch.Tensor, cells: torch.Tensor, vectors: torch.Tensor,
                     distances: torch.Tensor) -> None:
        """Keep the pair vectors ``(P, 3)`` and lengths ``(P,)`` (Å) computed from ``positions``
        and ``cells``, tied to those very tensors and their in-place versions."""
        self.cache["vectors"] = (positions, positions._version, cells, cells._version, vectors, distances)

    def kept_vectors(self, positions: torch.Tensor, cells: torch.Tensor,
                     ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The kept pair vectors and lengths if they came from these very, unchanged
        ``positions`` and ``cells``; None otherwise."""
        kept = self.cache.get("vectors")
        if (kept is not None and kept[0] is positions and kept[1] == positions._version
                and kept[2] is cells and kept[3] == cells._version):
            return kept[4], kept[5]
        return None

    def within(self, distances: torch.Tensor, cutoff: float) -> Neighbors:
        """The list for a smaller cutoff (Å): the pairs with ``distances < cutoff``, in the same
        order, without a new neighbour search. ``distances``: ``|r_ij|`` of every pair, ``(P,)``.
        Kept pair vectors come along, cut the same way."""
        if cutoff > self.cutoff:
            raise InputError(f"a list built for R_c = {self.cutoff} Å cannot serve R_c = {cutoff} Å",
                             field="cutoff")
        keep = distances < cutoff
        sub = Neighbors(self.centers[keep], self.neighbors[keep], self.shifts[keep], float(cutoff))
        kept = self.cache.get("vectors")
        if kept is not None:  # with the versions the parent saw, so staleness carries over too
            sub.cache["vectors"] = kept[:4] + (kept[4][keep], kept[5][keep])
        return sub


def pair_vectors(positions: torch.Tensor, cells: torch.Tensor, batch: torch.Tensor,
                 nb: Neighbors) -> torch.Tensor:
    """``r_ij = x_j − x_i + shift · cell`` for every pair, shape ``(P, 3)``, Å (differentiable)."""
    cell_of_pair = cells[batch[nb.centers]]  # (P, 3, 3)
    # shift · cell as three scaled rows: elementwise, since a batched (1×3)·(3×3) product per
    # pair runs as millions of tiny matrix products (on a GPU it cost more than everything else)
    s = nb.shifts
    offset = s[:, 0:1] * cell_of_pair[:, 0] + s[:, 1:2] * cell_of_pair[:, 1] + s[:, 2:3] * cell_of_pair[:, 2]
    # index_select, not positions[idx]: its backward is an index_add (atomic adds) instead of the
    # sorting accumulate-put that advanced indexing needs
    return positions.index_select(0, nb.neighbors) - positions.index_select(0, nb.centers) + offset


def _check_cell(cells: torch.Tensor, pbc: torch.Tensor) -> None:
    finite = torch.isfinite(cells.reshape(len(cells), -1)).all(dim=1)
    if not bool(finite.all()):  # vesin dies of a floating-point exception on an infinite cell
        s = int(torch.nonzero(~finite)[0])
        raise InputError("non-finite cell (NaN/inf)", structure=s, field="cell")
    det = torch.linalg.det(cells.double())
    bad = pbc.any(dim=1) & (det.abs() < 1e-9)
    if bad.any():
        s = int(torch.nonzero(bad)[0])
        raise InputError("periodic structure with a singular (zero-volume) cell", structure=s, field="cell")


def _vesin_pairs(positions, cells, pbc, n_atoms, cutoff):
    pos = positions.detach().cpu().double().numpy()
    cel = cells.detach().cpu().double().numpy()
    pb = pbc.detach().cpu().numpy()
    counts = n_atoms.detach().cpu().numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ii, jj, ss = [], [], []
    for s, (start, n) in enumerate(zip(starts, counts)):  # loop over structures, not atoms
        if n == 0:
            continue
        i, j, S = vesin_search(pos[start:start + n], cel[s], pb[s], cutoff, quantities="ijS", full_list=True)
        ii.append(i.astype(np.int64) + start)
        jj.append(j.astype(np.int64) + start)
        ss.append(S)
    if not ii:
        return (np.zeros(0, np.int64),) * 2 + (np.zeros((0, 3)),)
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(ss)


def _image_ranges(cells: torch.Tensor, pbc: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Images needed along each cell vector: ceil(R_c / plane spacing), 0 where not periodic."""
    c = cells.double()
    vol = torch.linalg.det(c).abs().clamp(min=1e-12)
    cross = torch.stack([torch.linalg.cross(c[:, 1], c[:, 2]), torch.linalg.cross(c[:, 2], c[:, 0]),
                         torch.linalg.cross(c[:, 0], c[:, 1])], dim=1)
    spacing = vol[:, None] / torch.linalg.norm(cross, dim=2).clamp(min=1e-12)
    n = torch.ceil(cutoff / spacing).long()
    return torch.where(pbc, n, torch.zeros_like(n))


def _torch_pairs(positions, cells, pbc, n_atoms, cutoff, max_candidates=None):
    """All (i, j, image) candidates of consecutive structures at once, ``max_candidates`` at a time
    (default 2²² on a CPU, 2²⁴ on a GPU: about 100 bytes of temporaries per candidate)."""
    device = positions.device
    if max_candidates is None:
        max_candidates = 2 ** 24 if device.type == "cuda" else 2 ** 22
    pos = positions.detach()
    cel = cells.detach().to(pos.dtype)
    S = len(n_atoms)
    reps = _image_ranges(cel, pbc, cutoff)  # (S, 3)
    n_img = ((2 * reps + 1).prod(dim=1))  # images per structure
    starts = torch.cumsum(n_atoms, 0) - n_atoms
    cand_cpu = (n_atoms * n_atoms * n_img).cpu().tolist()  # candidates per structure
    out_i, out_j, out_s = [], [], []
    # chunks of consecutive structures, each within the candidate budget
    bounds = [0]
    total = 0
    for s, c in enumerate(cand_cpu):
        if total + c > max_candidates and s > bounds[-1]:
            bounds.append(s)
            total = 0
        total += c
    bounds.append(S)
    max_rep = int(reps.max()) if S else 0
    grid = torch.arange(-max_rep, max_rep + 1, device=device)
    all_shifts = torch.cartesian_prod(grid, grid, grid) if max_rep > 0 else torch.zeros((1, 3), dtype=torch.long,
                                                                                        device=device)
    for a, b in zip(bounds[:-1], bounds[1:]):
        n_cand = int(sum(cand_cpu[a:b]))  # known on the host: no device round trip
        if n_cand == 0:
            continue
        sl = slice(a, b)
        # the image shifts each structure needs, as (structure, shift) rows
        fits = (all_shifts.abs()[None] <= reps[sl, None, :]).all(dim=2)  # (s, K)
        s_idx, k_idx = torch.nonzero(fits, as_tuple=True)
        s_idx = s_idx + a
        shift_rows = all_shifts[k_idx]  # (M, 3)
        offset_rows = (shift_rows.to(pos.dtype).unsqueeze(1) @ cel[s_idx]).squeeze(1)  # (M, 3) Å, once per row
        home_rows = (shift_rows == 0).all(dim=1)  # the unshifted image, where i = j is the atom itself
        n = n_atoms[s_idx]
        per_row = n * n
        row = torch.repeat_interleave(torch.arange(len(s_idx), device=device), per_row, output_size=n_cand)
        local = torch.arange(n_cand, device=device) - (torch.cumsum(per_row, 0) - per_row)[row]
        nr = n[row]
        base = starts[s_idx][row]
        i = base + local // nr
        j = base + local % nr
        vec = pos[j] - pos[i] + offset_rows[row]
        d2 = (vec * vec).sum(dim=1)
        keep = torch.nonzero((d2 < cutoff * cutoff) & ((i != j) | ~home_rows[row])).squeeze(1)
        out_i.append(i[keep])
        out_j.append(j[keep])
        out_s.append(shift_rows[row[keep]])
    if not out_i:
        z = torch.zeros(0, dtype=torch.long, device=device)
        return z, z, torch.zeros((0, 3), dtype=torch.long, device=device)
    return torch.cat(out_i), torch.cat(out_j), torch.cat(out_s)


def neighbor_pairs(positions: torch.Tensor, cells: torch.Tensor, pbc: torch.Tensor, n_atoms: torch.Tensor,
                   cutoff: float, method: str = "auto") -> Neighbors:
    """All directed pairs with ``|r_ij| < cutoff`` (Å), periodic images included, sorted by centre.

    ``method``: ``"vesin"`` (CPU), ``"torch"`` (any device) or ``"auto"``
    (torch on CUDA, vesin otherwise).
    """
    if cutoff <= 0:
        raise InputError(f"the cutoff must be positive, got {cutoff}", field="cutoff")
    if not torch.isfinite(positions).all():
        bad = int(torch.nonzero(~torch.isfinite(positions).all(dim=1))[0])
        raise InputError(f"non-finite position for atom {bad}", field="positions")
    _check_cell(cells, pbc)
    if method == "auto":
        method = "torch" if positions.device.type == "cuda" else "vesin"
    if method == "vesin":
        i, j, s = _vesin_pairs(positions, cells, pbc, n_atoms, cutoff)
        i = torch.as_tensor(i, device=positions.device)
        j = torch.as_tensor(j, device=positions.device)
        s = torch.as_tensor(np.asarray(s), device=positions.device)
    elif method == "torch":
        i, j, s = _torch_pairs(positions, cells, pbc, n_atoms, cutoff)
    else:
        raise InputError(f"unknown neighbour-list method {method!r}: 'vesin', 'torch' or 'auto'", field="method")
    key = i * (int(positions.shape[0]) + 1) + j
    if not bool((key[1:] >= key[:-1]).all()):  # vesin's lists usually come sorted already
        order = torch.argsort(key, stable=True)
        i, j, s = i[order], j[order], s[order]
    return Neighbors(centers=i, neighbors=j, shifts=s.to(positions.dtype), cutoff=float(cutoff))


def triplets(nb: Neighbors, n_atoms_total: int, pair_mask: torch.Tensor | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of pairs ``(p, q)`` with the same centre and ``p < q``: each unordered
    neighbour pair (j, k) of every centre i exactly once.

    ``pair_mask`` restricts to a subset of the pairs (e.g. a smaller angular cutoff).
    Returns two int64 tensors of pair indices, shape ``(T,)`` each.
    """
    device = nb.centers.device
    idx = torch.arange(len(nb), device=device)
    if pair_mask is not None:
        idx = idx[pair_mask]
    centers = nb.centers[idx]
    counts = torch.bincount(centers, minlength=n_atoms_total)
    first = torch.cumsum(counts, 0) - counts  # position in idx of each centre's first pair
    m = counts[centers]  # pairs of the same centre, for every pair
    rank = torch.arange(len(idx), device=device) - first[centers]
    n_after = m - rank - 1  # partners q > p
    p_local = torch.repeat_interleave(torch.arange(len(idx), device=device), n_after)
    step = torch.arange(int(n_after.sum()), device=device) - torch.repeat_interleave(
        torch.cumsum(n_after, 0) - n_after, n_after)
    q_local = p_local + 1 + step
    if pair_mask is None:  # idx is the identity
        return p_local, q_local
    return idx[p_local], idx[q_local]

"""Statistics of atomic environments over a dataset: pair distances, neighbour angles, and the
peaks of a pair-distance density such as g(r) (the one peak finder of the package: both
:func:`mlexplore.descriptors.rs_at_rdf_modes` and :meth:`mlexplore.analysis.RDF.peaks` use it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.signal import find_peaks

from ..data.dataset import StructureDataset
from ..errors import InputError
from .neighbors import Neighbors, neighbor_pairs, pair_vectors, triplets

__all__ = ["distance_histogram", "neighbor_angles", "density_peaks"]


def _pairs_and_vectors(ds: StructureDataset, cutoff: float) -> tuple[Neighbors, torch.Tensor]:
    """Neighbour pairs within ``cutoff`` (Å) of every structure and their vectors ``(P, 3)``, Å."""
    pos = torch.as_tensor(ds.positions)
    cells = torch.as_tensor(ds.cells)
    n_atoms = torch.as_tensor(ds.n_atoms)
    nb = neighbor_pairs(pos, cells, torch.as_tensor(ds.pbc), n_atoms, cutoff)
    batch = torch.repeat_interleave(torch.arange(len(ds)), n_atoms)
    return nb, pair_vectors(pos, cells, batch, nb)


def distance_histogram(dataset: StructureDataset, r_max: float = 6.0, bin_width: float = 0.02
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Pair-distance density ``h(r) / r²`` (proportional to g(r)) over a dataset: (bin centres Å, values).

    Works on any structures, periodic or not (clusters, molecules): no volume is needed.
    """
    _, vec = _pairs_and_vectors(dataset, r_max)
    d = torch.linalg.norm(vec, dim=1).numpy()
    edges = np.arange(0.0, r_max + bin_width, bin_width)
    h, _ = np.histogram(d, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, h / np.maximum(centres, 1e-9) ** 2


def neighbor_angles(dataset: StructureDataset, cutoff: float) -> np.ndarray:
    """All angles θ_ijk (radians) between pairs of neighbours within ``cutoff`` (Å), for η_θ calibration
    (002 table F.2)."""
    nb, vec = _pairs_and_vectors(dataset, cutoff)
    p, q = triplets(nb, dataset.n_total_atoms)
    a, b = vec[p], vec[q]
    cos = (a * b).sum(1) / (torch.linalg.norm(a, dim=1) * torch.linalg.norm(b, dim=1))
    return torch.arccos(cos.clamp(-1, 1)).numpy()


def density_peaks(r: Any, g: Any, min_height: float | None = None, n_strongest: int | None = None,
                  smoothing: float = 0.0, bin_width: float | None = None) -> np.ndarray:
    """Positions (Å) of the local maxima of a density ``g`` sampled at ``r`` (e.g. g(r)), in order of r.

    Parameters
    ----------
    r, g:
        Bin centres (Å) and the density there, same length.
    min_height:
        Only maxima with ``g ≥ min_height`` (after smoothing); None: all.
    n_strongest:
        Keep only the ``n_strongest`` highest maxima (still returned in order of r).
    smoothing:
        Width σ (Å) of a Gaussian that ``g`` is convolved with first (±4σ, sampled at
        ``bin_width``); 0: none.
    bin_width:
        Spacing of ``r`` (Å) for the smoothing kernel (default: ``r[1] − r[0]``).

    Examples
    --------
    >>> res = rdf(ds, r_max=6.0)                        # mlexplore.analysis.rdf
    >>> density_peaks(res.r, res.g["total"], min_height=1.0)   # the coordination shells, Å
    """
    r = np.asarray(r, dtype=float).reshape(-1)
    values = np.asarray(g, dtype=float).reshape(-1)
    if r.shape != values.shape:
        raise InputError(f"{r.size} positions for {values.size} density values", field="g")
    if n_strongest is not None and n_strongest < 1:
        raise InputError(f"n_strongest must be ≥ 1, got {n_strongest}", field="n_strongest")
    if smoothing < 0:
        raise InputError(f"smoothing must be ≥ 0, got {smoothing}", field="smoothing")
    if smoothing > 0:
        if bin_width is None:
            if r.size < 2:
                raise InputError("smoothing needs at least two bins", field="r")
            bin_width = float(r[1] - r[0])
        x = np.arange(-4 * smoothing, 4 * smoothing + bin_width, bin_width)
        kernel = np.exp(-0.5 * (x / smoothing) ** 2)
        values = np.convolve(values, kernel / kernel.sum(), mode="same")
    idx, _ = find_peaks(values, height=min_height)
    if n_strongest is not None:
        idx = np.sort(idx[np.argsort(values[idx])[::-1][:n_strongest]])
    return r[idx]

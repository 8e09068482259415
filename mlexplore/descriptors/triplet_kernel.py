"""Per-triplet geometry for the angular terms that are evaluated triplet by triplet.

The usual BP angular grids (G4/G5/G9 with integer ζ) are summed on dense
neighbour blocks (:mod:`.angular_blocks`). Non-integer ζ and the Gauss-Fourier
angular families go through an explicit triplet list (:func:`.neighbors.triplets`):
:func:`triplet_geometry` gives cos θ_ijk and the BP radial factors of every
triplet, :func:`triplet_bins` its (centre, neighbour-element pair) bin.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .angular_blocks import safe_sqrt

__all__ = ["triplet_geometry", "triplet_bins"]


def triplet_geometry(vx: torch.Tensor, vy: torch.Tensor, vz: torch.Tensor, d: torch.Tensor,
                     p_idx: torch.Tensor, q_idx: torch.Tensor, rc: torch.Tensor, etas: torch.Tensor,
                     rss: torch.Tensor, family: int, fc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``cos θ_ijk`` ``(T,)`` and the radial factors with cutoffs, one ``(T,)`` tensor per
    channel, of every triplet.

    ``vx, vy, vz, d``: pair vectors by component and their lengths (Å), ``(P,)``;
    ``p_idx, q_idx``: the two legs (pair indices) of each triplet, ``(T,)``; ``rc``:
    R_c (Å); ``etas, rss``: channel parameters η (Å⁻²) and r_s (Å, G9 only);
    ``family``: ``angular_blocks.FAMILY_CODES`` (0 = G4, 1 = G5, 2 = G9); ``fc``:
    the cutoff function ``fc(r, rc)``.
    """
    ax, ay, az, dij = vx[p_idx], vy[p_idx], vz[p_idx], d[p_idx]
    bx, by, bz, dik = vx[q_idx], vy[q_idx], vz[q_idx], d[q_idx]
    norm = dij * dik
    nonzero = norm > 0
    cos = torch.where(nonzero, (ax * bx + ay * by + az * bz) / torch.where(nonzero, norm, torch.ones_like(norm)),
                      torch.zeros_like(norm))
    cut = fc(dij, rc) * fc(dik, rc)
    # one 1-D column per channel (a Python loop over the few channels, not over triplets):
    # a compiled kernel then vectorises along the triplets
    rad = []
    if family == 0:  # G4: exp(−η (R_ij² + R_ik² + R_jk²)) f_c(R_jk)
        djk2 = (bx - ax) ** 2 + (by - ay) ** 2 + (bz - az) ** 2
        cut = cut * fc(safe_sqrt(djk2), rc)
        s2 = dij * dij + dik * dik + djk2
        for c in range(etas.shape[0]):
            rad.append(torch.exp(-etas[c] * s2) * cut)
    elif family == 1:  # G5: exp(−η (R_ij² + R_ik²))
        s2 = dij * dij + dik * dik
        for c in range(etas.shape[0]):
            rad.append(torch.exp(-etas[c] * s2) * cut)
    else:  # G9: exp(−η ((R_ij − r_s)² + (R_ik − r_s)²))
        for c in range(etas.shape[0]):
            rad.append(torch.exp(-etas[c] * ((dij - rss[c]) ** 2 + (dik - rss[c]) ** 2)) * cut)
    return cos, rad


def triplet_bins(p_idx: torch.Tensor, q_idx: torch.Tensor, centers: torch.Tensor, pair_element: torch.Tensor,
                 pair_index: torch.Tensor) -> torch.Tensor:
    """The bin of every triplet, ``centre · n_element_pairs + pair_index[e_j, e_k]``, shape ``(T,)``
    with ``centers``/``pair_element`` the centre and neighbour-element block of every pair and
    ``pair_index`` the ``(n_el, n_el)`` table of element-pair blocks."""
    n_pairs = pair_index.shape[0] * (pair_index.shape[0] + 1) // 2
    return centers[p_idx] * n_pairs + pair_index[pair_element[p_idx], pair_element[q_idx]]

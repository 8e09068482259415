"""The Behler-Parrinello angular sums (G4, G5, G9) over triplets, as one fused function.

For integer ζ, ``(1 + λ cos θ)^ζ = Σ_l C(ζ, l) λ^l cos^l θ``, so every G4/G5/G9
term of a family is a fixed linear combination of the *moments*

    m[c, l] = Σ_{j<k} cos^l θ_ijk · exp(−η_c s_c(R_ij, R_ik, R_jk)) · f_c(R_ij) f_c(R_ik) [f_c(R_jk)]

for each distinct radial channel c = (η, r_s) and l = 0 … max ζ, summed per
(centre, neighbour-element pair) bin. :func:`triplet_moments` computes those
moments from the pair list in one pass over the triplets: gathers, distances,
cutoffs, one exp per channel, the powers of cos θ, and the scatter into bins.

Written as a single function of tensors so that ``torch.compile`` can fuse the
whole pass into one loop (no ``(T, C·(L+1))`` temporaries in memory): on CPU this
is what makes the angular terms several times faster than the eager version,
which computes the same numbers op by op. :func:`moments_function` returns the
compiled function when asked and when compilation works on the machine, the
eager one otherwise; both give the same numbers (tested) and both are
differentiable, so forces by autograd work either way.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable

import torch

__all__ = ["triplet_geometry", "triplet_bins", "triplet_moments", "moments_function", "moment_weights", "FAMILY_CODES"]

#: Family codes of the fused function (a static argument of the compiled graph).
FAMILY_CODES = {"G4": 0, "G5": 1, "G9": 2}


def triplet_geometry(vx: torch.Tensor, vy: torch.Tensor, vz: torch.Tensor, d: torch.Tensor,
                     p_idx: torch.Tensor, q_idx: torch.Tensor, rc: torch.Tensor, etas: torch.Tensor,
                     rss: torch.Tensor, family: int, fc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``cos θ_ijk`` ``(T,)`` and the radial factors with cutoffs, one ``(T,)`` tensor per
    channel, of every triplet (arguments as in :func:`triplet_moments`)."""
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
        pos = djk2 > 0
        djk = torch.where(pos, torch.sqrt(torch.where(pos, djk2, torch.ones_like(djk2))), torch.zeros_like(djk2))
        cut = cut * fc(djk, rc)
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
    (arguments as in :func:`triplet_moments`)."""
    n_pairs = pair_index.shape[0] * (pair_index.shape[0] + 1) // 2
    return centers[p_idx] * n_pairs + pair_index[pair_element[p_idx], pair_element[q_idx]]


def triplet_moments(vx: torch.Tensor, vy: torch.Tensor, vz: torch.Tensor, d: torch.Tensor,
                    p_idx: torch.Tensor, q_idx: torch.Tensor, centers: torch.Tensor, pair_element: torch.Tensor,
                    pair_index: torch.Tensor, n_bins: int,
                    rc: torch.Tensor, etas: torch.Tensor, rss: torch.Tensor, family: int, n_powers: int,
                    fc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Angular moments per bin, shape ``(n_bins, C · n_powers)``, column ``c · n_powers + l``.

    Parameters
    ----------
    vx, vy, vz, d:
        Pair vectors r_ij by component and their lengths (Å), shape ``(P,)``.
    p_idx, q_idx:
        The two legs (pair indices) of each triplet, shape ``(T,)``.
    centers, pair_element:
        Centre atom and neighbour-element block of every pair, ``(P,)``.
    pair_index:
        ``(n_el, n_el)`` table: the element-pair block of two neighbour elements. A
        triplet's bin is ``centre · n_element_pairs + pair_index[e_j, e_k]``.
    rc:
        Cutoff radius R_c (Å), a 0-d tensor (so changing it does not recompile).
    etas, rss:
        Channel parameters η (Å⁻²) and r_s (Å, G9 only), shape ``(C,)``.
    family:
        ``FAMILY_CODES``: 0 = G4 (with R_jk), 1 = G5, 2 = G9.
    n_powers:
        max ζ + 1.
    fc:
        The cutoff function ``fc(r, rc)`` (zero at and beyond R_c, so legs longer
        than R_c — kept for other terms — contribute nothing).
    """
    cos, rad = triplet_geometry(vx, vy, vz, d, p_idx, q_idx, rc, etas, rss, family, fc)
    cols = []
    for r in rad:
        cols.append(r)
        for _ in range(n_powers - 1):
            cols.append(cols[-1] * cos)
    values = torch.stack(cols, dim=1)
    key = triplet_bins(p_idx, q_idx, centers, pair_element, pair_index)
    return torch.zeros((n_bins, values.shape[1]), dtype=values.dtype, device=values.device).index_add(0, key, values)


_compiled: dict[str, Callable] = {}
_failed: set[str] = set()
_lock = threading.Lock()


def _compiled_moments(device_type: str) -> Callable:
    with _lock:
        if device_type not in _compiled:
            _compiled[device_type] = torch.compile(triplet_moments, dynamic=True)
        return _compiled[device_type]


def moments_function(compile: bool, device_type: str) -> Callable:
    """The moments function to call: compiled with ``torch.compile`` (``compile=True``),
    falling back — with one warning — to the eager :func:`triplet_moments` when the
    machine cannot compile (no C++ compiler, no Triton on the GPU, …)."""
    if not compile or device_type in _failed:
        return triplet_moments
    fn = _compiled_moments(device_type)

    def guarded(*args, **kwargs):
        if device_type in _failed:
            return triplet_moments(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: use eager
            _failed.add(device_type)
            warnings.warn(f"torch.compile of the angular kernel failed on {device_type} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                          "using the eager version (same numbers, slower)", stacklevel=3)
            return triplet_moments(*args, **kwargs)

    return guarded


def moment_weights(zetas: list[float], lams: list[float], channel_of_term: list[int], n_channels: int,
                   n_powers: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The linear map from moments ``(…, C · n_powers)`` to terms ``(…, n_terms)``:
    ``2^(1−ζ) C(ζ, l) λ^l`` at row ``c · n_powers + l``."""
    W = torch.zeros((n_channels * n_powers, len(zetas)), dtype=dtype, device=device)
    for t, (z, lam, ch) in enumerate(zip(zetas, lams, channel_of_term)):
        z = int(z)
        for l in range(z + 1):
            W[ch * n_powers + l, t] = 2.0 ** (1 - z) * math.comb(z, l) * lam ** l
    return W

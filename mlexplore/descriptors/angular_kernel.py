"""The pure kernel of the Behler-Parrinello angular sums on dense neighbour blocks (the moments of
:mod:`.angular_blocks`, one element pair, every channel and power) and :func:`safe_sqrt`.

Kept apart from the layout code of :mod:`.angular_blocks` so that both it and the written-out
backward pass of :mod:`.angular_backward` can use it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["block_moments", "safe_sqrt"]


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """√x, 0 (with gradient 0, not NaN or inf) where x ≤ 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def block_moments(ax: torch.Tensor, ay: torch.Tensor, az: torch.Tensor, ad: torch.Tensor, aw: torch.Tensor,
                  bx: torch.Tensor, by: torch.Tensor, bz: torch.Tensor, bd: torch.Tensor, bw: torch.Tensor,
                  rc: torch.Tensor, etas: torch.Tensor, family: int, n_powers: int, same: bool,
                  fc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Moments of one element pair, shape ``(N, C · n_powers)``, column ``c · n_powers + l``.

    Parameters
    ----------
    ax, ay, az, ad, aw / bx, by, bz, bd, bw:
        Dense blocks (:func:`dense_blocks`) of the neighbours j of element a and k of
        element b of every centre: unit vectors ``(N, M)``, lengths ``(N, M)`` (Å) and
        the per-leg radial factors ``(C, N, M)`` (channel-major, so the inner loop over k
        reads contiguous memory) — ``exp(−η_c R²) f_c(R)`` (G4, G5) or
        ``exp(−η_c (R − r_s)²) f_c(R)`` (G9), 0 for padding.
    rc:
        Cutoff radius R_c (Å), a 0-d tensor (so changing it does not recompile).
    etas:
        Channel η (Å⁻²), shape ``(C,)`` (G4 only: the R_jk factor).
    family:
        ``FAMILY_CODES``: 0 = G4 (with exp(−η R_jk²) f_c(R_jk)), 1 = G5, 2 = G9.
    n_powers:
        max ζ + 1.
    same:
        a = b: count each unordered pair j < k once (and never j = k).
    fc:
        The cutoff function ``fc(r, rc)``, zero at and beyond R_c.
    """
    cos = ax[:, :, None] * bx[:, None, :] + ay[:, :, None] * by[:, None, :] + az[:, :, None] * bz[:, None, :]
    if family == 0:
        dj, dk = ad[:, :, None], bd[:, None, :]
        djk2 = (dj * dj + dk * dk - 2 * dj * dk * cos).clamp(min=0)
        cut = fc(safe_sqrt(djk2), rc)
    else:
        cut = torch.ones_like(cos)
    if same:
        j = torch.arange(ax.shape[1], device=ax.device)
        cut = torch.where(j[:, None] < j[None, :], cut, torch.zeros_like(cut))
    cols = []
    for c in range(aw.shape[0]):  # a loop over the few radial channels
        r = aw[c, :, :, None] * bw[c, :, None, :] * cut
        if family == 0:
            r = r * torch.exp(-etas[c] * djk2)
        for l in range(n_powers):
            cols.append(r.sum(dim=(1, 2)))
            if l + 1 < n_powers:
                r = r * cos
    return torch.stack(cols, dim=1)


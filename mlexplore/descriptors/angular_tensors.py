"""The G5/G9 angular moments from per-centre tensor sums: linear in the neighbours, not quadratic.

For the families whose triplet weight is a product of one factor per leg — G5 and G9,
``w_c(R_ij) · w_c(R_ik)`` with ``w_c(R) = exp(−η_c (R − r_s)²) f_c(R)`` — the moments of
:mod:`.angular_blocks`

    m[i, (a, b), c, l] = Σ_{j<k} cos^l θ_ijk · w_c(R_ij) w_c(R_ik)

need no loop over neighbour pairs. With unit vectors ``u``, ``cos θ_ijk = u_j · u_k``, and the
multinomial theorem

    (u_j · u_k)^l = Σ_{p+q+r=l} l!/(p! q! r!) (u_jx u_kx)^p (u_jy u_ky)^q (u_jz u_kz)^r,

so with the per-centre sums ``T^a[i, c, pqr] = Σ_{j ∈ a} w_c(R_ij) u_jx^p u_jy^q u_jz^r`` (the
(l+1)(l+2)/2 monomials of each degree l; the same construction as the power spectrum of SOAP and
the "atomic cluster expansion" of Drautz, Phys. Rev. B 99, 014104 (2019), eq. 13–17)

    Σ_{j ∈ a, k ∈ b} cos^l θ_ijk w_c(R_ij) w_c(R_ik) = Σ_{p+q+r=l} l!/(p! q! r!) T^a[i, c, pqr] T^b[i, c, pqr]   (a ≠ b)
    Σ_{j<k ∈ a}       …                              = (Σ_{p+q+r=l} l!/(p! q! r!) T^a[i, c, pqr]² − Σ_{j ∈ a} w_c(R_ij)²) / 2

(the diagonal j = k has cos θ = 1). The cost per centre is ``M · C · K`` multiply-adds
(``M`` neighbours, ``C`` radial channels, ``K = (L+1)(L+2)(L+3)/6`` monomials up to
``L = max ζ``) instead of ``M² · C · (L+1) / 2``: for n2p2's gold basis (``loeffler-au``,
ζ ≤ 4, K = 35, ~80 neighbours in 6 Å) about 6× fewer, and every step is one batched matrix
product, whose backward autograd forms from two more — no per-triplet temporaries to keep
for the forces. G4 weighs each triplet by ``f_c(R_jk)`` too, which couples the legs, so it
stays on the dense neighbour blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .angular_blocks import BlockLayout, dense_blocks

__all__ = ["MAX_TENSOR_POWER", "monomial_exponents", "tensor_moments"]

#: The tensor route is taken up to this max ζ (K = 165 monomials at 8); above it the number of
#: monomials, ~L³/6, outgrows the ~M·L/2 pair products per neighbour of the dense blocks.
MAX_TENSOR_POWER = 8


def monomial_exponents(max_power: int) -> list[tuple[int, int, int, int]]:
    """``(l, p, q, r)`` with ``p + q + r = l`` for l = 0 … max_power, grouped by l."""
    return [(l, p, q, l - p - q) for l in range(max_power + 1) for p in range(l, -1, -1) for q in range(l - p, -1, -1)]


def _monomials(unit: torch.Tensor, max_power: int) -> torch.Tensor:
    """The monomials ``u_x^p u_y^q u_z^r`` of unit vectors ``(…, 3)`` → ``(…, K)``, in the order of
    :func:`monomial_exponents` (without the multinomial factors, which :func:`tensor_moments` puts
    into its l-group sums).

    Degree l from degree l − 1: ``x · (all of them)``, then ``y · (those without x)`` — the last l —
    then ``z · z^(l−1)``: three broadcast products per degree (a gather or a ``cumprod`` costs
    several times more in the backward pass, the latter at the padding's zeros)."""
    x, y, z = unit[..., 0:1], unit[..., 1:2], unit[..., 2:3]
    level = torch.ones_like(x)
    levels = [level]
    for l in range(1, max_power + 1):
        level = torch.cat([x * level, y * level[..., -l:], z * level[..., -1:]], dim=-1)
        levels.append(level)
    return torch.cat(levels, dim=-1)


def _group_sums(max_power: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(K, L+1)``: the multinomial factor ``l!/(p! q! r!)`` of each monomial in the column of its
    degree l, so that ``(T^a · T^b) @ G`` gives ``Σ_{p+q+r=l} l!/(p! q! r!) T^a_pqr T^b_pqr``."""
    exps = monomial_exponents(max_power)
    G = torch.zeros((len(exps), max_power + 1), dtype=dtype, device=device)
    for k, (l, p, q, r) in enumerate(exps):
        G[k, l] = math.factorial(l) / (math.factorial(p) * math.factorial(q) * math.factorial(r))
    return G


def tensor_moments(layout: BlockLayout, vec: torch.Tensor, d: torch.Tensor, rc: torch.Tensor, etas: torch.Tensor,
                   rss: torch.Tensor, family: int, n_powers: int,
                   fc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The moments of :func:`.angular_blocks.angular_moments` for G5 (``family`` 1) and G9 (2),
    shape ``(n_centres, n_pairs, C · n_powers)``, column ``c · n_powers + l``; the same numbers to
    rounding, differentiable.

    ``vec (P, 3)``, ``d (P,)``: pair vectors and lengths (Å); ``rc``: R_c (Å); ``etas``, ``rss``:
    channel η (Å⁻²) and r_s (Å, G9 only), ``(C,)``; ``n_powers``: max ζ + 1; ``fc``: the cutoff
    function.
    """
    if family not in (1, 2):
        raise ValueError("the tensor route covers G5 and G9 only (G4 couples the legs through f_c(R_jk))")
    max_power = n_powers - 1
    nonzero = d > 0
    unit = vec * torch.where(nonzero, 1 / torch.where(nonzero, d, torch.ones_like(d)), torch.zeros_like(d))[:, None]
    dd = d[:, None]
    shift = rss if family == 2 else torch.zeros_like(etas)
    leg = torch.exp(-etas * (dd - shift) ** 2) * fc(dd, rc)  # (P, C)
    n_ch = etas.shape[0]
    n_cols = n_ch * n_powers
    # the per-pair unit vectors and leg factors gathered into the dense blocks; the monomials are formed there
    # (padding: u = 0, w = 0, so it adds nothing)
    blocks = dense_blocks(layout, [(unit, 0.0), (leg, 0.0)])  # (N, M_a, 3), (N, M_a, C) per block
    sums, diag = [], []
    for u, w in blocks:
        mono = _monomials(u, max_power)  # (N, M_a, K)
        sums.append(torch.bmm(w.transpose(1, 2), mono))  # T^a: (N, C, K)
        diag.append((w * w).sum(dim=1))  # Σ_j w², (N, C): the j = k terms (|u| = 1)
    group = _group_sums(max_power, d.dtype, d.device)
    out = []
    n = layout.n_centres
    for a in range(len(blocks)):
        for b in range(a, len(blocks)):
            if layout.widths[a] == 0 or layout.widths[b] == 0:
                out.append(torch.zeros((n, n_cols), dtype=d.dtype, device=d.device))
                continue
            full = ((sums[a] * sums[b]).view(-1, group.shape[0]) @ group).view(n, -1, n_powers)  # (N, C, L+1)
            if a == b:
                full = (full - diag[a][:, :, None]) / 2
            out.append(full.reshape(n, n_cols))
    return torch.stack(out, dim=1)

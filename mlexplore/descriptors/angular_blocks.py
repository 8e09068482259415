"""The Behler-Parrinello angular sums (G4, G5, G9) on dense per-element neighbour blocks.

For integer ζ, ``(1 + λ cos θ)^ζ = Σ_l C(ζ, l) λ^l cos^l θ``, so every G4/G5/G9
term of a family is a fixed linear combination (:func:`moment_weights`) of the
*moments*

    m[i, (a, b), c, l] = Σ_{j<k} cos^l θ_ijk · exp(−η_c s_c(R_ij, R_ik, R_jk)) · f_c(R_ij) f_c(R_ik) [f_c(R_jk)]

for each distinct radial channel c = (η, r_s), l = 0 … max ζ and each unordered
neighbour-element pair (a, b), j of element a and k of element b.

Instead of a list of triplets and a scatter-add into (centre, element pair)
bins — one atomic add per triplet and column — the neighbours of every centre
are laid out as dense, padded rows, one block per neighbour element
(:func:`neighbor_blocks`, :func:`dense_blocks`): ``(N, M_a)`` arrays of the
legs' unit vectors and lengths, and ``(C, N, M_a)`` of their radial factors.
Everything that depends on one leg only (unit vector, cutoff, the leg's
Gaussian) is computed once per pair; padding entries carry a zero radial
factor, so they add nothing and get no gradient. The moments of element pair
(a, b) are then a plain reduction over the ``(N, M_a, M_b)`` products of two
blocks (:func:`block_moments`; for a = b only j < k counts), whose inner loop
holds no transcendental function except, for G4, those of R_jk. Every
operation is a broadcast or a reduction, which ``torch.compile`` fuses into one
vectorised loop per block with no ``(N, M, M)`` temporaries; the eager version
computes the same numbers op by op, in chunks of centres so the temporaries
stay bounded. Both are differentiable, so forces come by autograd either way.
A block is as wide as its widest centre; where neighbour counts vary (alloys,
surfaces) the centres are sorted by their counts and cut into groups, each
padded to its own widths (``CENTRE_GROUPS``), when that saves enough entries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .angular_backward import block_moments_with_backward
from .angular_kernel import block_moments, safe_sqrt
from .compiled import compiled_or_eager

__all__ = ["FAMILY_CODES", "BlockLayout", "neighbor_blocks", "dense_blocks", "block_moments", "moments_function",
           "angular_moments", "moment_weights", "safe_sqrt"]

#: Family codes of the kernel (a static argument of the compiled graph).
FAMILY_CODES = {"G4": 0, "G5": 1, "G9": 2}

#: Same-element blocks at least this wide are split in halves (recursively, SPLIT_DEPTH times) ...
SPLIT_MIN_WIDTH = 16
SPLIT_DEPTH = 3
#: ... and only when the block holds at least this many (centre, j, k) entries: each split adds
#: two kernel calls (~0.3 ms each with the backward pass), which a small batch — an MD step of a
#: few hundred atoms — never earns back from the quarter of the entries it saves.
SPLIT_MIN_ENTRIES = 1 << 17

#: Centres are sorted by their neighbour counts and cut into this many groups, each padded to
#: its own widths only (an alloy's per-element counts vary; one width for all wastes ~2x work).
CENTRE_GROUPS = 4
#: ... when each group gets at least this many centres and the groups need at most this
#: fraction of the padded entries of one block for all.
GROUP_MIN_CENTRES = 32
GROUP_MIN_SAVING = 0.8
#: ... and the block of all centres holds at least this many (centre, j, k) entries (each group
#: is a kernel call of its own: as for SPLIT_MIN_ENTRIES).
GROUP_MIN_ENTRIES = 1 << 17

#: Eager evaluation works through centres in chunks of at most this many (centre, j, k) entries
#: (2 MB of float64 per temporary: measured 20 % faster than 16 MB on the bloore-fe-bp benchmark).
EAGER_CHUNK_ENTRIES = 1 << 18


@dataclass
class BlockLayout:
    """Where every pair goes in the dense per-element neighbour blocks.

    For neighbour element block ``a``: ``pairs[a]`` (pair indices), ``rows[a]``
    (their centre) and ``slots[a]`` (their column, 0 … widths[a] − 1) — the
    pair list scattered into an ``(n_centres, widths[a])`` array.
    """

    n_centres: int
    widths: list[int]
    pairs: list[torch.Tensor]
    rows: list[torch.Tensor]
    slots: list[torch.Tensor]


def neighbor_blocks(centers: torch.Tensor, pair_element: torch.Tensor, n_centres: int, n_blocks: int,
                    keep: torch.Tensor | None = None) -> BlockLayout:
    """The dense layout of a pair list (pairs sorted by centre, as :class:`Neighbors` keeps them).

    ``pair_element``: the neighbour-element block (0 … n_blocks − 1) of every pair;
    ``keep``: an optional boolean mask of the pairs to lay out (e.g. those inside R_c).
    Index arithmetic only, no loop over atoms or pairs.
    """
    device = centers.device
    idx = torch.arange(centers.shape[0], device=device)
    if keep is not None:
        idx = idx[keep]
    key = centers[idx] * n_blocks + pair_element[idx]
    order = torch.argsort(key, stable=True)
    idx, key = idx[order], key[order]
    counts = torch.bincount(key, minlength=n_centres * n_blocks)
    first = torch.cumsum(counts, 0) - counts
    slot = torch.arange(key.shape[0], device=device) - first[key]
    block = key % n_blocks
    widths = counts.view(n_centres, n_blocks).amax(dim=0).tolist() if n_centres else [0] * n_blocks
    pairs, rows, slots = [], [], []
    for a in range(n_blocks):  # a loop over the few neighbour elements
        sel = block == a
        pairs.append(idx[sel])
        rows.append(key[sel] // n_blocks)
        slots.append(slot[sel])
    return BlockLayout(n_centres, [int(w) for w in widths], pairs, rows, slots)


def dense_blocks(layout: BlockLayout, columns: list[tuple[torch.Tensor, float]]) -> list[list[torch.Tensor]]:
    """Per-pair quantities laid out as ``(n_centres, widths[a], …)`` arrays, for every block ``a``.

    ``columns``: ``(values, fill)`` with ``values`` of shape ``(P, …)`` (one entry per pair)
    and the constant for padding entries. Differentiable with respect to the values.
    """
    out = []
    for a, width in enumerate(layout.widths):
        where = (layout.rows[a], layout.slots[a])
        arrays = []
        for src, fill in columns:
            base = torch.full((layout.n_centres, width) + tuple(src.shape[1:]), fill, dtype=src.dtype,
                              device=src.device)
            arrays.append(base.index_put(where, src[layout.pairs[a]]))
        out.append(arrays)
    return out


def _eager_block_moments(*args) -> torch.Tensor:
    """:func:`block_moments` in chunks of centres, so the ``(chunk, M_a, M_b)`` temporaries stay
    bounded. When gradients are needed, each chunk goes through
    :class:`~.angular_backward.BlockMomentsFunction`: its written-out backward pass recomputes the
    chunk's geometry from the saved blocks, so memory does not grow with the batch (autograd would
    keep ≈ 1.5 MB per atom for iron at R_c = 6 Å in float64) and the forces cost about what the
    features do, instead of autograd's replay of every product."""
    ax, bx = args[0], args[5]
    n = ax.shape[0]
    step = max(1, EAGER_CHUNK_ENTRIES // max(1, ax.shape[1] * bx.shape[1]))
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in args[:10])
    kernel = block_moments_with_backward if grad else block_moments
    # the radial factors (positions 4 and 9) are channel-major: their centre axis is the second
    parts = [kernel(*(t[:, s:s + step] if k in (4, 9) else t[s:s + step] for k, t in enumerate(args[:10])), *args[10:])
             for s in range(0, n, step)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def moments_function(compile: bool, device_type: str) -> Callable:
    """The block-moments function to call: :func:`block_moments` compiled with ``torch.compile``
    (``compile=True``; falling back, with one warning, to the eager version when the machine
    cannot compile), or the eager version in chunks of centres."""
    return compiled_or_eager(block_moments, _eager_block_moments, compile, device_type)


def angular_moments(layout: BlockLayout, vec: torch.Tensor, d: torch.Tensor, rc: torch.Tensor, etas: torch.Tensor,
                    rss: torch.Tensor, family: int, n_powers: int,
                    fc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], compile: bool = False,
                    ) -> torch.Tensor:
    """Moments of every centre and unordered neighbour-element pair (a ≤ b, a-major),
    shape ``(n_centres, n_pairs, C · n_powers)``.

    ``vec (P, 3)``, ``d (P,)``: pair vectors and lengths (Å); the rest as in
    :func:`block_moments` (``rss``: channel r_s, Å, used by G9). Everything that
    depends on one leg only — unit vectors, cutoff, the Gaussian of each leg — is
    computed once per pair here, so the kernel's inner loop over (j, k) holds no
    transcendental function except, for G4, those of R_jk.
    """
    nonzero = d > 0
    unit = vec * torch.where(nonzero, 1 / torch.where(nonzero, d, torch.ones_like(d)), torch.zeros_like(d))[:, None]
    dd = d[:, None]
    if family == 2:
        leg = torch.exp(-etas * (dd - rss) ** 2) * fc(dd, rc)
    else:
        leg = torch.exp(-etas * dd * dd) * fc(dd, rc)
    blocks = dense_blocks(layout, [(unit[:, 0].contiguous(), 1.0), (unit[:, 1].contiguous(), 0.0),
                                   (unit[:, 2].contiguous(), 0.0), (d, 0.0), (leg, 0.0)])
    for b in blocks:
        b[4] = b[4].permute(2, 0, 1).contiguous()  # (C, N, M)
    fn = moments_function(compile, d.device.type)
    n_cols = etas.shape[0] * n_powers

    def same(block, depth):
        # j < k within one block: split the columns in halves, so only the two smaller
        # triangles are computed and masked — (j < k in X1) + (X1 × X2) + (j < k in X2) —
        # 3/4 of the entries per level instead of all of them
        width = block[0].shape[1]
        if depth == 0 or width < SPLIT_MIN_WIDTH or block[0].shape[0] * width * width < SPLIT_MIN_ENTRIES:
            return fn(*block, *block, rc, etas, family, n_powers, True, fc)
        h = width // 2
        lo = [t[..., :h].contiguous() for t in block]
        hi = [t[..., h:].contiguous() for t in block]
        return (same(lo, depth - 1) + fn(*lo, *hi, rc, etas, family, n_powers, False, fc)
                + same(hi, depth - 1))

    counts = [torch.bincount(rows, minlength=layout.n_centres) for rows in layout.rows]

    def pair_moments(a, b, ids=None, wa=None, wb=None):
        """Moments of element pair (a, b) for the centres ``ids`` (all when None), their blocks
        cut to widths ``wa``, ``wb`` (the widest of those centres; each centre's real entries
        fill its first slots)."""
        if ids is None:
            wa, wb, ba, bb = layout.widths[a], layout.widths[b], blocks[a], blocks[b]
        else:
            ba, bb = _rows(blocks[a], ids, wa), _rows(blocks[b], ids, wb)
        n = layout.n_centres if ids is None else ids.shape[0]
        if wa == 0 or wb == 0 or (a == b and wa < 2):
            return torch.zeros((n, n_cols), dtype=d.dtype, device=d.device)
        if a == b:
            return same(ba, SPLIT_DEPTH)
        return fn(*ba, *bb, rc, etas, family, n_powers, False, fc)

    groups = CENTRE_GROUPS if layout.n_centres >= CENTRE_GROUPS * GROUP_MIN_CENTRES else 1
    out = []
    for a in range(len(blocks)):
        for b in range(a, len(blocks)):
            if groups > 1 and layout.n_centres * layout.widths[a] * layout.widths[b] >= GROUP_MIN_ENTRIES:
                # centres sorted by (count_a, count_b), cut into groups padded to their own widths —
                # when that saves enough padded entries to pay for the extra gathers and calls
                order = torch.argsort(counts[a] * (int(counts[b].max()) + 1) + counts[b], stable=True)
                split = torch.tensor_split(order, groups)
                widths = torch.stack([torch.stack((counts[a][ids].max(), counts[b][ids].max()))
                                      for ids in split]).tolist()  # one device sync
                padded = sum(len(ids) * wa * wb for ids, (wa, wb) in zip(split, widths))
                if padded <= GROUP_MIN_SAVING * layout.n_centres * layout.widths[a] * layout.widths[b]:
                    parts = [pair_moments(a, b, ids, wa, wb) for ids, (wa, wb) in zip(split, widths)]
                    out.append(torch.cat(parts)[torch.argsort(order)])
                    continue
            out.append(pair_moments(a, b))
    return torch.stack(out, dim=1)


def _rows(block: list[torch.Tensor], ids: torch.Tensor, width: int) -> list[torch.Tensor]:
    """The dense block arrays of the centres ``ids``, cut to the first ``width`` slots
    (the radial factors, channel-major ``(C, N, M)``, are the last array)."""
    return ([t[ids, :width].contiguous() for t in block[:-1]]
            + [block[-1][:, ids, :width].contiguous()])


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

"""System-level magnetic measures (002 eq 4.1–4.4, SPEC §3).

For the spins ``s_i`` of one structure (μ_B; scalars for collinear moments,
taken along z, or 3-vectors):

* ``net_spin_ratio = |Σ s_i| / Σ |s_i|``: 1 for a ferromagnet, 0 for a
  compensated antiferromagnet, ~N^(-1/2) for a paramagnet.
* ``polar_angle_variance``: the variance of the angles θ_i between each spin
  and the net-spin direction: 0 (FM), π²/4 (collinear AFM), π²/4 − 2 ≈ 0.467
  (paramagnet, directions uniform on the sphere). When the net spin vanishes
  the direction of the largest spin is the reference axis.

:func:`moments_by_neighbours` relates each atom's moment to its chemical
environment: e.g. the moment induced on Pt by its Fe neighbours in FePt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["spin_vectors", "net_spin_ratio", "polar_angles", "polar_angle_variance", "magnetic_measures", "moments_by_neighbours"]


def spin_vectors(spins: Any) -> np.ndarray:
    """``(N, 3)`` spin vectors from scalars (collinear, along z) or 3-vectors."""
    if hasattr(spins, "detach"):
        spins = spins.detach().cpu().numpy()
    s = np.asarray(spins, dtype=float)
    if s.ndim == 1:
        s = np.stack([np.zeros_like(s), np.zeros_like(s), s], axis=1)
    if s.ndim != 2 or s.shape[1] != 3 or len(s) == 0:
        raise InputError(f"spins must have shape (N,) or (N, 3) with N ≥ 1, got {np.shape(spins)}", field="spins")
    if not np.isfinite(s).all():
        raise InputError("spins contain NaN or inf", field="spins")
    return s


def net_spin_ratio(spins: Any) -> float:
    """``|Σ s| / Σ |s|`` (0 when every spin is zero)."""
    s = spin_vectors(spins)
    total = np.linalg.norm(s, axis=1).sum()
    return float(np.linalg.norm(s.sum(axis=0)) / total) if total > 0 else 0.0


def polar_angles(spins: Any, tol: float = 1e-9) -> np.ndarray:
    """The angle (rad, 0 … π) of every spin to the net-spin direction (to the largest spin when the
    net spin vanishes), ``(N,)``; 0 for zero spins (length ≤ ``tol``)."""
    s = spin_vectors(spins)
    norms = np.linalg.norm(s, axis=1)
    live = norms > tol
    theta = np.zeros(len(s))
    if not live.any():
        return theta
    net = s[live].sum(axis=0)
    axis = net if np.linalg.norm(net) > tol * norms[live].sum() else s[np.argmax(norms)]
    axis = axis / np.linalg.norm(axis)
    theta[live] = np.arccos(np.clip(s[live] @ axis / norms[live], -1.0, 1.0))
    return theta


def polar_angle_variance(spins: Any, tol: float = 1e-9) -> float:
    """Variance (rad²) of the angles between the spins and the net-spin direction (zero spins skipped)."""
    s = spin_vectors(spins)
    live = np.linalg.norm(s, axis=1) > tol
    return float(polar_angles(s, tol)[live].var()) if live.any() else 0.0


def magnetic_measures(dataset: Any, label: str = "magmoms") -> dict[str, np.ndarray]:
    """Both measures for every structure of a :class:`~mlexplore.StructureDataset` with per-atom
    moments under ``label``: ``{"net_spin_ratio": (S,), "polar_angle_variance": (S,)}``."""
    if label not in dataset.atom_labels:
        raise InputError(f"the dataset has no per-atom {label!r} label (it has {sorted(dataset.atom_labels)})",
                         field=label)
    m = dataset.atom_labels[label]
    ratio, var = [], []
    for s in range(len(dataset)):
        sl = dataset.atom_slice(s)
        ratio.append(net_spin_ratio(m[sl]))
        var.append(polar_angle_variance(m[sl]))
    return {"net_spin_ratio": np.array(ratio), "polar_angle_variance": np.array(var)}


def moments_by_neighbours(dataset: Any, element: str, neighbour: str, cutoff: float, label: str = "magmoms",
                          structures: Any = None) -> dict[str, np.ndarray]:
    """The moment of every ``element`` atom against how many ``neighbour`` atoms lie within
    ``cutoff`` (Å, periodic images included).

    ``structures``: a boolean mask or indices of the structures to use (default all; e.g.
    those whose SCF kept the seeded state). Returns ``{"count": (n,), "moment": (n,) μB,
    "levels": distinct counts, "mean": mean moment per level, "n": atoms per level}``.
    """
    import torch

    from ase.data import atomic_numbers

    from ..descriptors.neighbors import neighbor_pairs

    if label not in dataset.atom_labels:
        raise InputError(f"the dataset has no per-atom {label!r} label (it has {sorted(dataset.atom_labels)})",
                         field=label)
    for name, sym in (("element", element), ("neighbour", neighbour)):
        if sym not in atomic_numbers:
            raise InputError(f"unknown {name} {sym!r}", field=name)
    moments = np.asarray(dataset.atom_labels[label], dtype=float)
    if moments.ndim != 1:  # non-collinear: the length of each moment
        moments = np.linalg.norm(moments.reshape(len(moments), -1), axis=1)
    use = np.ones(len(dataset), bool)
    if structures is not None:
        sel = np.asarray(structures)
        use = sel.astype(bool) if sel.dtype == bool else np.isin(np.arange(len(dataset)), sel)
        if len(use) != len(dataset):
            raise InputError(f"structures mask of {len(use)} entries for {len(dataset)} structures", field="structures")
    nb = neighbor_pairs(torch.as_tensor(dataset.positions), torch.as_tensor(dataset.cells),
                        torch.as_tensor(dataset.pbc), torch.as_tensor(dataset.n_atoms), cutoff)
    i, j = nb.centers.numpy(), nb.neighbors.numpy()
    z = np.asarray(dataset.numbers)
    count = np.bincount(i[z[j] == atomic_numbers[neighbour]], minlength=len(z))
    atoms = (z == atomic_numbers[element]) & np.repeat(use, dataset.n_atoms)
    c, m = count[atoms], moments[atoms]
    levels = np.unique(c)
    return {"count": c, "moment": m, "levels": levels, "mean": np.array([m[c == k].mean() for k in levels]),
            "n": np.array([(c == k).sum() for k in levels])}

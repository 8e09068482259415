"""Choosing symmetry-function parameters (002 §2.3.3, appendix F): where a G2 term peaks, η from an
attenuation, radial and angular grids, R_s at the modes of a dataset's pair-distance density."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from ..data.dataset import StructureDataset
from ..errors import InputError
from .cutoffs import cutoff_function
from .environment import density_peaks, distance_histogram
from .terms import G2, G4, G5

__all__ = ["g2_maximum", "g2_maxima", "eta_from_attenuation", "radial_grid", "angular_grid", "rs_at_rdf_modes"]


def g2_maximum(rs: float, eta: float, cutoff: float = 6.0, cutoff_name: str = "cosine") -> float:
    """Where a single-neighbour G2 term ``exp(−η (r − R_s)²) f_c(r)`` peaks (Å).

    Not at R_s: the falling cutoff pulls the maximum inwards, more so as R_s
    approaches R_c (002 §2.3.3, table 2.1). ``rs``, ``cutoff`` in Å, ``eta`` in Å⁻².
    """
    if eta <= 0 or cutoff <= 0:
        raise InputError("eta and cutoff must be positive", field="eta" if eta <= 0 else "cutoff")
    fc = cutoff_function(cutoff_name)

    def neg(r: float) -> float:
        t = torch.tensor([r], dtype=torch.float64)
        return -float(torch.exp(-eta * (t - rs) ** 2) * fc(t, cutoff))

    return float(minimize_scalar(neg, bounds=(0.0, cutoff), method="bounded", options={"xatol": 1e-10}).x)


def g2_maxima(rs: Sequence[float], eta: Sequence[float], cutoff: float = 6.0, cutoff_name: str = "cosine",
              n_grid: int = 4001) -> np.ndarray:
    """:func:`g2_maximum` for many terms at once (Å), vectorised: the largest value on a grid of
    ``n_grid`` points over [0, R_c], refined by a parabola through it and its two neighbours
    (error ~1e-6 Å for the default grid); fast enough for a redraw on every slider move."""
    rs = np.asarray(rs, dtype=float).reshape(-1)
    eta = np.asarray(eta, dtype=float).reshape(-1)
    if rs.shape != eta.shape:
        raise InputError(f"{rs.size} R_s values for {eta.size} η values", field="eta")
    if (eta <= 0).any() or cutoff <= 0:
        raise InputError("eta and cutoff must be positive", field="eta" if (eta <= 0).any() else "cutoff")
    if rs.size == 0:
        return rs
    r = np.linspace(0.0, cutoff, n_grid)
    fc = cutoff_function(cutoff_name)(torch.as_tensor(r), cutoff).numpy()
    logv = -eta[:, None] * (r[None, :] - rs[:, None]) ** 2 + np.log(np.maximum(fc, 1e-300))[None, :]
    k = np.clip(np.argmax(logv, axis=1), 1, n_grid - 2)
    rows = np.arange(len(rs))
    y0, y1, y2 = logv[rows, k - 1], logv[rows, k], logv[rows, k + 1]
    denom = y0 - 2 * y1 + y2
    shift = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    h = r[1] - r[0]
    return np.clip(r[k] + np.clip(shift, -1, 1) * h, 0.0, cutoff)


def eta_from_attenuation(attenuation: float, distance: float) -> float:
    """η such that ``exp(−η d²) = attenuation`` at displacement ``d`` (002 eq F.1–F.3, F.8–F.13).

    E.g. 1/8 at 1 Å → η = 2.079 Å⁻²; for angles pass radians (→ η_θ).
    """
    if not 0 < attenuation < 1:
        raise InputError(f"attenuation must be between 0 and 1, got {attenuation}", field="attenuation")
    if distance <= 0:
        raise InputError(f"distance must be positive, got {distance}", field="distance")
    return -math.log(attenuation) / distance ** 2


def rs_at_rdf_modes(dataset: StructureDataset, n_modes: int = 6, r_max: float = 6.0, bin_width: float = 0.02,
                    smoothing: float = 0.05) -> np.ndarray:
    """R_s values at the strongest peaks of the dataset's pair-distance density (002 §F.3.2), sorted, Å.

    The density is :func:`~mlexplore.descriptors.distance_histogram`, smoothed by a Gaussian of
    width ``smoothing`` (Å); the peaks come from :func:`~mlexplore.descriptors.density_peaks`.
    """
    centres, g = distance_histogram(dataset, r_max, bin_width)
    modes = density_peaks(centres, g, min_height=0, n_strongest=n_modes, smoothing=smoothing, bin_width=bin_width)
    if len(modes) == 0:
        raise InputError("no peaks in the distance distribution: is r_max too small?", field="r_max")
    return modes


def radial_grid(n: int, r_min: float = 1.0, r_max: float = 5.5, eta: float | None = None,
                mode: str = "shifted", rs: Sequence[float] | None = None) -> list[G2]:
    """A family of ``n`` G2 terms on a grid (the usual recipes of n2p2's parameter generator).

    ``mode="shifted"``: R_s evenly spaced on [r_min, r_max] (Å), η = 1/(2Δ²) for
    spacing Δ unless given (neighbouring Gaussians cross near their half height).
    ``mode="centred"``: R_s = 0 and η_k = 1/(2 r_k²) for r_k evenly spaced on
    [r_min, r_max] (each term decays over its own length). ``rs`` overrides the
    centres (e.g. :func:`rs_at_rdf_modes`), with one η for all.
    """
    if n < 0:
        raise InputError(f"the number of radial terms must be ≥ 0, got {n}", field="n")
    if n == 0:
        return []
    if not 0 <= r_min < r_max:
        raise InputError(f"need 0 ≤ r_min < r_max, got {r_min}, {r_max}", field="r_min")
    if rs is not None:
        centres = [float(x) for x in rs]
        spacing = float(np.min(np.diff(centres))) if len(centres) > 1 else (r_max - r_min)
        return [G2(eta if eta is not None else 1 / (2 * spacing ** 2), c) for c in centres]
    grid = np.linspace(r_min, r_max, n) if n > 1 else np.array([0.5 * (r_min + r_max)])
    if mode == "shifted":
        spacing = (r_max - r_min) / max(n - 1, 1)
        e = eta if eta is not None else 1 / (2 * spacing ** 2)
        return [G2(e, float(c)) for c in grid]
    if mode == "centred":
        grid = np.where(grid > 0, grid, (r_max - r_min) / (2 * n))
        return [G2(eta if eta is not None else float(1 / (2 * c ** 2)), 0.0) for c in grid]
    raise InputError(f"mode must be 'shifted' or 'centred', got {mode!r}", field="mode")


def angular_grid(etas: Sequence[float], zetas: Sequence[float] = (1, 2, 4), lambdas: Sequence[int] = (-1, 1),
                 family: str = "G4") -> list:
    """Every (η, λ, ζ) combination as G4 or G5 terms, in the order η, then λ, then ζ (as 002 A.1).
    ``etas`` in Å⁻²."""
    cls = {"G4": G4, "G5": G5}.get(family)
    if cls is None:
        raise InputError(f"family must be 'G4' or 'G5', got {family!r}", field="family")
    return [cls(float(e), float(z), int(lam)) for e in etas for lam in lambdas for z in zetas]

"""Choosing basis parameters (002 appendix F) and counting parameters (002 eq 3.25–3.28)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.signal import find_peaks

from ..data.dataset import StructureDataset
from ..errors import InputError
from .cutoffs import cutoff_function
from .neighbors import neighbor_pairs, pair_vectors, triplets

__all__ = ["g2_maximum", "eta_from_attenuation", "distance_histogram", "rs_at_rdf_modes", "neighbor_angles",
           "correlation_score", "correlation_search", "tpi", "tpi_classwise"]


def g2_maximum(rs: float, eta: float, cutoff: float = 6.0, cutoff_name: str = "cosine") -> float:
    """Where a single-neighbour G2 term ``exp(−η (r − R_s)²) f_c(r)`` peaks (Å).

    Not at R_s: the falling cutoff pulls the maximum inwards, more so as R_s
    approaches R_c (002 §2.3.3, table 2.1).
    """
    if eta <= 0 or cutoff <= 0:
        raise InputError("eta and cutoff must be positive", field="eta" if eta <= 0 else "cutoff")
    fc = cutoff_function(cutoff_name)

    def neg(r: float) -> float:
        t = torch.tensor([r], dtype=torch.float64)
        return -float(torch.exp(-eta * (t - rs) ** 2) * fc(t, cutoff))

    return float(minimize_scalar(neg, bounds=(0.0, cutoff), method="bounded", options={"xatol": 1e-10}).x)


def eta_from_attenuation(attenuation: float, distance: float) -> float:
    """η such that ``exp(−η d²) = attenuation`` at displacement ``d`` (002 eq F.1–F.3, F.8–F.13).

    E.g. 1/8 at 1 Å → η = 2.079 Å⁻²; for angles pass radians (→ η_θ).
    """
    if not 0 < attenuation < 1:
        raise InputError(f"attenuation must be between 0 and 1, got {attenuation}", field="attenuation")
    if distance <= 0:
        raise InputError(f"distance must be positive, got {distance}", field="distance")
    return -math.log(attenuation) / distance ** 2


def _batch(ds: StructureDataset, cutoff: float):
    pos = torch.as_tensor(ds.positions)
    cells = torch.as_tensor(ds.cells)
    n_atoms = torch.as_tensor(ds.n_atoms)
    nb = neighbor_pairs(pos, cells, torch.as_tensor(ds.pbc), n_atoms, cutoff)
    batch = torch.repeat_interleave(torch.arange(len(ds)), n_atoms)
    return nb, pair_vectors(pos, cells, batch, nb)


def distance_histogram(dataset: StructureDataset, r_max: float = 6.0, bin_width: float = 0.02
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Pair-distance density ``h(r) / r²`` (proportional to g(r)) over a dataset: (bin centres Å, values)."""
    _, vec = _batch(dataset, r_max)
    d = torch.linalg.norm(vec, dim=1).numpy()
    edges = np.arange(0.0, r_max + bin_width, bin_width)
    h, _ = np.histogram(d, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, h / np.maximum(centres, 1e-9) ** 2


def rs_at_rdf_modes(dataset: StructureDataset, n_modes: int = 6, r_max: float = 6.0, bin_width: float = 0.02,
                    smoothing: float = 0.05) -> np.ndarray:
    """R_s values at the strongest peaks of the dataset's pair-distance density (002 §F.3.2), sorted, Å."""
    centres, g = distance_histogram(dataset, r_max, bin_width)
    if smoothing > 0:
        x = np.arange(-4 * smoothing, 4 * smoothing + bin_width, bin_width)
        kernel = np.exp(-0.5 * (x / smoothing) ** 2)
        g = np.convolve(g, kernel / kernel.sum(), mode="same")
    peaks, props = find_peaks(g, height=0)
    if len(peaks) == 0:
        raise InputError("no peaks in the distance distribution: is r_max too small?", field="r_max")
    strongest = peaks[np.argsort(props["peak_heights"])[::-1][:n_modes]]
    return np.sort(centres[strongest])


def neighbor_angles(dataset: StructureDataset, cutoff: float) -> np.ndarray:
    """All angles θ_ijk (radians) between pairs of neighbours within ``cutoff`` (Å), for η_θ calibration
    (002 table F.2)."""
    nb, vec = _batch(dataset, cutoff)
    p, q = triplets(nb, dataset.n_total_atoms)
    a, b = vec[p], vec[q]
    cos = (a * b).sum(1) / (torch.linalg.norm(a, dim=1) * torch.linalg.norm(b, dim=1))
    return torch.arccos(cos.clamp(-1, 1)).numpy()


def correlation_score(features: np.ndarray) -> float:
    """Mean |Pearson correlation| over all pairs of non-constant feature columns (lower is better)."""
    x = np.asarray(features, dtype=float)
    x = x[:, x.std(axis=0) > 1e-12]
    if x.shape[1] < 2:
        return 0.0
    c = np.corrcoef(x, rowvar=False)
    iu = np.triu_indices_from(c, k=1)
    return float(np.abs(c[iu]).mean())


def correlation_search(featurize: Callable[[dict], np.ndarray], space: dict[str, Sequence[float] | tuple],
                       n_trials: int = 30, seed: int = 0) -> tuple[dict, float, list[tuple[dict, float]]]:
    """Random search for the parameters that minimise the features' mutual |correlation| (002 §F.2).

    Parameters
    ----------
    featurize:
        ``params -> features (n_samples, n_features)``, e.g. a function that
        builds a :class:`SymmetryFunctions` from ``params`` and computes a dataset.
    space:
        Per parameter either a list of choices or a ``(low, high)`` tuple
        (sampled uniformly).
    Returns
    -------
    (best params, best score, all (params, score) trials in order)
    """
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n_trials):
        params = {}
        for k, v in space.items():
            if isinstance(v, tuple) and len(v) == 2:
                params[k] = float(rng.uniform(*v))
            else:
                params[k] = v[int(rng.integers(len(v)))]
        trials.append((params, correlation_score(featurize(params))))
    best = min(trials, key=lambda t: t[1])
    return best[0], best[1], trials


def tpi(n_inputs: int, hidden: Sequence[int] = (25, 25), n_outputs: int = 1) -> float:
    """Trainable parameters per input of a dense network (002 eq 3.25)."""
    if n_inputs < 1:
        raise InputError("n_inputs must be ≥ 1", field="n_inputs")
    widths = [n_inputs, *hidden, n_outputs]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])) / n_inputs


def tpi_classwise(n_radial: int, n_angular: int, n_spin: int = 0, hidden: Sequence[int] = (25, 25)) -> float:
    """TPI of the class-wise ("CNN") network as printed in 002 eq 3.27–3.28: a dense block per basis
    class. (The equation counts the first dense layer as ``(i + 1) h1``; the text, which
    :class:`mlexplore.models.BPNN` follows, feeds it the class outputs too, adding ``i · h1``.)"""
    n = n_radial + n_angular + n_spin
    blocks = sum((k + 1) * k for k in (n_radial, n_angular, n_spin) if k)
    return (blocks + tpi(n, hidden) * n) / n

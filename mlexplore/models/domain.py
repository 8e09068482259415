"""What a potential knows: the domain of its training features, and how far outside it an atom is.

A BP potential is an interpolator: on an atom whose features lie outside what it was trained on it
extrapolates, and its prediction can be wrong by any amount with no sign of it. Two measures,
both recorded per element when the model is fitted and saved with it:

- **The range rule** (n2p2's extrapolation warning; Behler, *J. Chem. Phys.* 134, 074106 (2011),
  §IV): every symmetry function's minimum and maximum over the training atoms of the element. An
  atom with a feature outside ``[min, max]`` extrapolates; its *grade* is the largest excess in
  units of that feature's training range, ``max_f (G_f − max_f) / (max_f − min_f)`` (or below the
  minimum), 0 inside the range.
- **The novelty score**: the Mahalanobis distance of the atom's (range-scaled) features from the
  training atoms of its element, ``d = √((x − μ)ᵀ Σ⁻¹ (x − μ))`` with a small ridge on ``Σ``, over
  the largest such distance of a training atom of that element. Inside the range box an atom can
  still be unlike every training atom (a combination of features never seen together); a score
  above 1 says so.

:class:`FeatureDomain` is a ``torch.nn.Module`` of buffers, so it moves, saves and loads with the
model; :meth:`FeatureDomain.assess` is batched over atoms (no Python loop over atoms or features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["FeatureDomain", "DomainAssessment", "RIDGE", "GRADE_TOLERANCE", "domain_state_keys"]

#: ridge added to the (range-scaled) feature covariance before it is inverted (dimensionless)
RIDGE = 1e-6
#: an excess over a feature's range below this fraction of the range is rounding, not extrapolation
#: (the same structure featurised in another batch differs in the last bits)
GRADE_TOLERANCE = 1e-6


@dataclass
class DomainAssessment:
    """Where the atoms of one call lie against the training domain (all arrays per atom, ``(N,)``).

    Attributes
    ----------
    grade:
        Largest excess of a feature over its training range, in units of the range (0 inside).
    feature:
        Index of that feature (−1 inside the range).
    novelty:
        Mahalanobis distance over the largest of the training atoms of the element (≤ 1 for
        the training atoms themselves).
    extrapolating:
        ``grade > 0`` (n2p2's rule) or ``novelty > novelty_limit``.
    """

    grade: np.ndarray
    feature: np.ndarray
    novelty: np.ndarray
    extrapolating: np.ndarray

    @property
    def n_extrapolating(self) -> int:
        return int(self.extrapolating.sum())


class FeatureDomain(nn.Module):
    """Per-element training range, mean and inverse covariance of the descriptor's features.

    Parameters
    ----------
    n_elements, n_features:
        The model's elements and the descriptor's number of features.
    """

    def __init__(self, n_elements: int, n_features: int) -> None:
        super().__init__()
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("minimum", torch.full((n_elements, n_features), -torch.inf))
        self.register_buffer("maximum", torch.full((n_elements, n_features), torch.inf))
        self.register_buffer("mean", torch.zeros(n_elements, n_features))
        self.register_buffer("precision", torch.zeros(n_elements, n_features, n_features))
        self.register_buffer("novelty_scale", torch.ones(n_elements))
        self.register_buffer("n_atoms", torch.zeros(n_elements, dtype=torch.long))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    @torch.no_grad()
    def fit(self, features: torch.Tensor, element: torch.Tensor) -> "FeatureDomain":
        """Record the domain of the training features ``(N, F)``; ``element (N,)`` the model's element
        index of each atom. An element with no training atom keeps an empty range (every atom of it
        extrapolates)."""
        x = features.detach().to(self.mean)
        el = element.to(self.mean.device)
        n_el = self.mean.shape[0]
        for k in range(n_el):  # loop over elements (a handful), not atoms
            xk = x[el == k]
            self.n_atoms[k] = len(xk)
            if len(xk) == 0:
                self.minimum[k] = torch.inf
                self.maximum[k] = -torch.inf
                continue
            self.minimum[k] = xk.min(dim=0).values
            self.maximum[k] = xk.max(dim=0).values
            z = self._scaled(xk, k)
            mu = z.mean(dim=0)
            cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1]) if len(z) > 1 else torch.zeros(
                z.shape[1], z.shape[1], dtype=z.dtype, device=z.device)
            cov = cov + RIDGE * torch.eye(len(mu), dtype=z.dtype, device=z.device)
            self.mean[k] = mu
            self.precision[k] = torch.linalg.pinv(cov, hermitian=True)
            d = self._mahalanobis(z, k)
            self.novelty_scale[k] = max(float(d.max()), 1e-12)
        self.fitted.fill_(True)
        return self

    def _span(self, k: torch.Tensor | int) -> torch.Tensor:
        span = self.maximum[k] - self.minimum[k]
        return torch.where(torch.isfinite(span) & (span > 0), span, torch.ones_like(span))

    def _scaled(self, x: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
        lo = torch.where(torch.isfinite(self.minimum[k]), self.minimum[k], torch.zeros_like(self.minimum[k]))
        return (x - lo) / self._span(k)

    def _mahalanobis(self, z: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
        dz = z - self.mean[k]
        prec = self.precision[k]
        if dz.ndim == 2 and prec.ndim == 2:
            q = torch.einsum("nf,fg,ng->n", dz, prec, dz)
        else:
            q = torch.einsum("nf,nfg,ng->n", dz, prec, dz)
        return q.clamp(min=0).sqrt()

    @torch.no_grad()
    def assess(self, features: torch.Tensor, element: torch.Tensor, novelty_limit: float = 1.5) -> DomainAssessment:
        """Range grade, the feature that sets it, and novelty of every atom (see the module's docstring);
        ``novelty_limit``: the novelty above which an atom counts as extrapolating even inside the
        range box (1 = the most unusual training atom)."""
        x = features.detach().to(self.mean)
        el = element.to(self.mean.device)
        lo, hi = self.minimum[el], self.maximum[el]
        span = self._span(el)
        excess = torch.maximum(x - hi, lo - x) / span
        excess = torch.where(torch.isfinite(excess), excess, torch.full_like(excess, torch.inf))
        excess = torch.nan_to_num(excess, nan=torch.inf)
        excess = torch.where(excess > GRADE_TOLERANCE, excess, torch.zeros_like(excess))
        grade, feature = excess.max(dim=1) if x.shape[1] else (
            torch.zeros(len(x), dtype=x.dtype), torch.zeros(len(x), dtype=torch.long))
        feature = torch.where(grade > 0, feature, torch.full_like(feature, -1))
        z = self._scaled(x, el)
        novelty = self._mahalanobis(z, el) / self.novelty_scale[el]
        novelty = torch.where(self.n_atoms[el] > 0, novelty, torch.full_like(novelty, torch.inf))
        flags = (grade > 0) | (novelty > novelty_limit)
        return DomainAssessment(grade=grade.cpu().numpy(), feature=feature.cpu().numpy(),
                                novelty=novelty.cpu().numpy(), extrapolating=flags.cpu().numpy())

    def describe(self) -> str:
        """One line: how many training atoms per element the domain was fitted on."""
        if not self.is_fitted:
            return "no training domain recorded (a model fitted before mlexplore recorded one)"
        return "training domain of " + ", ".join(f"{int(n)} atoms" for n in self.n_atoms.tolist())


def domain_state_keys(prefix: str = "domain.") -> list[str]:
    """The state-dict keys of a :class:`FeatureDomain` under ``prefix`` (what an older model file lacks)."""
    return [prefix + k for k in FeatureDomain(1, 1).state_dict()]

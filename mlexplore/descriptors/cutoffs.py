"""Cutoff functions f_c(r): 1 at r = 0, smooth, value and slope 0 at r ≥ R_c (SPEC §1).

All take distances in Å as a torch tensor and return a tensor of the same shape;
they are differentiable by autograd, and the three global ones carry their derivative
d f_c/dr as ``.slope(r, rc)``. Select by name with :func:`cutoff_function`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import InputError

__all__ = ["cosine", "polynomial", "tanh3", "fourier_spline", "cutoff_function", "CUTOFFS"]


def cosine(r: torch.Tensor, rc: float) -> torch.Tensor:
    """Behler-Parrinello cosine cutoff, ``0.5 (cos(π r / R_c) + 1)`` (002 eq 2.16; 004 eq 7)."""
    x = r / rc
    return torch.where(x < 1, 0.5 * (torch.cos(math.pi * x.clamp(max=1)) + 1), torch.zeros_like(r))


def polynomial(r: torch.Tensor, rc: float) -> torch.Tensor:
    """n2p2 polynomial cutoff ``((15 − 6x) x − 10) x³ + 1``, x = r/R_c (004 eq 6);
    zero first and second derivative at R_c."""
    x = (r / rc).clamp(max=1)
    return torch.where(r < rc, ((15 - 6 * x) * x - 10) * x ** 3 + 1, torch.zeros_like(r))


def tanh3(r: torch.Tensor, rc: float) -> torch.Tensor:
    """``tanh³(1 − r/R_c)`` normalised to 1 at r = 0 (the ANI/BP variant); zero value,
    slope and curvature at R_c."""
    x = (r / rc).clamp(max=1)
    return torch.where(r < rc, torch.tanh(1 - x) ** 3 / math.tanh(1.0) ** 3, torch.zeros_like(r))


def fourier_spline(r: torch.Tensor, rs: float, eps_down: float, eps_up: float, xi_down: int = 2,
                   xi_up: int = 2) -> torch.Tensor:
    """The "Fourier-spline" window f_B of 002 eq C.2, in its intended symmetric form.

    ``1 − cos^ξ↓(π (r − (R_s − ε↓)) / (2 ε↓))`` on ``[R_s − ε↓, R_s)``,
    ``1 − cos^ξ↑(π (r − (R_s + ε↑)) / (2 ε↑))`` on ``[R_s, R_s + ε↑)``, 0 elsewhere:
    0 at ``R_s ± ε``, 1 at ``R_s``, with zero slope at all three points for even
    ξ ≥ 2. Eq C.2 as printed writes ``R_s − ε↑`` in the upper branch, which
    would not reach 0 at ``R_s + ε↑``; its last case also reads ``R_s + ε↑ > r``
    for ``r ≥ R_s + ε↑``. Both are typos; this is the form the text describes.
    """
    for name, xi in (("xi_down", xi_down), ("xi_up", xi_up)):
        if int(xi) != xi or xi < 2 or xi % 2:
            raise InputError(f"{name} must be an even integer ≥ 2 (002 eq C.3), got {xi}", field=name)
    if eps_down <= 0 or eps_up <= 0:
        raise InputError("eps_down and eps_up must be positive", field="eps")
    lo = rs - eps_down
    hi = rs + eps_up
    u_down = math.pi * (r - lo) / (2 * eps_down)
    u_up = math.pi * (r - hi) / (2 * eps_up)
    down = 1 - torch.cos(u_down.clamp(0, math.pi / 2)) ** int(xi_down)
    up = 1 - torch.cos(u_up.clamp(-math.pi / 2, 0)) ** int(xi_up)
    zero = torch.zeros_like(r)
    return torch.where((r >= lo) & (r < rs), down, torch.where((r >= rs) & (r < hi), up, zero))


def _cosine_slope(r: torch.Tensor, rc: float) -> torch.Tensor:
    """d/dr of :func:`cosine`: ``−(π / 2R_c) sin(π r / R_c)``, 0 at r ≥ R_c."""
    x = r / rc
    return torch.where(x < 1, -0.5 * math.pi / rc * torch.sin(math.pi * x.clamp(max=1)), torch.zeros_like(r))


def _polynomial_slope(r: torch.Tensor, rc: float) -> torch.Tensor:
    """d/dr of :func:`polynomial`: ``−30 x² (1 − x)² / R_c``, 0 at r ≥ R_c."""
    x = (r / rc).clamp(max=1)
    return torch.where(r < rc, -30 * x * x * (1 - x) ** 2 / rc, torch.zeros_like(r))


def _tanh3_slope(r: torch.Tensor, rc: float) -> torch.Tensor:
    """d/dr of :func:`tanh3`: ``−3 tanh²(1 − x) sech²(1 − x) / (R_c tanh³ 1)``, 0 at r ≥ R_c."""
    x = (r / rc).clamp(max=1)
    t = torch.tanh(1 - x)
    return torch.where(r < rc, -3 * t * t * (1 - t * t) / (rc * math.tanh(1.0) ** 3), torch.zeros_like(r))


# each cutoff carries its derivative (the written-out backward pass of the angular sums uses it)
cosine.slope = _cosine_slope  # type: ignore[attr-defined]
polynomial.slope = _polynomial_slope  # type: ignore[attr-defined]
tanh3.slope = _tanh3_slope  # type: ignore[attr-defined]

#: Radial cutoffs selectable by name (the Fourier-spline window is per term, not global).
CUTOFFS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "cosine": cosine, "polynomial": polynomial, "tanh3": tanh3,
}


def cutoff_function(name: str) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """The cutoff function called ``name`` (``cosine``, ``polynomial``, ``tanh3``)."""
    try:
        return CUTOFFS[name]
    except KeyError:
        raise InputError(f"unknown cutoff {name!r}; choose from {', '.join(CUTOFFS)}", field="cutoff") from None

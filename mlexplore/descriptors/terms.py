"""Term specifications: one small frozen dataclass per basis function.

A term says *what* to compute (family and parameters, units Å and Å⁻²);
:class:`~mlexplore.descriptors.SymmetryFunctions` computes all terms of a family
at once. Families:

radial (per neighbour j)
    :class:`G2` (002 eq 2.18; 004 eq 4), :class:`GaussFourierRadial` (002 eq C.5).
angular (per neighbour pair j, k)
    :class:`G4` (002 eq 2.21), :class:`G5`, :class:`G9` (004 eq 5),
    :class:`GaussFourierBiRadial` (C.9), :class:`GaussFourierAngular001` (C.31),
    :class:`GaussFourierAngular002` (C.37).
spin (per atom / per neighbour, from magnetic moments S)
    :class:`SpinSelf`, :class:`SpinPair` (000 and 000b), :class:`SpinGaussSelf`,
    :class:`SpinGaussPair` (001), :class:`SpinLocal` (proposed F1–F6).

Angular convention: the BP terms G4/G5/G9 sum each unordered neighbour pair
(j, k) once (j < k), as n2p2 and dscribe do; the thesis' double sum over
j ≠ k is twice that. The Gauss-Fourier three-body terms keep the thesis'
ordered double sum over j ≠ k, because their (ij) and (ik) radial parts may
differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import InputError

__all__ = ["Term", "G2", "G4", "G5", "G9", "GaussFourierRadial", "GaussFourierBiRadial",
           "GaussFourierAngular001", "GaussFourierAngular002", "SpinSelf", "SpinPair", "SpinGaussSelf",
           "SpinGaussPair", "SpinLocal", "SPIN_PAIR_KINDS", "SPIN_LOCAL_KINDS"]


def _positive(name: str, value: float) -> None:
    if not value > 0 or not math.isfinite(value):
        raise InputError(f"{name} must be positive, got {value}", field=name)


def _non_negative(name: str, value: float) -> None:
    if not value >= 0 or not math.isfinite(value):
        raise InputError(f"{name} must be ≥ 0, got {value}", field=name)


@dataclass(frozen=True)
class Term:
    """Base class. ``family`` is ``"radial"``, ``"angular"`` or ``"spin"``."""

    family = "radial"

    def label(self) -> str:
        """Readable name with parameters, e.g. ``G2(eta=1.5, rs=2)``."""
        def fmt(v):
            if isinstance(v, Term):
                return v.label()
            return f"{v:g}" if isinstance(v, float) else str(v)

        args = ", ".join(f"{f.name}={fmt(getattr(self, f.name))}" for f in fields(self))
        return f"{type(self).__name__}({args})"


# ----------------------------------------------------------------------------- radial
@dataclass(frozen=True)
class G2(Term):
    """``Σ_j exp(−η (R_ij − R_s)²) f_c(R_ij)``; η in Å⁻², R_s in Å."""

    eta: float
    rs: float = 0.0

    def __post_init__(self):
        _positive("eta", self.eta)
        _non_negative("rs", self.rs)


@dataclass(frozen=True)
class GaussFourierRadial(Term):
    """``Σ_j exp(−η (R_ij − R_sr)²) f_B(R_ij)`` with the Fourier-spline window
    f_B centred on ``rs`` (002 eq C.2, C.5). ``rs_gauss`` defaults to ``rs``;
    ``eta = 0`` gives the bare window (used by angular 002)."""

    eta: float
    rs: float
    eps_down: float
    eps_up: float
    xi_down: int = 2
    xi_up: int = 2
    rs_gauss: float | None = None

    def __post_init__(self):
        _non_negative("eta", self.eta)
        _positive("eps_down", self.eps_down)
        _positive("eps_up", self.eps_up)
        for name in ("xi_down", "xi_up"):
            xi = getattr(self, name)
            if int(xi) != xi or xi < 2 or xi % 2:
                raise InputError(f"{name} must be an even integer ≥ 2 (002 eq C.3), got {xi}", field=name)

    @property
    def reach(self) -> float:
        """Largest distance (Å) where the term is non-zero."""
        return self.rs + self.eps_up

    @property
    def centre(self) -> float:
        return self.rs if self.rs_gauss is None else self.rs_gauss


# ----------------------------------------------------------------------------- angular
def _check_kind(kind: str, kinds: dict, what: str) -> None:
    if kind not in kinds:
        raise InputError(f"unknown {what} {kind!r}; choose from {list(kinds)}", field="kind")


def _check_angular(eta: float, zeta: float, lam: float) -> None:
    _non_negative("eta", eta)
    if zeta < 1:
        raise InputError(f"zeta must be ≥ 1, got {zeta}", field="zeta")
    if lam not in (-1, 1, -1.0, 1.0):
        raise InputError(f"lambda must be −1 or +1, got {lam}", field="lambda")


@dataclass(frozen=True)
class _BPAngular(Term):
    """Shared parameters of the BP angular terms: η (Å⁻²), ζ ≥ 1, λ = ±1."""

    family = "angular"
    eta: float
    zeta: float
    lam: float

    def __post_init__(self):
        _check_angular(self.eta, self.zeta, self.lam)


@dataclass(frozen=True)
class G4(_BPAngular):
    """``2^(1−ζ) Σ_{j<k} (1 + λ cos θ_ijk)^ζ exp(−η (R_ij² + R_ik² + R_jk²)) f_c(R_ij) f_c(R_ik) f_c(R_jk)``."""


@dataclass(frozen=True)
class G5(_BPAngular):
    """``2^(1−ζ) Σ_{j<k} (1 + λ cos θ_ijk)^ζ exp(−η (R_ij² + R_ik²)) f_c(R_ij) f_c(R_ik)``."""


@dataclass(frozen=True)
class G9(_BPAngular):
    """n2p2's shifted G5 (004 eq 5): ``2^(1−ζ) Σ_{j<k} (1 + λ cos θ)^ζ
    exp(−η ((R_ij − r_s)² + (R_ik − r_s)²)) f_c(R_ij) f_c(R_ik)``."""

    rs: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        _non_negative("rs", self.rs)


@dataclass(frozen=True)
class GaussFourierBiRadial(Term):
    """002 eq C.9: ``Σ_{j≠i} Σ_{k≠i,j} B_ij(R_ij) B_ik(R_ik)`` with two Gauss-Fourier radial parts."""

    family = "angular"
    ij: GaussFourierRadial
    ik: GaussFourierRadial


@dataclass(frozen=True)
class GaussFourierAngular001(Term):
    """002 eq C.31: ``Σ_{j≠k} exp(−η_θ (1 − cos(θ_ijk − θ_s))) B_ij(R_ij) B_ik(R_ik)``.

    ``cos(θ − θ_s) = cos θ cos θ_s + sin θ sin θ_s`` with ``sin θ = |r_ij × r_ik| / (R_ij R_ik)``:
    no arccos, so no infinite derivative at θ = 0, π. (For θ_s ∉ {0, π} the
    ``sin θ`` term has a kink there; its derivative is taken as 0 at exactly
    collinear triplets.) θ_s in radians.
    """

    family = "angular"
    eta_theta: float
    theta_s: float
    ij: GaussFourierRadial
    ik: GaussFourierRadial

    def __post_init__(self):
        _non_negative("eta_theta", self.eta_theta)


@dataclass(frozen=True)
class GaussFourierAngular002(Term):
    """002 eq C.37: ``Σ_{j≠k} exp(−η_θ (1 − cos(θ − θ_s))) f_B(R_ij) f_B(R_ik)`` — C.31 without Gaussians
    (pass windows as :class:`GaussFourierRadial` with ``eta=0``)."""

    family = "angular"
    eta_theta: float
    theta_s: float
    ij: GaussFourierRadial
    ik: GaussFourierRadial

    def __post_init__(self):
        _non_negative("eta_theta", self.eta_theta)
        if self.ij.eta != 0 or self.ik.eta != 0:
            raise InputError("angular basis 002 has no Gaussian factors: use windows with eta=0", field="eta")


# ----------------------------------------------------------------------------- spin
#: Pair quantities q_ij of the SANNIP spin bases (002 §3.1), r̂ = r_ij / R_ij.
SPIN_PAIR_KINDS = {
    "dot": "S_i·S_j (exchange, eq 3.2)",
    "dm": "(S_i × S_j)·r̂_ij (Dzyaloshinskii-Moriya, eq 3.3)",
    "dipole": "(S_i·r̂_ij)(S_j·r̂_ij) (dipolar, eq 3.4)",
    "cross": "(S_i × r̂_ij)·(S_j × r̂_ij) (eq 3.16)",
}

#: The proposed local spin measures F1–F6 of 002 §5.2.3 (M_i = Σ_{j≠i} S_j f_c(R_ij)).
SPIN_LOCAL_KINDS = {
    "F1": "exp(−η (Σ_{j≠i} |S_j| f_c − α)²) (eq 5.1)",
    "F2": "exp(−η (|M_i| − α)²) (eq 5.2)",
    "F3": "exp(−η (S_i·M_i − α)²) (eq 5.3)",
    "F4": "|Σ_j S_j f_c| / Σ_j |S_j| f_c, j including i (eq 5.4)",
    "F5": "Σ_j f_c cos∠(S_j, M'_i) / Σ_j f_c, j including i, M'_i = Σ_j S_j f_c (eq 5.5)",
    "F6": "Σ_j f_c (cos∠(S_j, M'_i) − F5_i)² / Σ_j f_c (eq 5.6)",
}


@dataclass(frozen=True)
class SpinSelf(Term):
    """000 S1 / 000b S1a: ``(S_i·S_i)^ξ`` (μ_B^(2ξ)); ξ a positive integer."""

    family = "spin"
    xi: int = 1

    def __post_init__(self):
        if int(self.xi) != self.xi or self.xi < 1:
            raise InputError(f"xi must be a positive integer, got {self.xi}", field="xi")


@dataclass(frozen=True)
class SpinPair(Term):
    """000 S2–S4 and 000b S2–S5: ``Σ_{j≠i} q_ij^ξ f_c(R_ij)`` with q of ``kind`` (see SPIN_PAIR_KINDS)."""

    family = "spin"
    kind: str = "dot"
    xi: int = 1

    def __post_init__(self):
        _check_kind(self.kind, SPIN_PAIR_KINDS, "spin pair kind")
        if int(self.xi) != self.xi or self.xi < 1:
            raise InputError(f"xi must be a positive integer, got {self.xi}", field="xi")


@dataclass(frozen=True)
class SpinGaussSelf(Term):
    """001 S1 (eq 3.17): ``exp(−η₁ ((S_i·S_i)^(ξ/2) − α₁)²)``."""

    family = "spin"
    eta: float
    xi: float = 1.0
    alpha: float = 0.0

    def __post_init__(self):
        _positive("eta", self.eta)
        _positive("xi", self.xi)


@dataclass(frozen=True)
class SpinGaussPair(Term):
    """001 S2–S4 (eq 3.18–3.20): ``Σ_{j≠i} exp(−η (q_ij − α)²) f_c(R_ij)``."""

    family = "spin"
    kind: str = "dot"
    eta: float = 1.0
    alpha: float = 0.0

    def __post_init__(self):
        _check_kind(self.kind, SPIN_PAIR_KINDS, "spin pair kind")
        _positive("eta", self.eta)


@dataclass(frozen=True)
class SpinLocal(Term):
    """The proposed F1–F6 (002 eq 5.1–5.6); see SPIN_LOCAL_KINDS. η, α only for F1–F3.

    Eq 5.5 and 5.6 are printed with sums over all atoms of the system; here they
    are read as what the text says they are — the mean and the variance of the
    cosine between the moments and the local net moment inside the cutoff
    sphere, weighted by f_c.
    """

    family = "spin"
    kind: str = "F1"
    eta: float = 1.0
    alpha: float = 0.0

    def __post_init__(self):
        _check_kind(self.kind, SPIN_LOCAL_KINDS, "spin measure")
        _positive("eta", self.eta)

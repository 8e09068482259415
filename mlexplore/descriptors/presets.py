"""Named parameter sets from the papers (SPEC §4)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ..errors import InputError
from .symmetry import SymmetryFunctions
from .terms import G2, G4, G9, SpinGaussPair, SpinGaussSelf, SpinPair, SpinSelf, Term

__all__ = ["PRESETS", "preset_terms", "from_preset", "resolve_basis", "LOEFFLER_AU_AS_PRINTED"]

#: Bloore (002) appendix A.1, R_c = 6 Å.
_BLOORE_RADIAL = [G2(eta, rs) for eta, rs in itertools.product(
    (1.5, 6.25, 25.0), (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0))]
_BLOORE_ANGULAR = [G4(eta, zeta, lam) for eta, lam, zeta in itertools.product(
    (0.000357, 0.028569, 0.089277), (-1, 1), (1, 2, 4))]
#: Appendix A.2 spin terms: 8 S1 and 12 S2 (SANNIP 001 form).
_BLOORE_SPIN = ([SpinGaussSelf(0.035711, xi, alpha) for xi, alpha in
                 ((1, 0), (2, 0), (1, 1), (2, 1), (1, 2), (2, 4), (1, 3), (2, 9))]
                + [SpinGaussPair("dot", eta, alpha) for eta, alpha in itertools.product(
                    (0.000357, 0.035711, 0.028569, 0.089277), (0.0, 35.0, 70.0))])
#: Nearest-neighbour exchange for BCC iron, R_c = 3.0 Å (cosine): of the neighbours only the first
#: shell (2.35–2.55 Å in the strained cells) carries real weight, the second (2.72–2.94 Å) about 8 % of
#: it. A 2-atom BCC cell, where the spin-state energies are affordable, fixes the coupling of an atom
#: to its 8 nearest neighbours (the other sublattice) and nothing else: every more distant shell is
#: its own periodic image, always parallel. With R_c = 6 Å the spin sums of a paramagnetic 54-atom
#: cell hold couplings to shells no 2-atom cell varies (measured in notebooks/spin_monte_carlo.ipynb:
#: every atom outside a bloore-fe-sannip model's training domain at 1100 K, if only slightly; 41 % of
#: atom-sweeps for this basis). Geometry: G2 at the first two
#: shells, G4 as bloore-fe-bp's broad ones. Spin: the moment length (S1 ξ = 1, 2), the signed sums
#: Σ_j (S_i·S_j)^ξ f_c (ξ = 1, 2; Heisenberg and biquadratic) and Gaussians of S_i·S_j at α = −4…4
#: μB², η = 0.3 μB⁻⁴ (iron's |S| ≈ 2.1 μB, so S_i·S_j ∈ [−4.5, 4.5] μB²). (The SANNIP S2 Gaussians
#: sit at α = 0, 35, 70 μB², far from these values: the sign of S_i·S_j shows only in their tails.
#: On 2-atom test cells they fit better all the same: 16.8 against 30.2 meV/atom, same notebook.)
_EXCHANGE_GEOMETRY = ([G2(eta, rs) for eta, rs in itertools.product((1.5, 6.25, 25.0), (2.2, 2.4, 2.6, 2.8, 3.0))]
                      + [G4(eta, zeta, lam) for eta, lam, zeta in itertools.product((0.000357, 0.028569), (-1, 1),
                                                                                  (1, 2))])
_EXCHANGE_SPIN = ([SpinSelf(1), SpinSelf(2), SpinPair("dot", 1), SpinPair("dot", 2)]
                  + [SpinGaussPair("dot", 0.3, alpha) for alpha in (-4.0, -2.0, 0.0, 2.0, 4.0)])

#: Grid points of aluminium (MALA's first case, 003): the LDOS at a point is set by how far the nearest
#: atoms are (the density piles up between neighbours 2.9 Å apart and thins at the atoms' PAW cores), so
#: the radial terms resolve distance finely: narrow Gaussians (η = 8 Å⁻², ~0.25 Å wide) every 0.35 Å from
#: the point out to 4.55 Å, broad ones (η = 1) at 0, 2, 4 Å, and 8 broad angular terms (ζ = 1, 2, 4, 16);
#: R_c = 4.7 Å, MALA's. Measured against 6 Å sets (README, scripts/ldos_study.py): they fit 32-atom cells'
#: band energies better but do not transfer to a 108-atom cell (−49 against +5 meV/atom): beyond half the
#: 32-atom cell (4.12 Å) an environment sees atoms twice through periodic images.
_AL_LDOS = ([G2(8.0, round(0.35 * k, 2)) for k in range(14)]
            + [G2(1.0, rs) for rs in (0.0, 2.0, 4.0)]
            + [G4(0.05, zeta, lam) for zeta in (1, 2, 4, 16) for lam in (-1, 1)])

#: Table 1 of 004 exactly as printed: G2 η (Å⁻²) and G9 (η, λ, ζ).
LOEFFLER_AU_AS_PRINTED = {
    "g2_eta": (0.006428, 0.012856, 0.010357, 0.051424, 0.102848, 0.205696, 0.411392, 0.822784),
    "g9": ((0.000357, 1, 2), (0.005357, 1, 2), (0.010357, 1, 2), (0.015357, -1, 2), (0.020357, -1, 2),
           (0.025357, -1, 2), (0.030357, 1, 3), (0.035357, 1, 3), (0.040357, 1, 3), (0.045357, -1, 3),
           (0.050357, -1, 3), (0.055357, -1, 3), (0.60357, 1, 4), (0.65357, 1, 4), (0.70357, 1, 4),
           (0.075357, -1, 4), (0.080357, -1, 4), (0.085357, -1, 4)),
}


def _loeffler_terms(rs: float = 0.0) -> list[Term]:
    """Table 1 of 004 with its two evident typos corrected.

    G2: the η column doubles from row to row (0.006428 · 2^k) except row 3,
    printed 0.010357 — read as 0.025712. G9: η grows by 0.005 per row
    (0.000357 + 0.005 k) except rows 13–15, printed 0.60357/0.65357/0.70357 —
    read as 0.060357/0.065357/0.070357 (a dropped 0; η ≈ 0.6 Å⁻² would vanish
    beyond 2 Å, below gold's nearest-neighbour distance). The printed values
    are in :data:`LOEFFLER_AU_AS_PRINTED`.
    """
    g2_eta = list(LOEFFLER_AU_AS_PRINTED["g2_eta"])
    g2_eta[2] = 0.025712
    g9 = [list(row) for row in LOEFFLER_AU_AS_PRINTED["g9"]]
    for k in (12, 13, 14):
        g9[k][0] = round(g9[k][0] / 10, 6)
    return [G2(eta, rs) for eta in g2_eta] + [G9(eta, zeta, lam, rs) for eta, lam, zeta in g9]


PRESETS: dict[str, dict] = {
    "bloore-fe-bp": {"terms": _BLOORE_RADIAL + _BLOORE_ANGULAR, "cutoff": 6.0, "cutoff_function": "cosine",
                     "doc": "Bloore (002) A.1: 24 G2 + 18 G4, R_c = 6 Å, cosine cutoff"},
    "bloore-fe-sannip": {"terms": _BLOORE_RADIAL + _BLOORE_ANGULAR + _BLOORE_SPIN, "cutoff": 6.0,
                         "cutoff_function": "cosine",
                         "doc": "Bloore (002) A.2: bloore-fe-bp + 8 S1 + 12 S2 spin terms (SANNIP 001)"},
    "fe-exchange": {"terms": _EXCHANGE_GEOMETRY + _EXCHANGE_SPIN, "cutoff": 3.0, "cutoff_function": "cosine",
                    "doc": "BCC iron, nearest-neighbour shell: 15 G2 + 8 G4 + 9 signed exchange terms "
                           "(|S|, Σ(S_i·S_j)^ξ f_c, Gaussians of S_i·S_j at −4…4 μB²), R_c = 3 Å, for spin "
                           "Monte Carlo from 2-atom non-collinear data"},
    "al-ldos": {"terms": _AL_LDOS, "cutoff": 4.7, "cutoff_function": "cosine",
                "doc": "grid points of aluminium for an LDOS surrogate (003): 14 narrow + 3 broad G2, 8 G4, "
                       "R_c = 4.7 Å (scripts/ldos_study.py compares it with other sets)"},
    "loeffler-au": {"terms": _loeffler_terms(), "cutoff": 6.0, "cutoff_function": "polynomial",
                    "doc": "Salazar (004) table 1: 8 G2 + 18 G9, R_c = 6 Å, r_s = 0 (two typos corrected)"},
}


def preset_terms(name: str) -> list[Term]:
    """The term list of a preset."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}", field="preset")
    return list(PRESETS[name]["terms"])


def from_preset(name: str, elements: Sequence[str] | None = None, cutoff_function: str | None = None,
                **kwargs) -> SymmetryFunctions:
    """A :class:`SymmetryFunctions` with a named parameter set (``bloore-fe-bp``,
    ``bloore-fe-sannip``, ``loeffler-au``). ``cutoff_function`` overrides the
    preset's (e.g. compare cosine with polynomial, 004 §3.2)."""
    terms = preset_terms(name)
    spec = PRESETS[name]
    return SymmetryFunctions(terms, cutoff=spec["cutoff"], cutoff_function=cutoff_function or spec["cutoff_function"],
                             elements=elements, **kwargs)


def resolve_basis(basis: str | SymmetryFunctions, elements: Sequence[str]) -> SymmetryFunctions:
    """A descriptor for ``elements``: a preset name (``bloore-fe-sannip``, …) is built for them; a
    :class:`SymmetryFunctions` must already be element-resolved for every one of them."""
    if isinstance(basis, str):
        if basis not in PRESETS:
            raise InputError(f"unknown basis {basis!r}; presets: {', '.join(PRESETS)} (or a basis file)",
                             field="basis")
        return from_preset(basis, elements=list(elements))
    if not isinstance(basis, SymmetryFunctions):
        raise InputError(f"basis must be a preset name or a SymmetryFunctions, got {type(basis).__name__}",
                         field="basis")
    if basis.elements is None:
        raise InputError("the basis is element-agnostic; a potential needs elements=[...] "
                         f"(the data have {', '.join(elements)})", field="basis")
    missing = [e for e in elements if e not in basis.elements]
    if missing:
        raise InputError(f"the data contain {missing}, which the basis (elements {basis.elements}) does not cover",
                         field="basis")
    return basis


SymmetryFunctions.from_preset = staticmethod(from_preset)

"""Telling the user when a potential extrapolates: the policy, the one-line report, the MD log.

The measures themselves (n2p2's range rule and a novelty score) are in
:mod:`mlexplore.models.domain`; here is what :class:`~mlexplore.training.Potential` does with them.
``"warn"`` (default) gives one :class:`ExtrapolationWarning` per call that summarises — how many
atoms, which features and by how much, the worst atom — instead of n2p2's one line per atom and
feature (whose users raise ``maxew`` until the flood stops); ``"raise"`` stops with an
:class:`ExtrapolationError`; ``"ignore"`` says nothing. The per-atom grades are in the results
whatever the policy. An ASE calculator keeps an :class:`ExtrapolationLog` across an MD run: it
warns at the first step that extrapolates, counts the rest, and :meth:`ExtrapolationLog.summary`
reports the whole run at its end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..models.domain import DomainAssessment

__all__ = ["ExtrapolationWarning", "ExtrapolationError", "ExtrapolationLog", "POLICIES", "describe_extrapolation",
           "check_policy"]

POLICIES = ("warn", "raise", "ignore")


class ExtrapolationWarning(UserWarning):
    """A prediction for atoms outside the potential's training domain."""


class ExtrapolationError(InputError):
    """Raised with ``extrapolation="raise"`` for atoms outside the training domain."""


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise InputError(f"extrapolation must be one of {', '.join(POLICIES)}, got {policy!r}", field="extrapolation")
    return policy


def describe_extrapolation(a: DomainAssessment, numbers: np.ndarray, feature_names: list[str],
                           novelty_limit: float, what: str = "") -> str:
    """One line: how many atoms extrapolate, through which features (most frequent first), and the
    worst atom with its feature, excess and novelty. ``numbers``: atomic numbers ``(N,)``."""
    from ase.data import chemical_symbols

    n, bad = len(a.grade), np.flatnonzero(a.extrapolating)
    counts = Counter(int(f) for f in a.feature[bad] if f >= 0)
    feats = ", ".join(f"{feature_names[f]} ({c} atom{'s' * (c > 1)})" for f, c in counts.most_common(3))
    more = f" and {len(counts) - 3} more features" if len(counts) > 3 else ""
    worst = int(bad[np.argmax(np.where(np.isfinite(a.grade[bad]), a.grade[bad], 1e300) + a.novelty[bad] * 1e-9)])
    w = f"worst atom {worst} ({chemical_symbols[int(numbers[worst])]})"
    if a.feature[worst] >= 0:
        w += f": {feature_names[int(a.feature[worst])]} {a.grade[worst]:.3g}× its training range outside it"
    w += f", novelty {a.novelty[worst]:.3g} (training atoms ≤ 1, limit {novelty_limit:g})"
    inside = len(bad) - len(np.flatnonzero(a.feature[bad] >= 0))
    novel = f"; {inside} inside every feature's range but unlike the training atoms" if inside else ""
    through = f" through {feats}{more}" if feats else ""
    return (f"{what}{len(bad)} of {n} atoms are outside the potential's training domain{through}{novel}; {w}. "
            "Its predictions there are extrapolations (results['extrapolating'], ['extrapolation_grade'], "
            "['novelty'] per atom).")


@dataclass
class ExtrapolationLog:
    """Counts of an MD run (or any sequence of calculations) with extrapolating atoms."""

    calls: int = 0
    calls_extrapolating: int = 0
    atoms_seen: int = 0
    atoms_extrapolating: int = 0
    worst_grade: float = 0.0
    worst_novelty: float = 0.0
    first_call: int | None = None
    features: Counter = field(default_factory=Counter)

    def add(self, a: DomainAssessment) -> bool:
        """Count one calculation; True if it extrapolated."""
        self.calls += 1
        self.atoms_seen += len(a.grade)
        k = a.n_extrapolating
        if k == 0:
            return False
        self.calls_extrapolating += 1
        self.atoms_extrapolating += k
        if self.first_call is None:
            self.first_call = self.calls
        self.worst_grade = max(self.worst_grade, float(np.max(a.grade)))
        self.worst_novelty = max(self.worst_novelty, float(np.max(a.novelty)))
        self.features.update(int(f) for f in a.feature[a.extrapolating] if f >= 0)
        return True

    def summary(self, feature_names: list[str] | None = None) -> str:
        """What the run saw, in one paragraph."""
        if self.calls_extrapolating == 0:
            return f"{self.calls} calculations, none outside the training domain."
        names = (lambda f: feature_names[f]) if feature_names else (lambda f: f"feature {f}")
        top = ", ".join(f"{names(f)} ×{c}" for f, c in self.features.most_common(3))
        return (f"{self.calls_extrapolating} of {self.calls} calculations (first: number {self.first_call}) had atoms "
                f"outside the training domain, {self.atoms_extrapolating} atom-steps of {self.atoms_seen}; worst grade "
                f"{self.worst_grade:.3g}× a feature's range, worst novelty {self.worst_novelty:.3g}"
                + (f"; features: {top}" if top else "") + ".")

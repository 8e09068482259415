"""Feature diagnostics on arrays: correlation matrix, dead and redundant columns (002 §F.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["FeatureReport", "feature_correlation", "feature_report"]


def _array(features: Any) -> np.ndarray:
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"need features of shape (n_samples ≥ 2, n_features), got {x.shape}", field="features")
    if not np.isfinite(x).all():
        raise InputError("features contain NaN or inf", field="features")
    return x


def feature_correlation(features: Any) -> np.ndarray:
    """Pearson correlation matrix of the columns ``(n_features, n_features)``; a constant column
    has correlation 0 with every other column (and 1 with itself)."""
    x = _array(features)
    x = x - x.mean(axis=0)
    std = np.sqrt((x * x).mean(axis=0))
    live = std > 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0)))
    z = np.where(live, x / np.where(live, std, 1.0), 0.0)
    c = z.T @ z / len(z)
    np.fill_diagonal(c, 1.0)
    return np.clip(c, -1.0, 1.0)


@dataclass
class FeatureReport:
    """``dead``: columns that (almost) never change over the data; ``redundant``: pairs ``(i, j, r)``
    with |r| above the threshold; ``mean_abs_correlation`` over all pairs of live columns (the
    quantity 002 §F.2 minimises); ``names`` the column names used in :meth:`summary`."""

    n_samples: int
    names: list[str]
    dead: list[int] = field(default_factory=list)
    redundant: list[tuple[int, int, float]] = field(default_factory=list)
    mean_abs_correlation: float = 0.0

    def summary(self, max_items: int = 5) -> str:
        """A few lines of plain text for a panel or a terminal."""
        lines = [f"{len(self.names)} features on {self.n_samples} samples; mean |r| between live "
                 f"features {self.mean_abs_correlation:.3f}",
                 f"dead (constant) features: {len(self.dead)}"
                 + (": " + ", ".join(self.names[i] for i in self.dead[:max_items]) if self.dead else "")
                 + (" …" if len(self.dead) > max_items else ""),
                 f"redundant pairs: {len(self.redundant)}"]
        for i, j, r in self.redundant[:max_items]:
            lines.append(f"  r = {r:+.4f}  {self.names[i]}  ~  {self.names[j]}")
        if len(self.redundant) > max_items:
            lines.append("  …")
        return "\n".join(lines)


def feature_report(features: Any, names: Sequence[str] | None = None, redundant_above: float = 0.99,
                   dead_below: float = 1e-8) -> FeatureReport:
    """Which columns carry no information and which duplicate each other.

    A column is *dead* when its standard deviation is below ``dead_below`` times
    the largest absolute feature value (e.g. a G2 centred beyond every neighbour);
    two live columns are *redundant* when ``|r| > redundant_above``.
    """
    x = _array(features)
    names = [f"f{k}" for k in range(x.shape[1])] if names is None else list(names)
    if len(names) != x.shape[1]:
        raise InputError(f"{len(names)} names for {x.shape[1]} features", field="names")
    scale = max(float(np.abs(x).max(initial=0.0)), 1e-300)
    dead = [int(k) for k in np.flatnonzero(x.std(axis=0) <= dead_below * scale)]
    live = np.setdiff1d(np.arange(x.shape[1]), dead)
    c = feature_correlation(x)
    sub = c[np.ix_(live, live)]
    iu = np.triu_indices(len(live), k=1)
    vals = sub[iu]
    mean_abs = float(np.abs(vals).mean()) if vals.size else 0.0
    hit = np.abs(vals) > redundant_above
    pairs = sorted(((int(live[a]), int(live[b]), float(r)) for a, b, r in zip(iu[0][hit], iu[1][hit], vals[hit])),
                   key=lambda t: -abs(t[2]))
    return FeatureReport(n_samples=len(x), names=names, dead=dead, redundant=pairs, mean_abs_correlation=mean_abs)

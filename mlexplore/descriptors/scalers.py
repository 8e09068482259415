"""Invertible feature/target scaling (SPEC §5) and the per-element energy baseline.

Every scaler is affine per column, ``x' = (x − shift) / scale``, so that
``∂x'/∂x = 1 / scale`` (:attr:`Scaler.jacobian`): forces computed through
scaled features only need this factor. Works on numpy arrays and torch tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["Scaler", "SCALER_KINDS", "EnergyBaseline"]

SCALER_KINDS = {
    "minmax": "min-max to [−1, 1] (002 eq 2.36–2.43)",
    "standard": "zero mean, unit standard deviation (002 eq F.20–F.27)",
    "modified": "zero mean, divided by max |x − mean| → [−1, 1] (002 eq 3.21–3.24)",
    "minmax01": "min-max to [0, 1] (001 §3)",
    "none": "identity",
}


def _np(x: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x, dtype=float)


class Scaler:
    """Column-wise affine scaling, fitted on training data.

    Parameters
    ----------
    kind:
        One of :data:`SCALER_KINDS`. Constant columns get scale 1 (they map to
        0, or to −1 for min-max), never a division by zero.
    """

    def __init__(self, kind: str = "minmax") -> None:
        if kind not in SCALER_KINDS:
            raise InputError(f"unknown scaler {kind!r}; choose from {', '.join(SCALER_KINDS)}", field="kind")
        self.kind = kind
        self.shift_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, x: Any) -> "Scaler":
        """Learn shift and scale from ``x`` of shape ``(n_samples, n_columns)`` (or ``(n,)``)."""
        a = _np(x)
        if a.ndim == 1:
            a = a[:, None]
        if a.shape[0] == 0:
            raise InputError("cannot fit a scaler on zero samples", field="x")
        if not np.isfinite(a).all():
            raise InputError("cannot fit a scaler on NaN/inf values", field="x")
        if self.kind == "minmax":
            lo, hi = a.min(0), a.max(0)
            shift, scale = (hi + lo) / 2, (hi - lo) / 2
        elif self.kind == "minmax01":
            lo, hi = a.min(0), a.max(0)
            shift, scale = lo, hi - lo
        elif self.kind == "standard":
            shift, scale = a.mean(0), a.std(0)
        elif self.kind == "modified":
            shift = a.mean(0)
            scale = np.abs(a - shift).max(0)
        else:
            shift, scale = np.zeros(a.shape[1]), np.ones(a.shape[1])
        self.shift_ = shift
        self.scale_ = np.where(scale > 1e-300, scale, 1.0)
        return self

    def _check(self) -> None:
        if self.shift_ is None:
            raise InputError("the scaler is not fitted yet: call fit() first")

    def _like(self, arr: np.ndarray, x: Any) -> Any:
        try:
            import torch

            if isinstance(x, torch.Tensor):
                return torch.as_tensor(arr, dtype=x.dtype, device=x.device)
        except ImportError:  # pragma: no cover
            pass
        return arr

    def transform(self, x: Any) -> Any:
        """``(x − shift) / scale`` (same type as ``x``; torch stays differentiable)."""
        self._check()
        return (x - self._like(self.shift_, x)) / self._like(self.scale_, x)

    def inverse_transform(self, y: Any) -> Any:
        """``y · scale + shift``."""
        self._check()
        return y * self._like(self.scale_, y) + self._like(self.shift_, y)

    def fit_transform(self, x: Any) -> Any:
        return self.fit(x).transform(x)

    @property
    def jacobian(self) -> np.ndarray:
        """``∂x'/∂x = 1 / scale`` per column (multiply feature derivatives by it)."""
        self._check()
        return 1.0 / self.scale_

    def state_dict(self) -> dict:
        return {"kind": self.kind, "shift": None if self.shift_ is None else self.shift_.tolist(),
                "scale": None if self.scale_ is None else self.scale_.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Scaler":
        s = cls(state["kind"])
        if state.get("shift") is not None:
            s.shift_, s.scale_ = np.asarray(state["shift"]), np.asarray(state["scale"])
        return s

    def __repr__(self) -> str:
        return f"Scaler({self.kind!r}{', fitted' if self.shift_ is not None else ''})"


class EnergyBaseline:
    """Per-element reference energies by least squares (002 eq F.28).

    ``E ≈ Σ_el n_el e_el``; the residual ``E − Σ n_el e_el`` is what a network
    then learns (and what gets scaled).
    """

    def __init__(self) -> None:
        self.elements_: list[str] | None = None
        self.energies_: np.ndarray | None = None

    def fit(self, dataset, energy: str = "energy") -> "EnergyBaseline":
        symbols, counts = dataset.element_counts()
        e = dataset.label(energy)
        coef, *_ = np.linalg.lstsq(counts.astype(float), e, rcond=None)
        self.elements_, self.energies_ = list(symbols), coef
        return self

    def predict(self, dataset) -> np.ndarray:
        """Baseline energy of each structure (eV)."""
        if self.elements_ is None:
            raise InputError("the baseline is not fitted yet: call fit() first")
        symbols, counts = dataset.element_counts()
        ref = dict(zip(self.elements_, self.energies_))
        missing = [s for s in symbols if s not in ref]
        if missing:
            raise InputError(f"no reference energy for element(s) {missing} (not in the fitted data)",
                             field="elements")
        return counts @ np.array([ref[s] for s in symbols])

    def residual(self, dataset, energy: str = "energy") -> np.ndarray:
        """``E − baseline`` (eV)."""
        return dataset.label(energy) - self.predict(dataset)

    @property
    def reference_energies(self) -> dict[str, float]:
        return dict(zip(self.elements_ or [], (self.energies_ if self.energies_ is not None else [])))

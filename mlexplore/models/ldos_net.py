"""MALA's network: the local density of states at a grid point from a descriptor of that point.

MALA (Materials Learning Algorithms; Ellis et al., *Phys. Rev. B* **104**, 035120 (2021); Fiedler
et al., *npj Comput. Mater.* **9**, 115 (2023)) replaces the Kohn–Sham solution by a feed-forward
network applied to every point ``r`` of a real-space grid independently::

    descriptor G(r) ∈ R^F   →   d(r, E_1 … E_n) ∈ R^n_E

with ``G(r)`` symmetry functions centred on the point (here
:func:`mlexplore.descriptors.points.point_features`) and ``d`` the LDOS on a fixed energy grid
(states / (eV Å³); :mod:`mlexplore.dft.ldos`). The DOS, Fermi level, band energy and density then
follow from the predicted LDOS (:mod:`mlexplore.analysis.ldos`).

:class:`LDOSNet` is that network with its data scaling carried as buffers, so a saved model
predicts the same numbers after loading:

* **inputs**, feature by feature (MALA's ``"feature-wise-standard"`` by default):
  ``x' = (x − input_shift) / input_scale``;
* **outputs**, one shift and scale for the whole LDOS (``output_scope="global"``, MALA's default)
  or one per energy (``"per-energy"``, MALA's ``"feature-wise-…"``): the network predicts
  ``z = (d − output_shift) / output_scale`` and :meth:`LDOSNet.forward` returns ``d``.

Scaling kinds, as :class:`mlexplore.descriptors.scalers.Scaler` names them: ``"standard"`` (zero
mean, unit standard deviation), ``"minmax"`` (to [−1, 1]), ``"minmax01"`` (to [0, 1]: MALA's
``"minmax"``/``"normal"``) and ``"none"``. The scalers are fitted (:meth:`LDOSNet.fit_scalers`) in
chunks of rows with float64 sums, so millions of grid points need no float64 copy of the data.

Defaults after MALA's basic training example (mala-project/mala,
``examples/basic/ex01_train_network.py``): feature-wise standard inputs, global min-max outputs,
ReLU. Hidden widths default to two layers of 100 (that example has one).

Files: :func:`mlexplore.training.save_model` / :func:`~mlexplore.training.load_model`, as every model
(``descriptor`` None when the model was built without one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..descriptors.symmetry import SymmetryFunctions
from ..errors import InputError, check_whole
from .bpnn import ACTIVATIONS

__all__ = ["LDOSNet", "LDOS_ACTIVATIONS", "LDOS_SCALINGS", "OUTPUT_SCOPES"]

#: activations between the hidden layers (MALA uses ReLU, LeakyReLU or sigmoid)
LDOS_ACTIVATIONS: dict[str, type[nn.Module]] = {**ACTIVATIONS, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid}
#: scaling kinds of inputs and outputs: ``x' = (x − shift) / scale``
LDOS_SCALINGS = {
    "standard": "zero mean, unit standard deviation (MALA 'standard')",
    "minmax": "min-max to [−1, 1] (the Scaler's 'minmax')",
    "minmax01": "min-max to [0, 1] (MALA 'minmax' / 'normal')",
    "none": "identity",
}
#: one output shift and scale for the whole LDOS, or one per energy
OUTPUT_SCOPES = ("global", "per-energy")

#: rows read at a time while the scalers are fitted (float64 copies of at most this many rows)
_FIT_CHUNK = 16384


class LDOSNet(nn.Module):
    """Feed-forward network from a point's descriptor to its LDOS on an energy grid (MALA).

    Parameters
    ----------
    n_features : int
        Length F of the descriptor vector of a point (``descriptor.n_features`` when a descriptor
        is given).
    energies : array_like
        The energy grid of the LDOS (eV), ``(n_E,)``, strictly ascending; the network has one output
        per energy. Kept in the model (:attr:`energies`) for the observables of a prediction.
    hidden : sequence of int
        Widths of the hidden layers (default two of 100).
    activation : str
        One of :data:`LDOS_ACTIVATIONS` (default ``"relu"``, as MALA's example; ``"leaky_relu"``
        has slope 0.01). No activation after the output layer.
    input_scaling : str
        Feature-wise scaling of the descriptor, one of :data:`LDOS_SCALINGS` (default ``"standard"``).
    output_scaling : str
        Scaling of the LDOS, one of :data:`LDOS_SCALINGS` (default ``"minmax01"``).
    output_scope : str
        ``"global"`` (one shift and scale for all energies and points, default) or ``"per-energy"``.
    descriptor : SymmetryFunctions, optional
        The descriptor the features come from, saved with the model so that it can featurise new
        structures (:func:`~mlexplore.descriptors.points.point_features`). Not trained.

    Notes
    -----
    Buffers (saved with the weights): ``input_shift``, ``input_scale`` ``(F,)``; ``output_shift``,
    ``output_scale`` ``(n_E,)`` (all entries equal for ``"global"``) in states / (eV Å³);
    ``scalers_fitted`` (bool). Before :meth:`fit_scalers` the scaling is the identity.

    References
    ----------
    J. A. Ellis et al., *Phys. Rev. B* **104**, 035120 (2021); L. Fiedler et al., *npj Comput. Mater.*
    **9**, 115 (2023).
    """

    def __init__(self, n_features: int, energies: Any, hidden: Sequence[int] = (100, 100),
                 activation: str = "relu", input_scaling: str = "standard", output_scaling: str = "minmax01",
                 output_scope: str = "global", descriptor: SymmetryFunctions | None = None) -> None:
        super().__init__()
        n_features = check_whole(n_features, "n_features", 1)
        grid = _energy_grid(energies)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise InputError(f"hidden must be a sequence of layer widths, got {hidden!r}", field="hidden")
        widths = [check_whole(h, "hidden", 1) for h in hidden]
        if activation not in LDOS_ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}; choose from {', '.join(LDOS_ACTIVATIONS)}",
                             field="activation")
        for name, kind in (("input_scaling", input_scaling), ("output_scaling", output_scaling)):
            if kind not in LDOS_SCALINGS:
                raise InputError(f"unknown {name} {kind!r}; choose from {', '.join(LDOS_SCALINGS)}", field=name)
        if output_scope not in OUTPUT_SCOPES:
            raise InputError(f"output_scope must be one of {OUTPUT_SCOPES}, got {output_scope!r}",
                             field="output_scope")
        if descriptor is not None:
            if not isinstance(descriptor, SymmetryFunctions):
                raise InputError(f"descriptor must be a SymmetryFunctions, got {type(descriptor).__name__}",
                                 field="descriptor")
            if descriptor.n_features != n_features:
                raise InputError(f"the descriptor has {descriptor.n_features} features, n_features is {n_features}",
                                 field="n_features")
        self.n_features = n_features
        self._energies = tuple(float(e) for e in grid)
        self.hidden = widths
        self.activation = activation
        self.input_scaling, self.output_scaling, self.output_scope = input_scaling, output_scaling, output_scope
        self.descriptor = descriptor
        layers: list[nn.Module] = []
        width = n_features
        for h in widths:
            layers += [nn.Linear(width, h), LDOS_ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, len(grid)))
        self.net = nn.Sequential(*layers)
        self.register_buffer("input_shift", torch.zeros(n_features))
        self.register_buffer("input_scale", torch.ones(n_features))
        self.register_buffer("output_shift", torch.zeros(len(grid)))
        self.register_buffer("output_scale", torch.ones(len(grid)))
        self.register_buffer("scalers_fitted", torch.zeros((), dtype=torch.bool))

    # ------------------------------------------------------------------------------------ shape
    @property
    def energies(self) -> np.ndarray:
        """The energy grid (eV), ``(n_E,)`` float64."""
        return np.array(self._energies)

    @property
    def n_energies(self) -> int:
        """Number of outputs, the energies of the grid."""
        return len(self._energies)

    def config(self) -> dict:
        """Constructor arguments (besides the descriptor) as plain data."""
        return {"n_features": self.n_features, "energies": list(self._energies), "hidden": list(self.hidden),
                "activation": self.activation, "input_scaling": self.input_scaling,
                "output_scaling": self.output_scaling, "output_scope": self.output_scope}

    # ---------------------------------------------------------------------------------- scaling
    @torch.no_grad()
    def fit_scalers(self, features: Any, ldos: Any = None, chunk: int = _FIT_CHUNK) -> LDOSNet:
        """Fit the input (and, with ``ldos``, the output) scaling on training data; returns the model.

        Parameters
        ----------
        features : array_like or torch.Tensor
            ``(P, F)`` descriptors of the training points.
        ldos : array_like or torch.Tensor, optional
            ``(P, n_E)`` LDOS of the same points (states / (eV Å³)); None leaves the output scaling.
        chunk : int
            Rows converted to float64 at a time (the data are read twice: sums, then squared deviations).

        Columns (or, for a global output scaling, the whole LDOS) whose spread is zero, or below 8
        rounding units of the data's precision times their magnitude, get scale 1: a constant maps
        to 0 (−1 for ``"minmax"``) instead of being divided by its rounding noise. NaN or inf in the
        data is an :class:`InputError` naming the argument.
        """
        chunk = check_whole(chunk, "chunk", 1)
        x = _rows(features, "features", self.n_features)
        shift, scale = _fit(x, self.input_scaling, per_column=True, chunk=chunk, name="features")
        self.input_shift.copy_(shift)
        self.input_scale.copy_(scale)
        if ldos is not None:
            y = _rows(ldos, "ldos", self.n_energies)
            if y.shape[0] != x.shape[0]:
                raise InputError(f"ldos has {y.shape[0]} rows, features {x.shape[0]}", field="ldos")
            shift, scale = _fit(y, self.output_scaling, per_column=self.output_scope == "per-energy", chunk=chunk,
                                name="ldos")
            self.output_shift.copy_(shift)
            self.output_scale.copy_(scale)
        self.scalers_fitted.fill_(True)
        return self

    def scale_features(self, features: torch.Tensor) -> torch.Tensor:
        """``(x − input_shift) / input_scale``, the network's input."""
        return (features - self.input_shift) / self.input_scale

    def scale_ldos(self, ldos: torch.Tensor) -> torch.Tensor:
        """An LDOS (states / (eV Å³)) in the network's output units: ``(d − output_shift) / output_scale``."""
        return (ldos - self.output_shift) / self.output_scale

    def unscale_ldos(self, scaled: torch.Tensor) -> torch.Tensor:
        """The network's output in states / (eV Å³): ``z · output_scale + output_shift``."""
        return scaled * self.output_scale + self.output_shift

    # ---------------------------------------------------------------------------------- forward
    def forward(self, features: torch.Tensor, scaled: bool = False) -> torch.Tensor:
        """The LDOS of every point, ``(P, n_E)`` in states / (eV Å³), from its raw (unscaled)
        descriptor ``(P, F)``; with ``scaled`` the network's output in scaled units instead."""
        if features.dim() != 2 or features.shape[1] != self.n_features:
            raise InputError(f"features must have shape (P, {self.n_features}), got {tuple(features.shape)}",
                             field="features")
        z = self.net(self.scale_features(features))
        return z if scaled else self.unscale_ldos(z)


# ------------------------------------------------------------------------------------- scalers
def _energy_grid(energies: Any) -> np.ndarray:
    if isinstance(energies, torch.Tensor):
        energies = energies.detach().cpu().numpy()
    try:
        e = np.asarray(energies, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"energies must be a 1-D array of energies in eV, got {type(energies).__name__}",
                         field="energies") from None
    if e.ndim != 1 or e.size < 2:
        raise InputError(f"energies must be a 1-D grid of at least 2 points, got shape {e.shape}", field="energies")
    if not np.isfinite(e).all() or not (np.diff(e) > 0).all():
        raise InputError("energies must be finite and strictly ascending", field="energies")
    return e


def _rows(data: Any, name: str, width: int) -> Any:
    """``data`` as a 2-D array or tensor with ``width`` columns and at least one row (not copied)."""
    if not isinstance(data, torch.Tensor):
        data = np.asarray(data)
        if data.dtype.kind not in "fiu":
            raise InputError(f"{name} must be numbers, got dtype {data.dtype}", field=name)
    elif not (data.is_floating_point() or data.dtype in (torch.int32, torch.int64)):
        raise InputError(f"{name} must be numbers, got dtype {data.dtype}", field=name)
    if data.ndim != 2 or data.shape[1] != width:
        raise InputError(f"{name} must have shape (P, {width}), got {tuple(data.shape)}", field=name)
    if data.shape[0] == 0:
        raise InputError(f"{name} is empty (no points)", field=name)
    return data


def _precision(data: Any) -> float:
    """The rounding unit of the data's type (that of float64 for integers)."""
    dtype = data.dtype
    if isinstance(data, torch.Tensor):
        return torch.finfo(dtype if dtype.is_floating_point else torch.float64).eps
    return float(np.finfo(dtype if dtype.kind == "f" else np.float64).eps)


def _chunks(data: Any, chunk: int):
    for a in range(0, data.shape[0], chunk):
        block = data[a:a + chunk]
        yield (block.detach().to("cpu", torch.float64) if isinstance(block, torch.Tensor)
               else torch.from_numpy(np.asarray(block, dtype=np.float64)))


def _fit(data: Any, kind: str, per_column: bool, chunk: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift and scale per column (float64 ``(width,)``; all equal unless ``per_column``)."""
    n, width = data.shape
    if kind == "none":
        return torch.zeros(width, dtype=torch.float64), torch.ones(width, dtype=torch.float64)
    total = torch.zeros(width, dtype=torch.float64)
    lo = torch.full((width,), math.inf, dtype=torch.float64)
    hi = torch.full((width,), -math.inf, dtype=torch.float64)
    for block in _chunks(data, chunk):
        if not bool(torch.isfinite(block).all()):
            row = int(torch.nonzero(~torch.isfinite(block).all(dim=1))[0])
            raise InputError(f"{name} holds NaN or inf (row {row} of a block of {chunk} rows)", field=name)
        total += block.sum(0)
        lo = torch.minimum(lo, block.min(0).values)
        hi = torch.maximum(hi, block.max(0).values)
    mean = total / n
    if not per_column:
        mean = mean.mean().expand(width)  # every column has n values: the global mean
        lo, hi = lo.min().expand(width), hi.max().expand(width)
    if kind == "standard":
        sq = torch.zeros(width, dtype=torch.float64)
        for block in _chunks(data, chunk):
            sq += ((block - mean) ** 2).sum(0)
        var = sq / n if per_column else (sq.sum() / (n * width)).expand(width)
        shift, scale = mean, torch.sqrt(var)
    elif kind == "minmax":
        shift, scale = (hi + lo) / 2, (hi - lo) / 2
    else:  # minmax01
        shift, scale = lo, hi - lo
    precision = _precision(data)
    magnitude = torch.maximum(lo.abs(), hi.abs())
    flat = (scale <= 0) | (scale <= 8 * precision * magnitude)
    return shift.clone(), torch.where(flat, torch.ones_like(scale), scale)


# ---------------------------------------------------------------------------------------- files

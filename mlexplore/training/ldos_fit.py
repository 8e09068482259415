"""Training MALA's LDOS network (:class:`~mlexplore.models.ldos_net.LDOSNet`) with the one training loop.

MALA (Ellis et al., *Phys. Rev. B* **104**, 035120 (2021); Fiedler et al., *npj Comput. Mater.*
**9**, 115 (2023)) trains a per-point network on every grid point of its training snapshots: the
samples are grid points, not structures, and there are millions of them (a 256-atom Al cell on a
~0.2 Å grid has some 10⁶–10⁷ points, each with an LDOS of ~250 energies). Here:

* :func:`ldos_points` turns one LDOS on a grid (an :class:`~mlexplore.dft.ldos.LDOSResult`, or
  anything with its ``ldos``, ``cell``, ``positions``, ``numbers``) and a descriptor into the rows
  ``(features, ldos)`` of its points — all of them, as MALA, or a random subset (quick runs);
* :class:`LDOSObjective` is what :func:`~mlexplore.training.engine.train_loop` trains: mini-batches
  of grid points in the order the loop draws (reshuffled every epoch), the loss the mean square of
  the *scaled* LDOS residual (one :class:`~mlexplore.training.engine.Output`, ``"ldos"``), and the
  validation RMSE in states / (eV Å³);
* :func:`fit_ldos` fits the model's scalers on the training rows and runs the loop;
  :func:`predict_ldos` evaluates the network in chunks.

Memory: the rows stay where they are given (float32 on the CPU is the intended layout: ``P × (F +
n_E) × 4`` bytes, 1.1 GB per million points at F = 30, n_E = 250) and each mini-batch is gathered
there and moved to the model's device; ``data_on_device=True`` moves them once instead (faster on a
GPU when they fit). Nothing is copied when the rows already have the model's precision.

Timing (measured, not asserted; one core of a 2-core CPU shared with two DFT jobs, float32,
F = 30, n_E = 250, hidden (100, 100), 200 000 training points, several runs): an epoch trains
70 000–115 000 points/s at 256 points a batch, 90 000–165 000 at 1024, 100 000–167 000 at 4096;
fitting the scalers reads 240 000 points/s, :func:`predict_ldos` 165 000–240 000 points/s.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from ..descriptors.points import grid_points, point_features
from ..descriptors.symmetry import SymmetryFunctions
from ..errors import InputError, check_positive, check_whole
from ..models.ldos_net import LDOSNet
from .checkpoint import save_model
from .engine import (DEFAULTS, History, Objective, Output, check_training_options, output_loss,
                     resolve_device, total_loss, train_loop)

__all__ = ["LDOSObjective", "LDOSPoints", "ldos_points", "fit_ldos", "predict_ldos", "predict_snapshot", "refit_output_layer",
           "LDOS_DEFAULTS"]

#: The defaults of :func:`fit_ldos` (``DEFAULTS["ldos"]``, with every protocol's in the engine).
LDOS_DEFAULTS = DEFAULTS["ldos"]

#: points evaluated at a time by :func:`predict_ldos` and the validation pass
PREDICT_CHUNK = 65536


@dataclass
class LDOSPoints:
    """The grid points of one snapshot as training rows.

    Attributes
    ----------
    features : torch.Tensor
        ``(P, F)`` descriptors of the points (on the CPU).
    ldos : torch.Tensor
        ``(P, n_E)`` LDOS of the points in states / (eV Å³) (on the CPU).
    indices : ndarray
        ``(P,)`` flat C-order indices of the points in the grid (ascending), the rows of
        ``grid_points(cell, grid_shape)``.
    energies : ndarray
        The energy grid (eV).
    grid_shape : tuple of int
        ``(nx, ny, nz)``.
    voxel_volume : float
        Volume of one grid cell (Å³).
    n_electrons, kT : float
        Valence electrons and electronic temperature (eV) of the snapshot, for the observables
        (NaN when the source has none).
    """

    features: torch.Tensor
    ldos: torch.Tensor
    indices: np.ndarray
    energies: np.ndarray
    grid_shape: tuple[int, int, int]
    voxel_volume: float
    n_electrons: float
    kT: float

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def complete(self) -> bool:
        """Whether every grid point is a row (then ``ldos.reshape(*grid_shape, -1)`` is the grid)."""
        return len(self) == int(np.prod(self.grid_shape))


def ldos_points(result: Any, descriptor: SymmetryFunctions, subsample: int | float | None = None, seed: int = 0,
                dtype: torch.dtype = torch.float32, chunk_size: int = 2048, block: int = 1 << 17,
                progress: bool = False) -> LDOSPoints:
    """Features and LDOS of the grid points of one snapshot.

    Parameters
    ----------
    result : LDOSResult or similar
        An :class:`~mlexplore.dft.ldos.LDOSResult`, or any object with ``ldos (nx, ny, nz, n_E)`` in
        states / (eV Å³), ``energies (n_E,)`` eV, ``cell (3, 3)`` Å, ``positions (A, 3)`` Å and
        ``numbers (A,)``; ``pbc`` (default True: the cells of :func:`~mlexplore.dft.compute_ldos` are
        periodic), ``n_electrons`` and ``kT`` (eV) are read when present. Voxel ``(i, j, k)`` sits at
        ``(i/nx, j/ny, k/nz)`` in fractional coordinates, the layout of
        :func:`~mlexplore.descriptors.points.grid_points`. An object without ``ldos`` but with a
        ``result`` (a snapshot of :mod:`mlexplore.dft.ldos_data`) stands for that result.
    descriptor : SymmetryFunctions
        The point descriptor (:func:`~mlexplore.descriptors.points.point_features`).
    subsample : int or float, optional
        None: every point (as MALA trains). An int: that many points; a float in (0, 1]: that
        fraction of them — drawn without replacement with ``seed``, kept in grid order.
    dtype : torch.dtype
        Precision of the rows (default float32). The features are computed in float64 and rounded.
    chunk_size : int
        Points featurised at a time inside :func:`point_features` (its memory knob).
    block : int
        Points per call of :func:`point_features` and per float64 copy of LDOS rows (bounds the
        temporary memory to ``block × (F + n_E) × 8`` bytes).
    progress : bool
        Show a progress bar over the blocks.

    Returns
    -------
    LDOSPoints
    """
    if not hasattr(result, "ldos") and hasattr(result, "result"):
        result = result.result
    ldos = getattr(result, "ldos", None)
    for name in ("energies", "cell", "positions", "numbers"):
        if getattr(result, name, None) is None:
            raise InputError(f"an LDOS result needs {name!r} (an LDOSResult has it)", field="result")
    if not isinstance(ldos, np.ndarray) or ldos.ndim != 4:
        raise InputError(f"result.ldos must be an (nx, ny, nz, n_E) array, got "
                         f"{getattr(ldos, 'shape', type(ldos).__name__)}", field="result")
    energies = np.asarray(result.energies, dtype=np.float64)
    if energies.shape != (ldos.shape[-1],):
        raise InputError(f"result.ldos has {ldos.shape[-1]} energies, result.energies {energies.shape}",
                         field="result")
    if not isinstance(descriptor, SymmetryFunctions):
        raise InputError(f"descriptor must be a SymmetryFunctions, got {type(descriptor).__name__}",
                         field="descriptor")
    check_whole(block, "block", 1)
    shape = tuple(int(n) for n in ldos.shape[:3])
    n_points = int(np.prod(shape))
    if n_points == 0:
        raise InputError(f"the LDOS grid {shape} has no points", field="result")
    idx = _subsample(n_points, subsample, seed)
    cell = np.asarray(result.cell, dtype=np.float64)
    points = grid_points(cell, shape)[torch.from_numpy(idx)]
    rows = np.ascontiguousarray(ldos).reshape(n_points, -1)
    P, F, n_E = len(idx), descriptor.n_features, ldos.shape[-1]
    features = torch.empty((P, F), dtype=dtype)
    target = torch.empty((P, n_E), dtype=dtype)
    starts = range(0, P, int(block))
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="LDOS points", disable=len(starts) < 2)
    pbc = getattr(result, "pbc", True)
    for a in starts:
        b = min(a + int(block), P)
        features[a:b] = point_features(descriptor, points[a:b], positions=result.positions, numbers=result.numbers,
                                       cell=cell, pbc=pbc, dtype=torch.float64, chunk_size=chunk_size).to(dtype)
        target[a:b] = torch.from_numpy(np.asarray(rows[idx[a:b]])).to(dtype)
    volume = getattr(result, "voxel_volume", None)
    if volume is None:
        volume = float(abs(np.linalg.det(cell))) / n_points
    return LDOSPoints(features=features, ldos=target, indices=idx, energies=energies, grid_shape=shape,
                        voxel_volume=float(volume), n_electrons=float(getattr(result, "n_electrons", math.nan)),
                        kT=float(getattr(result, "kT", math.nan)))


def _subsample(n: int, subsample: int | float | None, seed: int) -> np.ndarray:
    if subsample is None:
        return np.arange(n)
    if isinstance(subsample, (bool, np.bool_)) or not isinstance(subsample, (int, float, np.integer, np.floating)):
        raise InputError(f"subsample must be a number of points, a fraction or None, got {subsample!r}",
                         field="subsample")
    if isinstance(subsample, (float, np.floating)):
        if not 0 < subsample <= 1:
            raise InputError(f"a fraction of the points must lie in (0, 1], got {subsample!r}", field="subsample")
        k = max(1, int(round(float(subsample) * n)))
    else:
        k = int(subsample)
        if not 1 <= k <= n:
            raise InputError(f"subsample must be between 1 and the {n} grid points, got {k}", field="subsample")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


# -------------------------------------------------------------------------------------- objective
class LDOSObjective(Objective):
    """An :class:`~mlexplore.models.ldos_net.LDOSNet` on grid points, for
    :func:`~mlexplore.training.engine.train_loop`.

    A sample is a grid point: ``n_train`` is the number of training rows and the loop's index
    batches pick rows of ``features (P, F)`` and ``ldos (P, n_E)``. The loss is one
    :class:`~mlexplore.training.engine.Output` (``"ldos"``, reduction ``"mse"``)::

        L = w · mean_{points, energies} (z_θ(x) − (d − shift) / scale)²

    with ``z_θ`` the network's output on the scaled features (MALA's loss: the MSE of the scaled
    LDOS). The epoch's training loss and ``ldos_rmse`` (states / (eV Å³)) are accumulated over its
    mini-batches as they are trained (as :class:`~mlexplore.training.fit.PotentialObjective`
    does); the validation ones are computed after the epoch in chunks of ``eval_chunk`` points.

    ``device`` (the loop's) is where the rows are, so the loop's permutation indexes them without a
    transfer; batches go to the model's device.
    """

    def __init__(self, model: LDOSNet, features: torch.Tensor, ldos: torch.Tensor,
                 val: tuple[torch.Tensor, torch.Tensor] | None = None, batch_size: int = 1024,
                 weight: float = 1.0, eval_chunk: int = PREDICT_CHUNK) -> None:
        self.model = model
        self.x, self.y = features, ldos
        self.val = val
        self.outputs = [Output("ldos", float(weight), "mse")]
        self.n_train, self.batch_size = int(features.shape[0]), int(batch_size)
        self.eval_chunk = int(eval_chunk)
        self.device = features.device  # where the loop draws its batch order: the rows' device
        self.model_device = model.output_scale.device
        # the epoch's sums of squares (up to 10⁹–10¹⁰ terms) in float64 where the device has it
        self.sum_dtype = torch.float32 if self.model_device.type == "mps" else torch.float64
        self.best_state = copy.deepcopy(model.state_dict())

    def parameters(self) -> list[torch.Tensor]:
        return list(self.model.net.parameters())

    def train_mode(self, training: bool) -> None:
        self.model.train(training)

    def losses(self, x: torch.Tensor, y: torch.Tensor
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Loss, its part by output, and the summed squared residuals of a batch of rows: scaled
        (the loss's units) and in states / (eV Å³)."""
        x = x.to(self.model_device, non_blocking=True)
        y = y.to(self.model_device, non_blocking=True)
        residual = self.model(x, scaled=True) - self.model.scale_ldos(y)
        part, squared = output_loss(residual, self.outputs[0].reduction)
        parts = {"ldos": part}
        physical = (residual.detach() * self.model.output_scale) ** 2
        return (total_loss(parts, self.outputs), parts, squared.detach().sum(dtype=self.sum_dtype),
                physical.sum(dtype=self.sum_dtype))

    @staticmethod
    def _add(acc: dict, sse: torch.Tensor, sse_physical: torch.Tensor, count: int) -> None:
        acc["sse"] = acc.get("sse", 0.0) + sse
        acc["sse_physical"] = acc.get("sse_physical", 0.0) + sse_physical
        acc["count"] = acc.get("count", 0) + count

    def _summarise(self, acc: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = acc["count"]
        mse = float(acc["sse"]) / n
        loss = self.outputs[0].weight * (mse if self.outputs[0].reduction == "mse" else math.sqrt(mse))
        return np.array([loss]), {"ldos_rmse": np.array([math.sqrt(float(acc["sse_physical"]) / n)])}

    def batch_loss(self, idx: torch.Tensor, sums: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, parts, sse, sse_physical = self.losses(self.x[idx], self.y[idx])
        self._add(sums, sse, sse_physical, len(idx) * self.model.n_energies)
        return loss, parts

    def train_scores(self, sums: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._summarise(sums)

    def validation_scores(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        if self.val is None:
            return None
        x, y = self.val
        acc: dict = {}
        with torch.no_grad():
            for a in range(0, x.shape[0], self.eval_chunk):
                _, _, sse, sse_physical = self.losses(x[a:a + self.eval_chunk], y[a:a + self.eval_chunk])
                self._add(acc, sse, sse_physical, min(self.eval_chunk, x.shape[0] - a) * self.model.n_energies)
        return self._summarise(acc)

    def remember_best(self, member: int) -> None:
        self.best_state = copy.deepcopy(self.model.state_dict())

    def restore_best(self) -> None:
        self.model.load_state_dict(self.best_state)

    def describe_nonfinite(self, idx: torch.Tensor, loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> str:
        return f"{super().describe_nonfinite(idx, loss, parts)}; grid points (rows) {idx[:10].tolist()}"

    def save_checkpoint(self, path: Path, extra: dict) -> None:
        save_model(self.model, path, extra=extra)

    def progress_postfix(self, metrics: dict[str, np.ndarray]) -> dict[str, str]:
        return {"val ldos rmse": f"{float(metrics['ldos_rmse'][0]):.3g}"}


# ---------------------------------------------------------------------------------- entry points
def _as_rows(data: Any, name: str, width: int, what: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``data`` as a ``(P, width)`` tensor of ``dtype`` on ``device`` (no copy when it already is one)."""
    if isinstance(data, torch.Tensor):
        t = data.detach()
    else:
        try:
            a = np.asarray(data)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be an array of numbers", field=name) from None
        if a.dtype.kind not in "fiu":
            raise InputError(f"{name} must be numbers, got dtype {a.dtype}", field=name)
        t = torch.from_numpy(np.ascontiguousarray(a)) if a.dtype.kind == "f" else torch.as_tensor(a)
    if t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"{name} must be real numbers, got {t.dtype}", field=name)
    if t.dim() != 2 or t.shape[1] != width:
        raise InputError(f"{name} must have shape (P, {width}) ({what}), got {tuple(t.shape)}", field=name)
    if t.shape[0] == 0:
        raise InputError(f"{name} is empty (no points)", field=name)
    return t.to(device=device, dtype=dtype)


def _pair(features: Any, ldos: Any, model: LDOSNet, names: tuple[str, str], device: torch.device,
          dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    x = _as_rows(features, names[0], model.n_features, "the model's n_features", device, dtype)
    y = _as_rows(ldos, names[1], model.n_energies, "one value per energy of the model", device, dtype)
    if x.shape[0] != y.shape[0]:
        raise InputError(f"{names[1]} has {y.shape[0]} points, {names[0]} {x.shape[0]}", field=names[1])
    return x, y


_DEF = LDOS_DEFAULTS


def fit_ldos(model: LDOSNet, features: Any, ldos: Any,
             val: tuple[Any, Any] | LDOSPoints | None = None, *,
             epochs: int = _DEF.epochs, lr: float = _DEF.lr, batch_size: int = _DEF.batch_size,
             weight_decay: float = 0.0, patience: int | None = _DEF.patience, lr_patience: int | None = None,
             device: Any = "auto", dtype: torch.dtype = _DEF.dtype, seed: int = 0, fit_scalers: bool = True,
             data_on_device: bool = False, refit_output: bool = True,
             checkpoint_dir: str | os.PathLike | None = None,
             callback: Callable[[int, History], bool | None] | None = None, progress: bool = True) -> History:
    """Train ``model`` on grid points; returns the :class:`~mlexplore.training.engine.History`.

    Runs :func:`~mlexplore.training.engine.train_loop` on an :class:`LDOSObjective` (defaults:
    :data:`LDOS_DEFAULTS`). The model ends with the weights of its best validation epoch.

    Parameters
    ----------
    model : LDOSNet
        The network; moved to ``device`` and ``dtype``.
    features, ldos : array_like or torch.Tensor
        Training rows: ``(P, F)`` descriptors and ``(P, n_E)`` LDOS in states / (eV Å³) (e.g.
        :func:`ldos_points`'s, several snapshots concatenated with ``torch.cat``).
    val : (features, ldos) or LDOSPoints, optional
        Validation rows: early stopping, the best weights and ``val_ldos_rmse`` come from them
        (without them, from the training loss of each epoch).
    epochs, lr, weight_decay, patience, lr_patience :
        As :func:`~mlexplore.training.engine.train_loop` (Adam; ``patience`` epochs without a
        better validation loss stop training; ``lr_patience`` halves the rate on a plateau).
    batch_size : int
        Grid points per mini-batch; the loop reshuffles them every epoch (seeded by ``seed``).
    device, dtype :
        Where and in what precision the model is trained (default: CUDA when available; float32).
    seed : int
        Seed of the mini-batch order. The initial weights are the model's: seed torch before
        building it (``torch.manual_seed``) for a reproducible run.
    fit_scalers : bool
        Fit the model's input and output scaling on the training rows first (False: keep the
        present ones, e.g. to continue training).
    data_on_device : bool
        Move the rows to ``device`` once (fast on a GPU when they fit) instead of keeping them
        where they are and moving each mini-batch.
    refit_output : bool
        After the loop, replace the last layer by its least-squares optimum on the training rows
        (:func:`refit_output_layer`: it removes the mean bias that matters most for the observables,
        even where it raises the validation MSE a little). Not after an interrupted run.
    checkpoint_dir :
        Where ``best.pt`` and ``last.pt`` are written (:func:`~mlexplore.training.save_model`);
        ``best.pt`` ends as the returned model (with the refit output layer).
    callback :
        ``callback(epoch, history)`` after every epoch; returning False stops.
    progress : bool
        Show the progress bar.

    Returns
    -------
    History
        Per epoch: ``train_loss``/``val_loss`` (mean square of the scaled LDOS residual),
        ``metrics["train_ldos_rmse"]``/``["val_ldos_rmse"]`` in states / (eV Å³), ``seconds``.
    """
    if not isinstance(model, LDOSNet):
        raise InputError(f"fit_ldos trains an LDOSNet, got {type(model).__name__}", field="model")
    check_training_options(epochs, lr, batch_size=batch_size, patience=patience, weight_decay=weight_decay,
                           seed=seed)
    if lr_patience is not None:
        check_whole(lr_patience, "lr_patience", 0)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InputError(f"dtype must be a torch floating-point type, got {dtype!r}", field="dtype")
    device = resolve_device(device)
    rows_on = device if data_on_device else torch.device("cpu")
    if isinstance(features, torch.Tensor) and not data_on_device:
        rows_on = features.device  # tensors stay where they are
    x, y = _pair(features, ldos, model, ("features", "ldos"), rows_on, dtype)
    if val is not None:
        v_x, v_y = (val.features, val.ldos) if isinstance(val, LDOSPoints) else _unpack_val(val)
        val = _pair(v_x, v_y, model, ("val", "val"), rows_on, dtype)
    model.to(device=device, dtype=dtype)
    if fit_scalers:
        model.fit_scalers(x, y)
    objective = LDOSObjective(model, x, y, val, batch_size=batch_size)
    history = train_loop(objective, epochs=epochs, lr=lr, weight_decay=weight_decay, patience=patience,
                         lr_patience=lr_patience, seeds=[seed], callbacks=callback, progress=progress,
                         desc="LDOS network", checkpoint_dir=checkpoint_dir)[0]
    if refit_output and not history.interrupted:
        refit_output_layer(model, x, y)
        if checkpoint_dir is not None:
            save_model(model, Path(checkpoint_dir) / "best.pt",
                       extra={"history": history.as_dict(), "epoch": history.best_epoch, "refit_output": True})
    return history


@torch.no_grad()
def refit_output_layer(model: LDOSNet, features: Any, ldos: Any, ridge: float = 1e-6,
                       chunk: int = PREDICT_CHUNK) -> LDOSNet:
    """Replace the network's last linear layer by its least-squares optimum on the training rows.

    With the hidden layers fixed, the loss of :class:`LDOSObjective` (mean square of the scaled LDOS
    residual) is quadratic in the last layer's weights and bias, so its minimum is one linear solve:
    ``[W b] = (HᵀH + λ I)⁻¹ Hᵀ Z`` with ``H`` the last hidden layer's activations of every training
    point (a column of ones appended) and ``Z`` the scaled LDOS; ``λ = ridge × mean(diag HᵀH)``.
    The sums run in float64 over ``chunk`` points at a time (memory ``(h + 1)²`` and ``(h + 1) × n_E``).

    Why: the observables are sums over the whole grid, so what matters most is the network's *mean*
    LDOS, and gradient descent stopped early leaves it biased. A bias of 0.5 % of the occupied states
    moves E_F by ~40 meV and the band energy by ~70 meV/atom in a 32-atom Al cell (E_b − N E_F is
    what a count error scales); at the least-squares optimum the training residual has zero mean at
    every energy. Measured (Al 933 K, 3 training snapshots, ``wide-6A`` of ``scripts/ldos_study.py``
    — a 6 Å set of 15 G2 and 4 G4 —, 60 epochs; three held-out snapshots): electron-count error at the DFT Fermi level from −0.25/−0.44/−0.36 to
    +0.06/−0.11/−0.05 electrons of 96, band energy from +45/+81/+67 to −25/+7/−3 meV/atom, density
    MAPE from 1.04/3.06/1.23 % to 1.01/2.67/1.10 %.

    Returns the model (changed in place).
    """
    if not isinstance(model, LDOSNet):
        raise InputError(f"refit_output_layer needs an LDOSNet, got {type(model).__name__}", field="model")
    check_positive(ridge, "ridge", zero=True)
    check_whole(chunk, "chunk", 1)
    dtype, device = model.output_scale.dtype, model.output_scale.device
    x, y = _pair(features, ldos, model, ("features", "ldos"), torch.device("cpu"), dtype)
    body, last = model.net[:-1], model.net[-1]
    width = last.in_features + 1
    gram = torch.zeros((width, width), dtype=torch.float64, device=device)
    cross = torch.zeros((width, model.n_energies), dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    try:
        for a in range(0, x.shape[0], int(chunk)):
            xb, yb = x[a:a + chunk].to(device), y[a:a + chunk].to(device)
            h = body(model.scale_features(xb)).double()
            h = torch.cat([h, torch.ones((h.shape[0], 1), dtype=h.dtype, device=device)], 1)
            gram += h.T @ h
            cross += h.T @ model.scale_ldos(yb).double()
    finally:
        model.train(was_training)
    gram += float(ridge) * gram.diagonal().mean() * torch.eye(width, dtype=torch.float64, device=device)
    solution = torch.linalg.solve(gram, cross)
    if not torch.isfinite(solution).all():
        raise InputError("the least-squares output layer is not finite (degenerate hidden activations): "
                         "raise ridge", field="ridge")
    last.weight.copy_(solution[:-1].T.to(dtype))
    last.bias.copy_(solution[-1].to(dtype))
    return model


def _unpack_val(val: Any) -> tuple[Any, Any]:
    if not (isinstance(val, (tuple, list)) and len(val) == 2):
        raise InputError("val must be a (features, ldos) pair or an LDOSPoints", field="val")
    return val[0], val[1]


def predict_ldos(model: LDOSNet, features: Any, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """The model's LDOS at every point, ``(P, n_E)`` in states / (eV Å³), as a numpy array of the
    model's precision.

    ``features`` ``(P, F)`` (array or tensor, anywhere) are evaluated ``chunk`` points at a time on
    the model's device, without gradients, in evaluation mode; the result is filled into one CPU
    array (no concatenation of the pieces). ``P = 0`` gives a ``(0, n_E)`` array. For the
    observables of a snapshot predict all its points (in grid order) and pass the result to
    :func:`~mlexplore.analysis.ldos.ldos_observables`.
    """
    if not isinstance(model, LDOSNet):
        raise InputError(f"predict_ldos needs an LDOSNet, got {type(model).__name__}", field="model")
    chunk = check_whole(chunk, "chunk", 1)
    dtype, device = model.output_scale.dtype, model.output_scale.device
    if isinstance(features, torch.Tensor):
        x = features.detach()
    else:
        a = np.asarray(features)
        if a.dtype.kind not in "fiu":
            raise InputError(f"features must be numbers, got dtype {a.dtype}", field="features")
        x = torch.from_numpy(np.ascontiguousarray(a)) if a.dtype.kind == "f" else torch.as_tensor(a)
    if x.dim() != 2 or x.shape[1] != model.n_features:
        raise InputError(f"features must have shape (P, {model.n_features}), got {tuple(x.shape)}", field="features")
    out = torch.empty((x.shape[0], model.n_energies), dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for a in range(0, x.shape[0], chunk):
                out[a:a + chunk] = model(x[a:a + chunk].to(device=device, dtype=dtype)).cpu()
    finally:
        model.train(was_training)
    return out.numpy()


def predict_snapshot(model: LDOSNet, result: Any, descriptor: SymmetryFunctions | None = None, *,
                     grid_shape: tuple[int, int, int] | None = None, block: int = 1 << 16, chunk_size: int = 2048,
                     device: Any = None, progress: bool = False) -> np.ndarray:
    """The model's LDOS on every grid point of a structure, ``(nx, ny, nz, n_E)`` in states / (eV Å³).

    What a user of the surrogate runs in place of DFT: the points of the grid are featurised
    ``block`` at a time (:func:`~mlexplore.descriptors.points.point_features`) and each block goes
    straight through the network (:func:`predict_ldos`), so memory stays ``block × (F + n_E)``
    besides the result. Pass the result to :func:`~mlexplore.analysis.ldos_observables`.

    Parameters
    ----------
    model : LDOSNet
        The trained network.
    result : LDOSResult, snapshot, or ase.Atoms
        The structure: an :class:`~mlexplore.dft.ldos.LDOSResult` or a snapshot of
        :mod:`mlexplore.dft.ldos_data` (its grid is used), or any object with ``cell``,
        ``positions``, ``numbers`` (and ``pbc``, default periodic), or an ``ase.Atoms`` with
        ``grid_shape``.
    descriptor : SymmetryFunctions, optional
        Default: the model's own (saved with it).
    grid_shape : (nx, ny, nz), optional
        The grid; default that of ``result.ldos`` / ``result.grid_shape``.
    block, chunk_size :
        Points per network call, and per neighbour search inside it (the memory knobs).
    device :
        Where the features are computed (default: the model's device).
    progress : bool
        Show a progress bar over the blocks.
    """
    if not isinstance(model, LDOSNet):
        raise InputError(f"predict_snapshot needs an LDOSNet, got {type(model).__name__}", field="model")
    descriptor = descriptor if descriptor is not None else model.descriptor
    if not isinstance(descriptor, SymmetryFunctions):
        raise InputError("the model has no descriptor saved with it: pass descriptor=", field="descriptor")
    if descriptor.n_features != model.n_features:
        raise InputError(f"the descriptor has {descriptor.n_features} features, the model takes {model.n_features}",
                         field="descriptor")
    check_whole(block, "block", 1)
    if not hasattr(result, "ldos") and hasattr(result, "result"):
        result = result.result
    if isinstance(result, Atoms):
        cell, positions, numbers, pbc = result.cell.array, result.positions, result.numbers, result.pbc
    else:
        for name in ("cell", "positions", "numbers"):
            if getattr(result, name, None) is None:
                raise InputError(f"the structure needs {name!r} (an LDOSResult or an ase.Atoms has it)",
                                 field="result")
        cell, positions, numbers = result.cell, result.positions, result.numbers
        pbc = getattr(result, "pbc", True)
    if grid_shape is None:
        ldos = getattr(result, "ldos", None)
        grid_shape = tuple(ldos.shape[:3]) if ldos is not None else getattr(result, "grid_shape", None)
    if grid_shape is None or len(grid_shape) != 3:
        raise InputError(f"grid_shape must be (nx, ny, nz), got {grid_shape!r}", field="grid_shape")
    shape = tuple(check_whole(n, "grid_shape", 1) for n in grid_shape)
    model_device = model.output_scale.device
    device = model_device if device is None else resolve_device(device)
    points = grid_points(np.asarray(cell, dtype=np.float64), shape, device=device)
    n = points.shape[0]
    out = np.empty((n, model.n_energies), dtype=torch.empty((), dtype=model.output_scale.dtype).numpy().dtype)
    starts = range(0, n, int(block))
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="LDOS prediction", disable=len(starts) < 2)
    for a in starts:
        b = min(a + int(block), n)
        x = point_features(descriptor, points[a:b], positions=positions, numbers=numbers, cell=cell, pbc=pbc,
                           dtype=torch.float64, chunk_size=chunk_size)
        out[a:b] = predict_ldos(model, x)
    return out.reshape(*shape, model.n_energies)

"""Training a potential: ``fit``, ``predict`` and the training history.

``fit`` normalises inputs and targets from the training set (SPEC §5: feature
scaling, per-element energy baseline by least squares, energy scale), trains
with Adam on mini-batches of structures, energy and (optionally) force losses
with a force weight (004 §3.4), reduces the learning rate on plateaus, stops
early on the validation loss, keeps the best model, writes best/last
checkpoints atomically, and stops cleanly on Ctrl-C keeping the best model.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset
from ..descriptors.derivatives import derivative_bytes, feature_derivatives
from ..descriptors.neighbors import Neighbors, neighbor_pairs
from ..descriptors.scalers import EnergyBaseline, Scaler
from ..errors import InputError
from ..models.bpnn import BPNN
from .checkpoint import save_model
from .engine import (DEFAULTS, History, Objective, Output, TrainingError, atoms_of, check_training_options,
                     output_loss, outputs_from, resolve_device, total_loss, train_loop)
from .potential import Potential, model_place

__all__ = ["fit", "predict", "History", "TrainingError", "resolve_device", "atoms_of", "PotentialObjective",
           "PreparedSet", "prepare_sets", "check_targets", "set_normalisation", "loss_outputs", "plateau_patience",
           "DERIVATIVE_MEMORY"]


class PreparedSet:
    """A dataset as tensors on the device with its neighbour list built once.

    With ``cache_features`` (a descriptor without trainable parameters) the descriptor is
    evaluated once here, in chunks of structures, and every batch carries its rows of
    ``features`` instead of being featurised again each epoch. With ``derivatives`` as well (force
    training) each pair's feature derivatives are stored too
    (:func:`~mlexplore.descriptors.derivatives.feature_derivatives`) and batches carry them as
    ``feature_derivatives`` with their pairs as ``neighbors``: the model's forces are then a
    contraction (:func:`~mlexplore.descriptors.derivatives.forces_from_derivatives`) instead of a
    double backward pass through the descriptor — the same numbers. ``max_derivative_bytes``: keep
    nothing (evaluate the descriptor every batch) when the derivatives would take more.
    """

    def __init__(self, model: BPNN, ds: StructureDataset, device, dtype, targets: Sequence[str],
                 cache_features: bool = False, chunk: int = 64, derivatives: bool = False,
                 max_derivative_bytes: int | None = None):
        sf = model.descriptor
        self.ds = ds
        self.tensors = sf.prepare(ds, device=device, dtype=dtype)
        t = self.tensors
        self.nb = neighbor_pairs(t["positions"], t["cells"], t["pbc"], t["n_atoms"], sf.neighbor_cutoff,
                                 method=sf.neighbor_method)
        self.atom_offsets = torch.as_tensor(ds.offsets, device=device)
        self.structure_of_atom = torch.repeat_interleave(torch.arange(len(ds), device=device), t["n_atoms"])
        self.labels = {name: torch.as_tensor(ds.label(name), dtype=dtype, device=device) for name in targets}
        self.features = self.derivatives = None
        if derivatives and not cache_features:
            raise InputError("stored derivatives come with stored features (cache_features=True)", field="derivatives")
        if derivatives and max_derivative_bytes is not None and \
                derivative_bytes(len(self.nb), sf.n_features, dtype) > max_derivative_bytes:
            cache_features = derivatives = False  # too large to keep: the descriptor runs every batch instead
        if cache_features:
            parts, grads = [], torch.zeros((len(self.nb), sf.n_features, 3), dtype=dtype, device=device) \
                if derivatives else None
            with torch.no_grad():
                for start in range(0, len(ds), chunk):
                    b, _, pairs = self._cut(torch.arange(start, min(start + chunk, len(ds)), device=device))
                    if derivatives:
                        g, grads[pairs] = feature_derivatives(sf, b, b["neighbors"])
                    else:
                        g = sf(b["positions"], b["numbers"], b["cells"], b["pbc"], b["n_atoms"],
                               magmoms=b.get("magmoms"), neighbors=b["neighbors"])
                    parts.append(g)
            self.features, self.derivatives = torch.cat(parts), grads

    def chunks(self, step: int):
        """``(idx, batch, labels)`` for consecutive pieces of at most ``step`` structures (validation)."""
        n = len(self.ds)
        for start in range(0, n, step):
            idx = torch.arange(start, min(start + step, n), device=self.atom_offsets.device)
            yield (idx, *self.batch(idx))

    def _cut(self, idx: torch.Tensor) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """The structures ``idx`` (sorted) as a batch with their own renumbered neighbour list, their
        flat atom indices and the indices of their pairs in the set's list."""
        t = self.tensors
        counts = t["n_atoms"][idx]
        atom_idx = atoms_of(self.atom_offsets, idx)
        keep = torch.zeros(len(self.ds), dtype=torch.bool, device=idx.device)
        keep[idx] = True
        pairs = torch.nonzero(keep[self.structure_of_atom[self.nb.centers]], as_tuple=True)[0]
        remap = torch.full((len(self.structure_of_atom),), -1, dtype=torch.long, device=idx.device)
        remap[atom_idx] = torch.arange(len(atom_idx), device=idx.device)
        nb = Neighbors(centers=remap[self.nb.centers[pairs]], neighbors=remap[self.nb.neighbors[pairs]],
                       shifts=self.nb.shifts[pairs], cutoff=self.nb.cutoff)
        batch = {"positions": t["positions"][atom_idx].clone(), "numbers": t["numbers"][atom_idx],
                 "cells": t["cells"][idx], "pbc": t["pbc"][idx], "n_atoms": counts, "neighbors": nb}
        if "magmoms" in t:  # spin terms: the moments are an input, like the positions
            batch["magmoms"] = t["magmoms"][atom_idx]
        return batch, atom_idx, pairs

    def batch(self, idx: torch.Tensor) -> tuple[dict, dict]:
        """Tensors, neighbours and labels of the structures ``idx`` (sorted), renumbered."""
        t = self.tensors
        idx = torch.sort(idx).values
        if self.features is not None and self.derivatives is None:
            atom_idx = atoms_of(self.atom_offsets, idx)
            batch = {"features": self.features[atom_idx], "numbers": t["numbers"][atom_idx],
                     "n_atoms": t["n_atoms"][idx]}
        else:
            batch, atom_idx, pairs = self._cut(idx)
            if self.derivatives is not None:
                batch = {"features": self.features[atom_idx], "feature_derivatives": self.derivatives[pairs],
                         "neighbors": batch["neighbors"], "numbers": batch["numbers"], "n_atoms": batch["n_atoms"]}
        labels = {name: value[atom_idx] if self.ds.is_per_atom(name) else value[idx]
                  for name, value in self.labels.items()}
        return batch, labels

#: stored feature derivatives larger than this (bytes, per set) are not kept by default: the
#: descriptor is evaluated every batch instead (``cache_features=True`` keeps them whatever their size)
DERIVATIVE_MEMORY = 2 * 1024 ** 3


def prepare_sets(model, train: StructureDataset, val: StructureDataset | None, device, dtype,
                 targets: Sequence[str], cache_features: bool | None = None
                 ) -> tuple[PreparedSet, PreparedSet | None]:
    """The training and validation sets of a fit, with the descriptor evaluated once where that gives
    the same numbers (see ``cache_features`` of :func:`fit`)."""
    need_forces = "forces" in targets
    fixed = not any(p.requires_grad for p in model.descriptor.parameters())
    if cache_features and not fixed:
        raise InputError("cache_features needs a descriptor without trainable parameters (their gradients come "
                         "from evaluating it)", field="cache_features")
    cache = fixed if cache_features is None else bool(cache_features)

    def one(ds: StructureDataset) -> PreparedSet:
        return PreparedSet(model, ds, device, dtype, targets, cache_features=cache, derivatives=cache and need_forces,
                           max_derivative_bytes=DERIVATIVE_MEMORY if cache_features is None else None)

    return one(train), (one(val) if val is not None else None)


def __getattr__(name: str):
    if name == "_PreparedSet":  # the former private name, reached by code of earlier releases
        import warnings

        warnings.warn("mlexplore.training.fit._PreparedSet is deprecated: use mlexplore.training.fit.PreparedSet",
                      DeprecationWarning, stacklevel=2)
        return PreparedSet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_targets(ds: StructureDataset, targets: Sequence[str], what: str) -> None:
    if len(ds) == 0:
        raise InputError(f"the {what} set is empty", field=what)
    for name in targets:
        if name not in ds:
            raise InputError(f"target {name!r} is not in the {what} set (it has: {', '.join(ds.label_names)})",
                             field="targets")


def loss_outputs(model: BPNN, targets: Sequence[str], loss_weights: dict[str, float] | None) -> list[Output]:
    """The loss terms of a potential fit in a fixed order (energy, forces, then the model's per-atom
    heads), each with its weight."""
    order = [t for t in ("energy", "forces") if t in targets] + [t for t in model.atom_outputs if t in targets]
    return outputs_from(order, loss_weights, "mse")


def plateau_patience(lr_patience: int | None, patience: int | None) -> int:
    """``lr_patience`` or its default: a third of ``patience`` (30 without one), at least 5."""
    return lr_patience if lr_patience is not None else max(5, (patience or 30) // 3)


def check_targets(model: BPNN, train: StructureDataset, val: StructureDataset | None, targets: Sequence[str]) -> None:
    """Refuse targets the sets do not have or the model cannot predict, naming them."""
    _check_targets(train, targets, "training")
    if val is not None:
        _check_targets(val, targets, "validation")
    for name in targets:
        if name not in ("energy", "forces") and name not in model.atom_outputs:
            raise InputError(f"the model has no output for target {name!r} (outputs: energy, forces, "
                             f"{', '.join(model.atom_outputs) or 'no per-atom heads'})", field="targets")
    if "energy" in targets and "energy" not in train.structure_labels:
        raise InputError("'energy' must be a per-structure label", field="targets")


def set_normalisation(model: BPNN, train: StructureDataset, device, dtype, feature_scaling: str,
               pca_init: int | None, features: torch.Tensor | None = None) -> None:
    """Set the model's scalers, energy baseline and scale from ``train`` (SPEC §5) and record its
    training domain; ``features``: the set's float64 features on the CPU, if computed already."""
    feats = model.descriptor.compute(train, device="cpu", dtype=torch.float64) if features is None else features
    sc = Scaler(feature_scaling).fit(feats)
    model.feature_shift.copy_(torch.as_tensor(sc.shift_))
    model.feature_scale.copy_(torch.as_tensor(sc.scale_))
    model.domain.fit(feats, model.element_index(torch.as_tensor(train.numbers)))  # what extrapolation is measured against
    base = EnergyBaseline().fit(train)
    refs = base.reference_energies
    model.reference_energy.copy_(torch.tensor([refs.get(e, 0.0) for e in model.elements]))
    resid = base.residual(train) / train.n_atoms
    model.energy_scale.fill_(max(float(np.std(resid)), 1e-3))
    if pca_init:
        model.init_from_pca(feats.to(device=model.feature_shift.device, dtype=model.feature_shift.dtype), pca_init)
    for k, name in enumerate(model.atom_outputs):
        v = train.label(name)
        model.output_shift[k] = float(np.mean(v))
        model.output_scale[k] = max(float(np.std(v)), 1e-6)


class PotentialObjective(Objective):
    """A :class:`~mlexplore.models.BPNN` on energies, forces (by autograd) and per-atom outputs, for
    :func:`~mlexplore.training.engine.train_loop`. Residuals are scaled as :func:`fit` documents."""

    def __init__(self, model: BPNN, train: PreparedSet, val: PreparedSet | None, outputs: Sequence[Output],
                 batch_size: int, device: torch.device):
        self.model, self.train, self.val, self.outputs = model, train, val, list(outputs)
        self.targets = [o.name for o in self.outputs]
        self.need_forces = "forces" in self.targets
        self.n_train, self.batch_size = len(train.ds), int(batch_size)
        self.device = device
        self.best_state = copy.deepcopy(model.state_dict())

    def parameters(self):
        return list(self.model.parameters())

    def train_mode(self, training: bool) -> None:
        self.model.train(training)

    def _losses(self, batch, labels, create_graph: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model, scale = self.model, self.model.energy_scale
        out = model.energy_and_forces(batch, create_graph=create_graph) if self.need_forces else model(batch)
        parts = {}
        for o in self.outputs:
            if o.name == "energy":
                residual = ((out["energy"] - labels["energy"]) / batch["n_atoms"]) / scale
            elif o.name == "forces":
                residual = (out["forces"] - labels["forces"]) / scale
            else:
                residual = (out[o.name] - labels[o.name]) / model.output_scale[model.atom_outputs.index(o.name)]
            parts[o.name] = output_loss(residual, o.reduction)[0]
        return total_loss(parts, self.outputs), parts

    def _accumulate(self, acc: dict, loss: torch.Tensor, parts: dict[str, torch.Tensor], w: int) -> None:
        """Add one batch of ``w`` structures to the running sums (tensors on the device: no host
        synchronisation per batch)."""
        _add_sum(acc, "total", loss.detach() * w)
        acc["count"] = acc.get("count", 0) + w
        for k, v in parts.items():
            _add_sum(acc, k, v.detach() * w)

    def _summarise(self, acc: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The loss and the RMSE per target (energy in meV/atom) of the sums."""
        model, rmse = self.model, {}
        for k, v in acc.items():
            if k in ("total", "count"):
                continue
            unit = 1000.0 if k == "energy" else 1.0
            s = (float(model.energy_scale) if k in ("energy", "forces")
                 else float(model.output_scale[model.atom_outputs.index(k)]))
            rmse[f"{k}_rmse"] = np.array([math.sqrt(float(v) / acc["count"]) * s * unit])
        return np.array([float(acc["total"]) / acc["count"]]), rmse

    def batch_loss(self, idx, sums):
        batch, labels = self.train.batch(idx)
        loss, parts = self._losses(batch, labels, create_graph=True)
        self._accumulate(sums, loss, parts, len(idx))
        return loss, parts

    def train_scores(self, sums):
        # the training loss as the epoch's mini-batches had it (no second pass over the set)
        return self._summarise(sums)

    def validation_scores(self):
        if self.val is None:
            return None
        acc: dict = {}
        for idx, batch, labels in self.val.chunks(max(self.batch_size, 64)):
            with torch.enable_grad() if self.need_forces else torch.no_grad():
                loss, parts = self._losses(batch, labels, create_graph=False)
            self._accumulate(acc, loss, parts, len(idx))
        return self._summarise(acc)

    def remember_best(self, member: int) -> None:
        self.best_state = copy.deepcopy(self.model.state_dict())

    def restore_best(self) -> None:
        self.model.load_state_dict(self.best_state)

    def describe_nonfinite(self, idx, loss, parts) -> str:
        return (f"{super().describe_nonfinite(idx, loss, parts)}; structures "
                f"{self.train.ds.ids[idx.cpu().numpy()].tolist()[:10]}")

    def save_checkpoint(self, path: Path, extra: dict) -> None:
        save_model(self.model, path, extra=extra)

    def progress_postfix(self, metrics):
        return {f"val {k.removesuffix('_rmse')}": f"{float(v[0]):.3g}" for k, v in metrics.items()}


def _add_sum(acc: dict, key: str, value) -> None:
    acc[key] = acc.get(key, 0.0) + value


_DEF = DEFAULTS["potential"]


def fit(
    model: BPNN,
    train: StructureDataset,
    val: StructureDataset | None = None,
    targets: Sequence[str] = ("energy", "forces"),
    loss_weights: dict[str, float] | None = None,
    epochs: int = _DEF.epochs,
    lr: float = _DEF.lr,
    batch_size: int = _DEF.batch_size,
    weight_decay: float = 0.0,
    patience: int | None = _DEF.patience,
    lr_patience: int | None = None,
    feature_scaling: str = "minmax",
    normalise: bool = True,
    device: Any = "auto",
    dtype: torch.dtype = _DEF.dtype,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    pca_init: int | None = None,
    callback: Callable[[int, History], bool | None] | None = None,
    progress: bool = True,
    cache_features: bool | None = None,
) -> History:
    """Train ``model`` on ``train``; returns the :class:`History`. The model ends with the best weights.

    Runs :func:`~mlexplore.training.engine.train_loop` on a :class:`PotentialObjective` (defaults:
    ``DEFAULTS["potential"]``). The history's training loss and RMSEs of an epoch are accumulated
    over its mini-batches as they are trained (as Keras reports them), which saves a pass over the
    training set; the validation ones are computed after the epoch, with its final weights.

    Parameters
    ----------
    targets:
        ``"energy"`` (per-structure, eV), ``"forces"`` (eV/Å, by autograd) and
        any of the model's per-atom outputs.
    loss_weights:
        Weight per target (default 1 each). The loss is
        ``Σ_t w_t · MSE_t`` with energies per atom and forces both divided by
        the energy scale, so a force weight of 1 balances them as n2p2's
        default does; raise it to favour forces (004 §3.4).
    patience:
        Epochs without a better validation loss before stopping (None: never).
    lr_patience:
        Epochs without a better validation loss before the learning rate is halved
        (default: a third of ``patience``, at least 5).
    checkpoint_dir:
        Where ``best.pt`` and ``last.pt`` are written (atomically) during training.
    pca_init:
        Initialise that many first-layer neurons with the principal components of the
        training features (002 §3.2.2; :meth:`BPNN.init_from_pca`).
    callback:
        Called after every epoch with ``(epoch, history)``; return ``False`` to stop.
    cache_features:
        Compute the descriptor once per set and train on the stored values, instead of
        featurising every batch each epoch; with a force target, store each neighbour pair's
        feature derivatives too and take the forces from them (n2p2's way; module
        :mod:`mlexplore.descriptors.derivatives`) instead of a double backward pass through the
        descriptor — the same numbers, 5–10× faster on radial bases. The default (None) does so
        for a descriptor without trainable parameters, the derivatives only when they take at most
        :data:`DERIVATIVE_MEMORY` bytes per set (``pairs × features × 3`` floats). It keeps
        ``atoms × features`` (and ``pairs × features × 3``) values in memory; pass False to save that.
    """
    train = StructureDataset.coerce(train, "train")
    val = None if val is None else StructureDataset.coerce(val, "val")
    targets = list(targets)
    check_training_options(epochs, lr, batch_size=batch_size, patience=patience, weight_decay=weight_decay, seed=seed)
    check_targets(model, train, val, targets)
    outputs = loss_outputs(model, targets, loss_weights)
    device = resolve_device(device)
    model.to(device=device, dtype=dtype)
    if normalise:
        set_normalisation(model, train, device, dtype, feature_scaling, pca_init)
    tr, va = prepare_sets(model, train, val, device, dtype, targets, cache_features)
    objective = PotentialObjective(model, tr, va, outputs, batch_size, device)
    return train_loop(objective, epochs=epochs, lr=lr, weight_decay=weight_decay, patience=patience,
                      lr_patience=plateau_patience(lr_patience, patience),
                      seeds=[seed], callbacks=callback, progress=progress, desc="training",
                      checkpoint_dir=checkpoint_dir)[0]


def predict(model: BPNN, dataset: StructureDataset, forces: bool = True, batch_size: int = 64,
            device: Any = None, dtype: torch.dtype | None = None) -> dict[str, np.ndarray]:
    """Predictions for every structure: ``energy`` (n,) eV, ``energies`` (N,) eV, ``forces`` (N, 3) eV/Å,
    and the model's per-atom outputs. Batched; runs on the model's device and precision unless told
    otherwise. The same as ``Potential(model, device, dtype).predict(dataset, forces, batch_size)``."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    here, precision = model_place(model)
    return Potential(model, device=here if device is None else resolve_device(device),
                     dtype=dtype or precision).predict(dataset, forces=forces, batch_size=batch_size)

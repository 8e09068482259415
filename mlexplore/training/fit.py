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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset
from ..descriptors.neighbors import Neighbors, neighbor_pairs
from ..descriptors.scalers import EnergyBaseline, Scaler
from ..errors import InputError
from ..models.bpnn import BPNN
from .checkpoint import save_model

__all__ = ["fit", "predict", "History", "TrainingError", "resolve_device", "atoms_of"]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says where."""


def resolve_device(device: Any = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class History:
    """Per-epoch record of a training run. Energies in meV/atom, forces in eV/Å."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    interrupted: bool = False
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def add(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(float(value))

    def log_epoch(self, epoch: int, train_loss: float, val_loss: float, lr: float, seconds: float) -> bool:
        """Append one epoch; return True (and remember it) when the validation loss improved."""
        self.epoch.append(epoch)
        self.train_loss.append(float(train_loss))
        self.val_loss.append(float(val_loss))
        self.lr.append(float(lr))
        self.seconds.append(float(seconds))
        if float(val_loss) < self.best_val_loss:
            self.best_val_loss, self.best_epoch = float(val_loss), epoch
            return True
        return False


def _stop_after(history: "History", epoch: int, patience: int | None, callback) -> bool:
    """Run the epoch callback and the early-stopping rule; True when training should stop."""
    if callback is not None and callback(epoch, history) is False:
        return True
    if patience is not None and epoch - history.best_epoch >= patience:
        history.stopped_early = True
        return True
    return False


def atoms_of(offsets: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Flat atom indices of the structures ``idx`` (in that order), given each structure's first atom
    (``offsets``, length n + 1)."""
    counts = offsets[idx + 1] - offsets[idx]
    return (torch.repeat_interleave(offsets[idx] - (torch.cumsum(counts, 0) - counts), counts)
            + torch.arange(int(counts.sum()), device=idx.device))


class _PreparedSet:
    """A dataset as tensors on the device with its neighbour list built once.

    With ``cache_features`` (energy-only training of a descriptor without trainable
    parameters) the descriptor is evaluated once here, in chunks of structures, and every
    batch carries its rows of ``features`` instead of being featurised again each epoch.
    """

    def __init__(self, model: BPNN, ds: StructureDataset, device, dtype, targets: Sequence[str],
                 cache_features: bool = False, chunk: int = 64):
        sf = model.descriptor
        self.ds = ds
        self.tensors = sf.prepare(ds, device=device, dtype=dtype)
        t = self.tensors
        self.nb = neighbor_pairs(t["positions"], t["cells"], t["pbc"], t["n_atoms"], sf.neighbor_cutoff,
                                 method=sf.neighbor_method)
        self.atom_offsets = torch.as_tensor(ds.offsets, device=device)
        self.structure_of_atom = torch.repeat_interleave(torch.arange(len(ds), device=device), t["n_atoms"])
        self.labels = {name: torch.as_tensor(ds.label(name), dtype=dtype, device=device) for name in targets}
        self.features = None
        if cache_features:
            parts = []
            with torch.no_grad():
                for start in range(0, len(ds), chunk):
                    b, _ = self.batch(torch.arange(start, min(start + chunk, len(ds)), device=device))
                    parts.append(sf(b["positions"], b["numbers"], b["cells"], b["pbc"], b["n_atoms"],
                                    magmoms=b.get("magmoms"), neighbors=b["neighbors"]))
            self.features = torch.cat(parts)

    def batch(self, idx: torch.Tensor) -> tuple[dict, dict]:
        """Tensors, neighbours and labels of the structures ``idx`` (sorted), renumbered."""
        t = self.tensors
        idx = torch.sort(idx).values
        counts = t["n_atoms"][idx]
        atom_idx = atoms_of(self.atom_offsets, idx)
        labels = {name: value[atom_idx] if self.ds.is_per_atom(name) else value[idx]
                  for name, value in self.labels.items()}
        if self.features is not None:
            return {"features": self.features[atom_idx], "numbers": t["numbers"][atom_idx], "n_atoms": counts}, labels
        keep = torch.zeros(len(self.ds), dtype=torch.bool, device=idx.device)
        keep[idx] = True
        pair_sel = keep[self.structure_of_atom[self.nb.centers]]
        remap = torch.full((len(self.structure_of_atom),), -1, dtype=torch.long, device=idx.device)
        remap[atom_idx] = torch.arange(len(atom_idx), device=idx.device)
        nb = Neighbors(centers=remap[self.nb.centers[pair_sel]], neighbors=remap[self.nb.neighbors[pair_sel]],
                       shifts=self.nb.shifts[pair_sel], cutoff=self.nb.cutoff)
        batch = {"positions": t["positions"][atom_idx].clone(), "numbers": t["numbers"][atom_idx],
                 "cells": t["cells"][idx], "pbc": t["pbc"][idx], "n_atoms": counts, "neighbors": nb}
        if "magmoms" in t:  # spin terms: the moments are an input, like the positions
            batch["magmoms"] = t["magmoms"][atom_idx]
        return batch, labels


def _check_targets(ds: StructureDataset, targets: Sequence[str], what: str) -> None:
    if len(ds) == 0:
        raise InputError(f"the {what} set is empty", field=what)
    for name in targets:
        if name not in ds:
            raise InputError(f"target {name!r} is not in the {what} set (it has: {', '.join(ds.label_names)})",
                             field="targets")


def _normalise(model: BPNN, train: StructureDataset, device, dtype, feature_scaling: str,
               pca_init: int | None) -> None:
    feats = model.descriptor.compute(train, device="cpu", dtype=torch.float64)
    sc = Scaler(feature_scaling).fit(feats)
    model.feature_shift.copy_(torch.as_tensor(sc.shift_))
    model.feature_scale.copy_(torch.as_tensor(sc.scale_))
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


def fit(
    model: BPNN,
    train: StructureDataset,
    val: StructureDataset | None = None,
    targets: Sequence[str] = ("energy", "forces"),
    loss_weights: dict[str, float] | None = None,
    epochs: int = 200,
    lr: float = 1e-3,
    batch_size: int = 16,
    weight_decay: float = 0.0,
    patience: int | None = 50,
    lr_patience: int | None = None,
    feature_scaling: str = "minmax",
    normalise: bool = True,
    device: Any = "auto",
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    pca_init: int | None = None,
    callback: Callable[[int, History], bool | None] | None = None,
    progress: bool = True,
    cache_features: bool | None = None,
) -> History:
    """Train ``model`` on ``train``; returns the :class:`History`. The model ends with the best weights.

    The history's training loss and RMSEs of an epoch are accumulated over its mini-batches
    as they are trained (as Keras reports them), which saves a pass over the training set;
    the validation ones are computed after the epoch, with its final weights.

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
    checkpoint_dir:
        Where ``best.pt`` and ``last.pt`` are written (atomically) during training.
    pca_init:
        Initialise that many first-layer neurons with the principal components of the
        training features (002 §3.2.2; :meth:`BPNN.init_from_pca`).
    callback:
        Called after every epoch with ``(epoch, history)``; return ``False`` to stop.
    cache_features:
        Compute the descriptor once per set and train on the stored values, instead of
        featurising every batch each epoch. The default (None) does so when it gives the same
        numbers: no force target and no trainable descriptor parameters. It keeps
        ``(atoms × features)`` values in memory; pass False to save that.
    """
    from tqdm.auto import tqdm

    targets = list(targets)
    _check_targets(train, targets, "training")
    if val is not None:
        _check_targets(val, targets, "validation")
    for name in targets:
        if name not in ("energy", "forces") and name not in model.atom_outputs:
            raise InputError(f"the model has no output for target {name!r} (outputs: energy, forces, "
                             f"{', '.join(model.atom_outputs) or 'no per-atom heads'})", field="targets")
    if "energy" in targets and "energy" not in train.structure_labels:
        raise InputError("'energy' must be a per-structure label", field="targets")
    weights = {t: 1.0 for t in targets}
    weights.update(loss_weights or {})
    device = resolve_device(device)
    torch_gen = torch.Generator().manual_seed(seed)
    model.to(device=device, dtype=dtype)
    if normalise:
        _normalise(model, train, device, dtype, feature_scaling, pca_init)
    need_forces = "forces" in targets
    # energies (and per-atom outputs) only, of a fixed descriptor: featurise once, not every epoch
    can_cache = not need_forces and not any(p.requires_grad for p in model.descriptor.parameters())
    if cache_features and not can_cache:
        raise InputError("cache_features needs energy-only targets (forces come from the descriptor's gradient) "
                         "and a descriptor without trainable parameters", field="cache_features")
    cache = can_cache if cache_features is None else bool(cache_features)
    tr = _PreparedSet(model, train, device, dtype, targets, cache_features=cache)
    va = _PreparedSet(model, val, device, dtype, targets, cache_features=cache) if val is not None else None
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=lr_patience if lr_patience is not None else max(5, (patience or 30) // 3))
    history = History()
    best_state = copy.deepcopy(model.state_dict())
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    scale = model.energy_scale

    def losses(batch, labels, create_graph: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model.energy_and_forces(batch, create_graph=create_graph) if need_forces else model(batch)
        parts = {}
        if "energy" in targets:
            parts["energy"] = (((out["energy"] - labels["energy"]) / batch["n_atoms"]) / scale).pow(2).mean()
        if need_forces:
            parts["forces"] = ((out["forces"] - labels["forces"]) / scale).pow(2).mean()
        for name in model.atom_outputs:
            if name in targets:
                k = model.atom_outputs.index(name)
                parts[name] = ((out[name] - labels[name]) / model.output_scale[k]).pow(2).mean()
        total = sum(weights[t] * v for t, v in parts.items())
        return total, parts

    def accumulate(acc: dict, loss: torch.Tensor, parts: dict[str, torch.Tensor], w: int) -> None:
        """Add one batch of ``w`` structures to the running sums ``acc`` (kept as tensors on the
        device: no host synchronisation per batch)."""
        acc["total"] = acc.get("total", 0.0) + loss.detach() * w
        acc["count"] = acc.get("count", 0) + w
        for k, v in parts.items():
            acc[k] = acc.get(k, 0.0) + v.detach() * w

    def summarise(acc: dict) -> tuple[float, dict[str, float]]:
        """The loss and the RMSE per target (energy in meV/atom) of the sums."""
        rmse = {}
        for k, v in acc.items():
            if k in ("total", "count"):
                continue
            unit = 1000.0 if k == "energy" else 1.0
            s = float(scale) if k in ("energy", "forces") else float(model.output_scale[model.atom_outputs.index(k)])
            rmse[k] = math.sqrt(float(v) / acc["count"]) * s * unit
        return float(acc["total"]) / acc["count"], rmse

    def evaluate(ps: _PreparedSet) -> tuple[float, dict[str, float]]:
        model.eval()
        acc: dict = {}
        n = len(ps.ds)
        for start in range(0, n, max(batch_size, 64)):
            idx = torch.arange(start, min(start + max(batch_size, 64), n), device=device)
            batch, labels = ps.batch(idx)
            with torch.enable_grad() if need_forces else torch.no_grad():
                loss, parts = losses(batch, labels, create_graph=False)
            accumulate(acc, loss, parts, len(idx))
        return summarise(acc)

    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress)
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(len(train), generator=torch_gen).to(device)
            running: dict = {}
            for b, start in enumerate(range(0, len(train), batch_size)):
                idx = order[start:start + batch_size]
                batch, labels = tr.batch(idx)
                opt.zero_grad(set_to_none=True)
                loss, parts = losses(batch, labels, create_graph=True)
                if not torch.isfinite(loss):
                    bad = [k for k, v in parts.items() if not torch.isfinite(v)] or list(parts)
                    raise TrainingError(f"the loss became {float(loss.detach())} at epoch {epoch}, batch {b} "
                                        f"(target {', '.join(bad)}); lower the learning rate or check the labels "
                                        f"of structures {train.ids[idx.cpu().numpy()].tolist()[:10]}")
                loss.backward()
                opt.step()
                accumulate(running, loss, parts, len(idx))
            # the training loss as the epoch's mini-batches had it (no second pass over the set)
            train_loss, train_rmse = summarise(running)
            val_loss, val_rmse = evaluate(va) if va is not None else (train_loss, train_rmse)
            sched.step(val_loss)
            improved = history.log_epoch(epoch, train_loss, val_loss, opt.param_groups[0]["lr"],
                                         time.perf_counter() - t0)
            for k, v in train_rmse.items():
                history.add(f"train_{k}_rmse", v)
            for k, v in val_rmse.items():
                history.add(f"val_{k}_rmse", v)
            if improved:
                best_state = copy.deepcopy(model.state_dict())
                if ckpt is not None:
                    save_model(model, ckpt / "best.pt", extra={"history": history.as_dict(), "epoch": epoch})
            if ckpt is not None:
                save_model(model, ckpt / "last.pt", extra={"history": history.as_dict(), "epoch": epoch})
            bar.set_postfix({f"val {k}": f"{v:.3g}" for k, v in val_rmse.items()})
            if _stop_after(history, epoch, patience, callback):
                break
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    model.load_state_dict(best_state)
    if ckpt is not None and history.best_epoch >= 0 and not (ckpt / "best.pt").exists():
        save_model(model, ckpt / "best.pt", extra={"history": history.as_dict()})
    return history


def predict(model: BPNN, dataset: StructureDataset, forces: bool = True, batch_size: int = 64,
            device: Any = None, dtype: torch.dtype | None = None) -> dict[str, np.ndarray]:
    """Predictions for every structure: ``energy`` (n,) eV, ``energies`` (N,) eV, ``forces`` (N, 3) eV/Å,
    and the model's per-atom outputs. Batched; runs on the model's device unless told otherwise."""
    if len(dataset) == 0:
        raise InputError("nothing to predict: the dataset is empty")
    p = next(model.parameters())
    device = p.device if device is None else resolve_device(device)
    dtype = dtype or p.dtype
    model.to(device=device, dtype=dtype).eval()
    out: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(dataset), batch_size):
        part = dataset[start:start + batch_size]
        batch = model.descriptor.prepare(part, device=device, dtype=dtype)
        if forces:
            res = model.energy_and_forces(batch)
        else:
            with torch.no_grad():
                res = model(batch)
        for k, v in res.items():
            out.setdefault(k, []).append(v.detach().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}

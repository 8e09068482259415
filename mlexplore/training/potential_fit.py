"""Fit and score a BP potential on a user's labelled structures in one call (what ``mlexplore train``
and ``mlexplore evaluate`` run).

    from mlexplore.io import read
    from mlexplore.training import train_potential, evaluate_potential, format_evaluation

    result = train_potential(read("my_dft.extxyz"), "bloore-fe-sannip", epochs=300)
    print(format_evaluation(result.metrics["test"]))
    result.save("fe.pt")
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis.metrics import mae, per_group, r2, rmse
from ..data.dataset import StructureDataset
from ..data.splits import check_fractions, random_split
from ..descriptors.presets import resolve_basis
from ..descriptors.symmetry import SymmetryFunctions
from ..errors import InputError
from ..models.bpnn import BPNN
from .engine import DEFAULTS, History
from .fit import fit, predict
from .potential import Potential

_DEF = DEFAULTS["potential"]

__all__ = ["PotentialFit", "train_potential", "evaluate_potential", "format_evaluation"]


def evaluate_potential(model: BPNN, dataset: StructureDataset, forces: bool | None = None,
                       groups: Sequence[str] | None = None) -> dict[str, Any]:
    """Score ``model`` on labelled structures.

    Returns ``{"n_structures", "energy": {"rmse", "mae", "r2", "baseline_rmse"} (meV/atom; the
    baseline predicts every structure's energy per atom as the set's mean), "forces": {"rmse",
    "mae", "r2"} (eV/Å, when scored), "groups": {group: energy RMSE meV/atom} (with ``groups``),
    "predictions": predict()'s arrays}``. ``forces=None`` scores forces when the data have them.
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    if len(dataset) == 0:
        raise InputError("nothing to evaluate: the dataset is empty")
    if "energy" not in dataset:
        raise InputError(f"the data have no 'energy' label (labels: {', '.join(dataset.label_names) or 'none'})",
                         field="energy")
    if forces is None:
        forces = "forces" in dataset
    if forces and "forces" not in dataset:
        raise InputError("forces were asked for but the data have no 'forces' label", field="forces")
    pred = predict(model, dataset, forces=forces)
    ref = 1000.0 * dataset.label("energy") / dataset.n_atoms  # meV/atom
    got = 1000.0 * pred["energy"] / dataset.n_atoms
    out: dict[str, Any] = {
        "n_structures": len(dataset), "n_atoms": int(dataset.n_atoms.sum()),
        "energy": {"rmse": rmse(ref, got), "mae": mae(ref, got), "r2": r2(ref, got),
                   "baseline_rmse": rmse(ref, np.full_like(ref, ref.mean()))},
        "predictions": pred,
    }
    if forces:
        f_ref, f_got = dataset.label("forces"), pred["forces"]
        out["forces"] = {"rmse": rmse(f_ref, f_got), "mae": mae(f_ref, f_got), "r2": r2(f_ref, f_got)}
    if groups is not None:
        if len(groups) != len(dataset):
            raise InputError(f"{len(groups)} group labels for {len(dataset)} structures", field="groups")
        out["groups"] = {k: v["rmse"] for k, v in per_group(ref, got, list(groups)).items()}
    return out


def format_evaluation(metrics: dict[str, Any], title: str = "") -> str:
    """The scores of :func:`evaluate_potential` as a few lines of text."""
    e = metrics["energy"]
    lines = [title] if title else []
    lines.append(f"{metrics['n_structures']} structures, {metrics['n_atoms']} atoms")
    lines.append(f"energy  RMSE {e['rmse']:.2f} meV/atom, MAE {e['mae']:.2f} meV/atom, R² {e['r2']:.4f} "
                 f"(predicting the mean: {e['baseline_rmse']:.2f} meV/atom)")
    if "forces" in metrics:
        f = metrics["forces"]
        lines.append(f"forces  RMSE {f['rmse']:.4f} eV/Å, MAE {f['mae']:.4f} eV/Å, R² {f['r2']:.4f}")
    for g, v in metrics.get("groups", {}).items():
        lines.append(f"  {g:<20} energy RMSE {v:.2f} meV/atom")
    return "\n".join(lines)


@dataclass
class PotentialFit:
    """A trained potential and how it was made: the model, its training history, the three
    sets, the scores per set (:func:`evaluate_potential` without its predictions, which are in
    ``predictions[set]``: ``predict()``'s arrays, not saved) and the training time (s)."""

    model: BPNN
    history: History
    train: StructureDataset
    val: StructureDataset
    test: StructureDataset | None
    metrics: dict[str, dict]
    seconds: float
    settings: dict[str, Any]
    predictions: dict[str, dict] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model with its settings, scores and history (atomically; load with
        ``Potential.load`` or ``load_model``)."""
        return Potential(self.model).save(path, extra={"settings": self.settings, "metrics": self.metrics,
                                                   "history": self.history.as_dict(),
                                                   "seconds": self.seconds})


def train_potential(dataset: StructureDataset, basis: str | SymmetryFunctions, *,
                    test: StructureDataset | None = None, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                    forces: bool | None = None, force_weight: float = 1.0, hidden: Sequence[int] = (25, 25),
                    activation: str = "tanh", epochs: int = _DEF.epochs, lr: float = _DEF.lr,
                    batch_size: int = _DEF.batch_size, patience: int | None = _DEF.patience, seed: int = 0, device: Any = "auto",
                    checkpoint_dir: str | os.PathLike | None = None, progress: bool = True) -> PotentialFit:
    """Split, train a :class:`BPNN` on ``basis`` (a preset name or a descriptor) and score it.

    ``fractions`` (train, validation[, test]) splits ``dataset`` at random with ``seed``; with a
    separate ``test`` set give two fractions (train, validation). ``forces=None`` trains on
    forces when the data have them (``force_weight`` as in :func:`fit`). The model ends with
    the weights of its best validation epoch; Ctrl-C stops training and keeps them.
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    if "energy" not in dataset:
        raise InputError(f"the data have no 'energy' label (labels: {', '.join(dataset.label_names) or 'none'})",
                         field="energy")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) < 1:
            raise InputError(f"{name} must be ≥ 1, got {value}", field=name)
    if not lr > 0:
        raise InputError(f"lr must be positive, got {lr}", field="lr")
    check_fractions(fractions)
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) not in (2, 3):
        raise InputError(f"fractions must be 2 (train, validation) or 3 (train, validation, test) numbers, "
                         f"got {list(fractions)}", field="fractions")
    if test is not None and len(fractions) == 3 and fractions[2] > 0:
        raise InputError("a separate test set was given: pass two fractions (train, validation)", field="fractions")
    if forces is None:
        forces = "forces" in dataset
    elements = sorted(set(dataset.elements) | (set(test.elements) if test is not None else set()))
    descriptor = resolve_basis(basis, elements)
    if descriptor.spin and not any(k in dataset.atom_labels for k in ("magmoms", "initial_magmoms")):
        raise InputError("the basis has spin terms but the data have no per-atom 'magmoms' (or "
                         "'initial_magmoms'); choose a basis without spin terms", field="magmoms")
    parts = random_split(dataset, fractions, seed=seed)
    train, val = parts[0], parts[1]
    if test is None and len(parts) == 3:
        test = parts[2]
    if test is not None and len(test) == 0:
        test = None
    for part, name in ((train, "training"), (val, "validation")):
        if len(part) == 0:
            raise InputError(f"the split {fractions} of {len(dataset)} structures leaves the {name} set empty",
                             field="fractions")
    torch.manual_seed(seed)
    model = BPNN(descriptor, hidden=hidden, activation=activation)
    targets = ["energy", "forces"] if forces else ["energy"]
    t0 = time.perf_counter()
    history = fit(model, train, val, targets=targets, loss_weights={"forces": force_weight} if forces else None,
                  epochs=epochs, lr=lr, batch_size=batch_size, patience=patience, seed=seed, device=device,
                  checkpoint_dir=checkpoint_dir, progress=progress)
    seconds = time.perf_counter() - t0
    metrics, predictions = {}, {}
    for name, part in (("train", train), ("val", val), ("test", test)):
        if part is not None:
            m = evaluate_potential(model, part, forces=forces and "forces" in part)
            predictions[name] = m.pop("predictions")
            metrics[name] = m
    settings = {"basis": basis if isinstance(basis, str) else "custom", "elements": elements,
                "n_features": int(descriptor.n_features), "hidden": list(hidden), "activation": activation,
                "targets": targets, "force_weight": force_weight, "epochs": epochs, "lr": lr,
                "batch_size": batch_size, "fractions": list(fractions), "seed": seed,
                "split_sizes": [len(train), len(val), len(test) if test is not None else 0],
                "best_epoch": history.best_epoch, "interrupted": bool(history.interrupted)}
    return PotentialFit(model=model, history=history, train=train, val=val, test=test, metrics=metrics,
                        seconds=seconds, settings=settings, predictions=predictions)

"""Training and using multi-task models (the fixed-lattice MLP of 000, the graph network of 001).

A task model has ``tasks`` (``{name: "structure" | "site"}``), ``encode(dataset,
device, dtype)`` giving its input, and ``forward(inputs, normalised)`` giving
``(S,)`` per-structure and ``(N,)`` per-site predictions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset
from ..errors import InputError
from .engine import (DEFAULTS, History, Objective, Output, atoms_of, check_training_options, output_loss,
                     outputs_from, resolve_device, total_loss, train_loop)
from .potential import Potential, model_place

__all__ = ["fit_tasks", "predict_tasks", "task_targets", "standardise_targets", "task_loss", "TaskObjective"]


def task_targets(ds: StructureDataset, model, device, dtype) -> dict[str, torch.Tensor]:
    out = {}
    for name, kind in model.tasks.items():
        if name not in ds:
            raise InputError(f"target {name!r} is not in the dataset (it has: {', '.join(ds.label_names)})",
                             field="targets")
        per_atom = ds.is_per_atom(name)
        if (kind == "site") != per_atom:
            raise InputError(f"task {name!r} is declared {kind!r} but the label is "
                             f"{'per-atom' if per_atom else 'per-structure'}", field="tasks")
        v = ds.label(name).astype(np.float64)
        if v.ndim != 1:
            raise InputError(f"lattice tasks need scalar labels; {name!r} has shape {v.shape}", field="targets")
        out[name] = torch.as_tensor(v, dtype=dtype, device=device)
    return out


def standardise_targets(model, targets: dict[str, torch.Tensor]) -> None:
    """Set the model's per-task target shift and scale to the training mean and standard deviation."""
    for k, name in enumerate(model.tasks):
        y = targets[name]
        model.target_shift[k] = y.mean()
        model.target_scale[k] = max(float(y.std()), 1e-12) if len(y) > 1 else 1.0


def task_loss(pred: dict[str, torch.Tensor], y: dict[str, torch.Tensor], shift: torch.Tensor,
              scale: torch.Tensor, outputs: Sequence[Output]
              ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """The loss ``Σ_t α_t · RMSE_t`` of one task model's standardised predictions ``pred`` against
    the targets ``y`` (physical units; ``shift``/``scale`` per task, in the order of ``outputs``),
    with each task's RMSE and squared residuals. Used by :func:`fit_tasks` and, member by
    member, by :func:`~mlexplore.training.fit_task_members`."""
    rmses, squares = [], []
    for k, o in enumerate(outputs):
        r, squared = output_loss(pred[o.name] - (y[o.name] - shift[k]) / scale[k], o.reduction)
        rmses.append(r)
        squares.append(squared)
    return total_loss(dict(zip((o.name for o in outputs), rmses)), outputs), rmses, squares


class TaskObjective(Objective):
    """One task model (:class:`~mlexplore.models.LatticeMLP`, :class:`~mlexplore.models.GraphNet`) on
    its standardised targets, for :func:`~mlexplore.training.engine.train_loop`."""

    def __init__(self, model, train: StructureDataset, val: StructureDataset | None, outputs: Sequence[Output],
                 batch: int, device: torch.device, dtype: torch.dtype):
        self.model, self.outputs, self.device = model, list(outputs), device
        self.names = [o.name for o in self.outputs]
        self.n_train, self.batch_size = len(train), batch
        self.y_tr = task_targets(train, model, device, dtype)
        standardise_targets(model, self.y_tr)
        self.x_tr = model.encode(train, device=device, dtype=dtype)
        self.x_va = model.encode(val, device=device, dtype=dtype) if val is not None else None
        self.y_va = task_targets(val, model, device, dtype) if val is not None else None
        self.atom_index = torch.as_tensor(train.offsets, device=device)
        self.sliced_by_model = not isinstance(self.x_tr, torch.Tensor)  # graphs: the model cuts the mini-batch
        self.best = copy.deepcopy(model.state_dict())

    def parameters(self):
        return list(self.model.parameters())

    def train_mode(self, training: bool) -> None:
        self.model.train(training)

    def _loss(self, x, y):
        m = self.model
        return task_loss(m(x, normalised=True), y, m.target_shift, m.target_scale, self.outputs)

    def batch_loss(self, idx, sums):
        idx = torch.sort(idx).values
        tasks = self.model.tasks
        atoms = atoms_of(self.atom_index, idx)
        y_b = {k: v[atoms] if tasks[k] == "site" else v[idx] for k, v in self.y_tr.items()}
        x_b = self.model.select(self.x_tr, idx) if self.sliced_by_model else self.x_tr[idx]
        loss, rmses, squares = self._loss(x_b, y_b)
        for o, squared in zip(self.outputs, squares):  # the epoch's training RMSE (on the device)
            sse, n = sums.get(o.name, (0.0, 0))
            sums[o.name] = (sse + squared.detach().sum(), n + squared.numel())
        return loss, dict(zip(self.names, rmses))

    def _metrics(self, rmse: dict[str, Any]) -> dict[str, np.ndarray]:
        """Each task's RMSE of the standardised targets, in the target's units."""
        scale = self.model.target_scale
        return {f"{o.name}_rmse": np.array([float(rmse[o.name]) * float(scale[k])]) for k, o in enumerate(self.outputs)}

    def train_scores(self, sums):
        rmse = {name: (float(sse) / n) ** 0.5 for name, (sse, n) in sums.items()}
        return np.array([float(sum(o.weight * rmse[o.name] for o in self.outputs))]), self._metrics(rmse)

    def validation_scores(self):
        if self.x_va is None:
            return None
        with torch.no_grad():
            loss, rmses, _ = self._loss(self.x_va, self.y_va)
        return np.array([float(loss)]), self._metrics(dict(zip(self.names, rmses)))

    def remember_best(self, member: int) -> None:
        self.best = copy.deepcopy(self.model.state_dict())

    def restore_best(self) -> None:
        self.model.load_state_dict(self.best)


_DEF = DEFAULTS["tasks"]


def fit_tasks(model, train: StructureDataset, val: StructureDataset | None = None,
              loss_weights: dict[str, float] | None = None, epochs: int = _DEF.epochs, lr: float = _DEF.lr,
              batch_fraction: float = _DEF.batch_fraction, patience: int | None = _DEF.patience,
              device: Any = "auto", dtype: torch.dtype = _DEF.dtype, seed: int = 0, progress: bool = False,
              callback=None) -> History:
    """Train a task model (Adam, batch = 10 % of the training set, as in 000; defaults:
    ``DEFAULTS["tasks"]``) with :func:`~mlexplore.training.engine.train_loop`.

    Targets are standardised per task on the training set. The loss is
    ``Σ_t α_t · RMSE_t`` of the standardised targets (000's ``Σ α_i ||y_i − ŷ_i||``,
    divided by √n so it does not grow with the batch). Early stopping on the
    validation loss; the best weights are kept. The training loss and RMSEs of an epoch are
    accumulated over its mini-batches as they are trained (as Keras reports them), which
    saves a forward pass over the training set per epoch; the validation ones are computed
    after the epoch.
    """
    train = StructureDataset.coerce(train, "train")
    val = None if val is None else StructureDataset.coerce(val, "val")
    if len(train) == 0 or (val is not None and len(val) == 0):
        raise InputError("empty training or validation set", field="train" if len(train) == 0 else "val")
    check_training_options(epochs, lr, batch_fraction=batch_fraction, patience=patience, seed=seed)
    device = resolve_device(device)
    model.to(device=device, dtype=dtype)
    outputs = outputs_from(list(model.tasks), loss_weights, _DEF.reduction)
    batch = max(1, int(round(batch_fraction * len(train))))
    objective = TaskObjective(model, train, val, outputs, batch, device, dtype)
    return train_loop(objective, epochs=epochs, lr=lr, patience=patience, seeds=[seed], callbacks=callback,
                      progress=progress, desc="task model")[0]


def predict_tasks(model, dataset: StructureDataset) -> dict[str, np.ndarray]:
    """Predictions per task in physical units: ``(n,)`` per structure, ``(N,)`` per site, on the
    model's device and precision (``Potential(model).predict(dataset)``)."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    device, dtype = model_place(model)
    return Potential(model, device=device, dtype=dtype).predict(dataset)

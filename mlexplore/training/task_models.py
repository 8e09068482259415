"""Training and using multi-task models (the fixed-lattice MLP of 000, the graph network of 001).

A task model has ``tasks`` (``{name: "structure" | "site"}``), ``encode(dataset,
device, dtype)`` giving its input, and ``forward(inputs, normalised)`` giving
``(S,)`` per-structure and ``(N,)`` per-site predictions.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset
from ..errors import InputError
from .fit import History, TrainingError, _stop_after, atoms_of, resolve_device

__all__ = ["fit_tasks", "predict_tasks", "task_targets", "standardise_targets"]


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


def fit_tasks(model, train: StructureDataset, val: StructureDataset | None = None,
                loss_weights: dict[str, float] | None = None, epochs: int = 500, lr: float = 1e-4,
                batch_fraction: float = 0.1, patience: int | None = 50, device: Any = "auto",
                dtype: torch.dtype = torch.float32, seed: int = 0, progress: bool = False,
                callback=None) -> History:
    """Train a task model (Adam, batch = 10 % of the training set, as in 000).

    Targets are standardised per task on the training set. The loss is
    ``Σ_t α_t · RMSE_t`` of the standardised targets (000's ``Σ α_i ||y_i − ŷ_i||``,
    divided by √n so it does not grow with the batch). Early stopping on the
    validation loss; the best weights are kept. The training loss and RMSEs of an epoch are
    accumulated over its mini-batches as they are trained (as Keras reports them), which
    saves a forward pass over the training set per epoch; the validation ones are computed
    after the epoch.
    """
    from tqdm.auto import tqdm

    if len(train) == 0 or (val is not None and len(val) == 0):
        raise InputError("empty training or validation set", field="train" if len(train) == 0 else "val")
    device = resolve_device(device)
    model.to(device=device, dtype=dtype)
    alpha = {t: 1.0 for t in model.tasks}
    alpha.update(loss_weights or {})
    y_tr = task_targets(train, model, device, dtype)
    standardise_targets(model, y_tr)
    x_tr = model.encode(train, device=device, dtype=dtype)
    x_va = model.encode(val, device=device, dtype=dtype) if val is not None else None
    y_va = task_targets(val, model, device, dtype) if val is not None else None
    atom_index = torch.as_tensor(train.offsets, device=device)
    sliced_by_model = not isinstance(x_tr, torch.Tensor)  # graphs: the model cuts the mini-batch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    batch = max(1, int(round(batch_fraction * len(train))))
    history = History()
    best = copy.deepcopy(model.state_dict())

    def loss_of(x, y, sums: dict | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        pred = model(x, normalised=True)
        parts = {}
        total = 0.0
        for k, name in enumerate(model.tasks):
            target = (y[name] - model.target_shift[k]) / model.target_scale[k]
            squared = (pred[name] - target) ** 2
            r = torch.sqrt(squared.mean())
            parts[name] = r
            total = total + alpha[name] * r
            if sums is not None:  # the epoch's training RMSE, accumulated over its mini-batches (on the device)
                sse, n = sums.get(name, (0.0, 0))
                sums[name] = (sse + squared.detach().sum(), n + squared.numel())
        return total, parts

    try:
        for epoch in tqdm(range(epochs), desc="lattice MLP", disable=not progress):
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(len(train), generator=gen).to(device)
            sums: dict[str, tuple[float, int]] = {}
            for b, start in enumerate(range(0, len(train), batch)):
                idx = torch.sort(order[start:start + batch]).values
                atoms = atoms_of(atom_index, idx)
                y_b = {k: v[atoms] if model.tasks[k] == "site" else v[idx] for k, v in y_tr.items()}
                x_b = model.select(x_tr, idx) if sliced_by_model else x_tr[idx]
                loss, _ = loss_of(x_b, y_b, sums)
                if not torch.isfinite(loss):
                    raise TrainingError(f"the loss became {float(loss.detach())} at epoch {epoch}, batch {b}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            model.eval()
            tparts = {name: (float(sse) / n) ** 0.5 for name, (sse, n) in sums.items()}
            tl = sum(alpha[name] * r for name, r in tparts.items())
            with torch.no_grad():
                vl, vparts = loss_of(x_va, y_va) if val is not None else (tl, tparts)
            improved = history.log_epoch(epoch, float(tl), float(vl), lr, time.perf_counter() - t0)
            for k, name in enumerate(model.tasks):
                history.add(f"train_{name}_rmse", float(tparts[name]) * float(model.target_scale[k]))
                history.add(f"val_{name}_rmse", float(vparts[name]) * float(model.target_scale[k]))
            if improved:
                best = copy.deepcopy(model.state_dict())
            if _stop_after(history, epoch, patience, callback):
                break
    except KeyboardInterrupt:
        history.interrupted = True
    model.load_state_dict(best)
    return history


def predict_tasks(model, dataset: StructureDataset) -> dict[str, np.ndarray]:
    """Predictions per task in physical units: ``(n,)`` per structure, ``(N,)`` per site."""
    p = next(model.parameters())
    x = model.encode(dataset, device=p.device, dtype=p.dtype)
    model.eval()
    with torch.no_grad():
        out = model(x)
    return {k: v.cpu().numpy().reshape(-1) for k, v in out.items()}



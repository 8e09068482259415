"""Train several small multi-task models at once, vectorised on one device.

HydraGNN trains its 12-model ensembles one process per model. Here the members'
weights are stacked (``torch.func.stack_module_state``) and every step runs all
members in one vectorised call (``torch.func.vmap``); Adam acts element-wise, so
each member follows exactly the trajectory it would follow alone with the same
initial weights, data and mini-batch order (tested to float tolerance).

:func:`fit_task_members` is the general form: every member has its own training
and validation set (of equal sizes), its own mini-batch order and its own early
stopping, exactly as :func:`~mlexplore.training.fit_tasks` would train it alone.
That is how :func:`~mlexplore.training.compare_tasks` trains the N runs of one
task combination (N shuffled splits) together on a GPU, where a single small
model leaves the device idle between kernel launches. :func:`fit_ensemble` is the
special case of one data set and one batch order for all members.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from ..data.dataset import StructureDataset
from ..errors import InputError
from .engine import (DEFAULTS, History, Objective, Output, check_training_options, outputs_from, resolve_device,
                     train_loop)
from .task_models import standardise_targets, task_loss, task_targets

__all__ = ["fit_ensemble", "fit_task_members", "MemberObjective"]


def _stacked_inputs(models, sets, device, dtype):
    """Inputs ``(K, n, …)`` and targets ``{task: (K, n or N)}`` of one set per member."""
    first = models[0]
    # each distinct set encoded once (fit_ensemble passes the same set for every member)
    encoded = {id(s): (first.encode(s, device=device, dtype=dtype), task_targets(s, first, device, dtype))
               for s in sets}
    if not all(isinstance(x, torch.Tensor) for x, _ in encoded.values()):
        raise InputError("vectorised training needs tensor inputs (LatticeMLP); train graph models with "
                         "fit_tasks", field="models")
    xs, ys = zip(*(encoded[id(s)] for s in sets))
    return torch.stack(xs), {name: torch.stack([y[name] for y in ys]) for name in first.tasks}, list(ys)


class MemberObjective(Objective):
    """K task models of one class and tasks trained together, vectorised (``torch.func``), for
    :func:`~mlexplore.training.engine.train_loop`: member k on its own training and validation set,
    with the loss of :func:`~mlexplore.training.task_models.task_loss`."""

    vectorised = True

    def __init__(self, models, trains, vals, outputs: Sequence[Output], batch: int, device, dtype):
        first = models[0]
        self.models, self.outputs, self.device = models, list(outputs), device
        self.n_members = len(models)
        tasks = [o.name for o in self.outputs]
        self.site = [first.tasks[t] == "site" for t in tasks]
        self.n_sites = int(trains[0].n_atoms[0])
        self.x_tr, self.y_tr, y_each = _stacked_inputs(models, trains, device, dtype)
        for m, y in zip(models, y_each):
            standardise_targets(m, y)
        self.x_va, self.y_va = (_stacked_inputs(models, vals, device, dtype)[:2] if vals is not None
                                else (None, None))
        self.alpha = torch.tensor([o.weight for o in self.outputs], dtype=dtype, device=device)
        params, self.buffers = stack_module_state(models)
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        base = copy.deepcopy(first).to("meta")
        outs = self.outputs

        def member_loss(p, b, x, y):
            """One member's loss, its RMSE and its squared-error sum per task."""
            pred = functional_call(base, (p, b), (x,), {"normalised": True})
            total, rmses, squares = task_loss(pred, y, b["target_shift"], b["target_scale"], outs)
            return total, torch.stack(rmses), torch.stack([q.sum() for q in squares])

        self.batched = vmap(member_loss)
        self.n_train, self.batch_size = len(trains[0]), batch
        # values per task summed over an epoch: every structure once, or each of its sites
        self.counts = torch.tensor([self.n_train * (self.n_sites if s else 1) for s in self.site], dtype=dtype,
                                   device=device)
        self.members = torch.arange(self.n_members, device=device)[:, None]
        self.sites = torch.arange(self.n_sites, device=device)
        self.best = {k: v.detach().clone() for k, v in self.params.items()}

    def parameters(self):
        return list(self.params.values())

    def batch_loss(self, idx, sums):
        K, members = self.n_members, self.members
        idx = torch.sort(idx, dim=1).values  # (K, B)
        atoms = (idx[:, :, None] * self.n_sites + self.sites).reshape(K, -1)
        y_b = {o.name: self.y_tr[o.name][members, atoms if s else idx] for o, s in zip(self.outputs, self.site)}
        losses, rmses, sse = self.batched(self.params, self.buffers, self.x_tr[members, idx], y_b)
        sums["sse"] = sums["sse"] + sse.detach() if "sse" in sums else sse.detach()
        return losses, {o.name: rmses[:, j] for j, o in enumerate(self.outputs)}

    def _split(self, host: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return host[:, 0], {f"{o.name}_rmse": host[:, 1 + j] for j, o in enumerate(self.outputs)}

    def _device_scores(self, sums) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, 1 + T) training and validation [loss, RMSE per task in the targets' units], on the device."""
        scale = self.buffers["target_scale"]
        t_rmse = torch.sqrt(sums["sse"] / self.counts)
        train = torch.cat([(self.alpha * t_rmse).sum(dim=1)[:, None], t_rmse * scale], dim=1)
        if self.x_va is None:
            return train, train
        v_loss, v_rmse, _ = self.batched(self.params, self.buffers, self.x_va, self.y_va)
        return train, torch.cat([v_loss[:, None], v_rmse * scale], dim=1)

    def train_scores(self, sums):
        with torch.no_grad():
            return self._split(self._device_scores(sums)[0].cpu().numpy())

    def validation_scores(self):
        if self.x_va is None:
            return None
        with torch.no_grad():
            return self._split(self._device_scores({"sse": torch.zeros_like(self.counts)})[1].cpu().numpy())

    def epoch_scores(self, sums, finite=None):
        """Everything the loop logs after an epoch in one transfer from the device."""
        with torch.no_grad():
            train, val = self._device_scores(sums)
            ok = finite if finite is not None else torch.ones(self.n_members, dtype=torch.bool, device=self.device)
            host = torch.cat([ok[:, None].to(train.dtype), train, val], dim=1).cpu().numpy()
        width = train.shape[1]
        (tl, tm), (vl, vm) = self._split(host[:, 1:1 + width]), self._split(host[:, 1 + width:])
        return tl, tm, vl, vm, host[:, 0] != 0

    def remember_best(self, member: int) -> None:
        for name, v in self.params.items():
            self.best[name][member] = v.detach()[member]

    def restore_best(self) -> None:
        for k, m in enumerate(self.models):
            m.load_state_dict({**{n: v[k] for n, v in self.best.items()}, **{n: v[k] for n, v in self.buffers.items()}})


_DEF = DEFAULTS["tasks"]


def fit_task_members(models: Sequence[torch.nn.Module], trains: Sequence[StructureDataset],
                     vals: Sequence[StructureDataset] | None = None, seeds: int | Sequence[int] = 0,
                     loss_weights: dict[str, float] | None = None, epochs: int = _DEF.epochs, lr: float = _DEF.lr,
                     batch_fraction: float = _DEF.batch_fraction, patience: int | None = _DEF.patience,
                     device: Any = "auto", dtype: torch.dtype = _DEF.dtype,
                     callbacks: Sequence[Callable | None] | None = None) -> list[History]:
    """Train K task models (same class and tasks, e.g. :class:`LatticeMLP`) together, member k on
    ``trains[k]`` / ``vals[k]`` with the mini-batch order of ``seeds[k]``, each exactly as
    ``fit_tasks(models[k], trains[k], vals[k], seed=seeds[k], …)`` would (same options, same
    meaning; the same loop, :func:`~mlexplore.training.engine.train_loop`, in its vectorised mode).
    The models are trained in place and end with their own best weights.

    All training sets must have the same number of structures, all validation sets too, and
    every structure the same number of sites (lattice models). A member that stops early
    keeps its best weights and history while the others go on. The seconds of an epoch in the
    histories are the epoch's time divided by the members still training.
    """
    models = list(models)
    K = len(models)
    if K < 1:
        raise InputError("no models to train", field="models")
    if len(trains) != K or (vals is not None and len(vals) != K):
        raise InputError(f"{K} models need {K} training (and validation) sets, got {len(trains)}"
                         + (f" and {len(vals)}" if vals is not None else ""), field="trains")
    check_training_options(epochs, lr, batch_fraction=batch_fraction, patience=patience,
                           seed=list(seeds) if isinstance(seeds, (list, tuple, np.ndarray)) else seeds)
    seeds = [int(seeds)] * K if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if len(seeds) != K:
        raise InputError(f"{K} models need {K} seeds, got {len(seeds)}", field="seeds")
    for name, sets in (("training", trains), ("validation", vals or [])):
        sizes = {len(s) for s in sets}
        if 0 in sizes:
            raise InputError(f"empty {name} set", field="trains" if name == "training" else "vals")
        if len(sizes) > 1:
            raise InputError(f"the {name} sets differ in size ({sorted(sizes)}): vectorised members need "
                             "equal sizes", field="trains" if name == "training" else "vals")
    first = models[0]
    if any(type(m) is not type(first) or m.tasks != first.tasks for m in models):
        raise InputError("all members must be the same kind of model with the same tasks", field="models")
    n_sites = {int(v) for s in list(trains) + list(vals or []) for v in np.unique(s.n_atoms)}
    if len(n_sites) != 1:
        raise InputError(f"vectorised members need structures of one size; these have {sorted(n_sites)} sites",
                         field="trains")
    device = resolve_device(device)
    for m in models:
        m.to(device=device, dtype=dtype)
    outputs = outputs_from(list(first.tasks), loss_weights, _DEF.reduction)
    batch = max(1, int(round(batch_fraction * len(trains[0]))))
    objective = MemberObjective(models, trains, vals, outputs, batch, device, dtype)
    return train_loop(objective, epochs=epochs, lr=lr, patience=patience, seeds=seeds, callbacks=callbacks,
                      desc="members")


def fit_ensemble(make_model: Callable[[int], torch.nn.Module], n_models: int, train: StructureDataset,
                 val: StructureDataset | None = None, loss_weights: dict[str, float] | None = None,
                 epochs: int = 200, lr: float = _DEF.lr, batch_fraction: float = _DEF.batch_fraction,
                 device: Any = "auto", dtype: torch.dtype = _DEF.dtype, seed: int = 0) -> tuple[list[torch.nn.Module], list[History]]:
    """Train ``n_models`` task models (e.g. :class:`LatticeMLP`) together; member k is ``make_model(k)``.

    All members see the same mini-batches in the same order (data order from
    ``seed``), each keeps its own best weights by its own validation loss
    (as :func:`fit_tasks` with ``patience=None``). Returns the trained members
    and their histories.
    """
    train = StructureDataset.coerce(train, "train")
    if n_models < 1:
        raise InputError("n_models must be ≥ 1", field="n_models")
    if len(train) == 0:
        raise InputError("the training set is empty", field="train")
    members = [make_model(k) for k in range(n_models)]
    histories = fit_task_members(members, [train] * n_models, [val] * n_models if val is not None else None,
                                 seeds=seed, loss_weights=loss_weights, epochs=epochs, lr=lr,
                                 batch_fraction=batch_fraction, patience=None, device=device, dtype=dtype)
    return members, histories

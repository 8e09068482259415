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
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from ..data.dataset import StructureDataset
from ..errors import InputError
from .fit import History, TrainingError, _stop_after, resolve_device
from .task_models import standardise_targets, task_targets

__all__ = ["fit_ensemble", "fit_task_members"]


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


def fit_task_members(models: Sequence[torch.nn.Module], trains: Sequence[StructureDataset],
                     vals: Sequence[StructureDataset] | None = None, seeds: int | Sequence[int] = 0,
                     loss_weights: dict[str, float] | None = None, epochs: int = 500, lr: float = 1e-4,
                     batch_fraction: float = 0.1, patience: int | None = 50, device: Any = "auto",
                     dtype: torch.dtype = torch.float32, callbacks: Sequence[Callable | None] | None = None,
                     ) -> list[History]:
    """Train K task models (same class and tasks, e.g. :class:`LatticeMLP`) together, member k on
    ``trains[k]`` / ``vals[k]`` with the mini-batch order of ``seeds[k]``, each exactly as
    ``fit_tasks(models[k], trains[k], vals[k], seed=seeds[k], …)`` would (same options, same
    meaning). The models are trained in place and end with their own best weights.

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
    n_sites = n_sites.pop()
    device = resolve_device(device)
    for m in models:
        m.to(device=device, dtype=dtype)
    tasks = list(first.tasks)
    site = [first.tasks[t] == "site" for t in tasks]
    x_tr, y_tr, y_each = _stacked_inputs(models, trains, device, dtype)
    for m, y in zip(models, y_each):
        standardise_targets(m, y)
    if vals is not None:
        x_va, y_va, _ = _stacked_inputs(models, vals, device, dtype)
    alpha = torch.tensor([({t: 1.0 for t in tasks} | (loss_weights or {}))[t] for t in tasks], dtype=dtype,
                         device=device)
    params, buffers = stack_module_state(models)
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    base = copy.deepcopy(first).to("meta")

    def member_loss(p, b, x, y):
        """Loss Σ_t α_t RMSE_t of the standardised targets, and the squared-error sum per task."""
        pred = functional_call(base, (p, b), (x,), {"normalised": True})
        rmses, sse = [], []
        for k, name in enumerate(tasks):
            target = (y[name] - b["target_shift"][k]) / b["target_scale"][k]
            squared = (pred[name] - target) ** 2
            rmses.append(torch.sqrt(squared.mean()))
            sse.append(squared.sum())
        rmses = torch.stack(rmses)
        return (alpha * rmses).sum(), rmses, torch.stack(sse)

    batched = vmap(member_loss)
    opt = torch.optim.Adam(params.values(), lr=lr)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    n = len(trains[0])
    batch = max(1, int(round(batch_fraction * n)))
    # values per task summed over an epoch: every structure once, or each of its sites
    counts = torch.tensor([n * (n_sites if s else 1) for s in site], dtype=dtype, device=device)
    members = torch.arange(K, device=device)[:, None]
    sites = torch.arange(n_sites, device=device)
    histories = [History() for _ in range(K)]
    callbacks = list(callbacks) if callbacks is not None else [None] * K
    active = [True] * K
    best = {k: v.detach().clone() for k, v in params.items()}
    try:
        for epoch in range(epochs):
            t0 = time.perf_counter()
            order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
            sse = torch.zeros((K, len(tasks)), dtype=dtype, device=device)
            finite = torch.ones(K, dtype=torch.bool, device=device)
            for start in range(0, n, batch):
                idx = torch.sort(order[:, start:start + batch], dim=1).values  # (K, B)
                atoms = (idx[:, :, None] * n_sites + sites).reshape(K, -1)
                y_b = {t: y_tr[t][members, atoms if s else idx] for t, s in zip(tasks, site)}
                losses, _, sse_b = batched(params, buffers, x_tr[members, idx], y_b)
                finite &= torch.isfinite(losses)  # checked once per epoch: no device round trip per batch
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
                opt.step()
                sse += sse_b.detach()
            with torch.no_grad():
                t_rmse = torch.sqrt(sse / counts)
                t_loss = (alpha * t_rmse).sum(dim=1)
                v_loss, v_rmse, _ = batched(params, buffers, x_va, y_va) if vals is not None else (t_loss, t_rmse,
                                                                                                  None)
                scale = buffers["target_scale"]
                host = torch.cat([finite[:, None].to(dtype), t_loss[:, None], v_loss[:, None], t_rmse * scale,
                                  v_rmse * scale], dim=1).cpu().numpy()  # one transfer per epoch
            if not host[:, 0].all():
                bad = int(np.nonzero(host[:, 0] == 0)[0][0])
                raise TrainingError(f"member {bad}: the loss became non-finite in epoch {epoch}")
            seconds = (time.perf_counter() - t0) / sum(active)
            T = len(tasks)
            for k in range(K):
                if not active[k]:
                    continue
                h = histories[k]
                if h.log_epoch(epoch, host[k, 1], host[k, 2], lr, seconds):
                    for name, v in params.items():
                        best[name][k] = v.detach()[k]
                for j, name in enumerate(tasks):
                    h.add(f"train_{name}_rmse", host[k, 3 + j])
                    h.add(f"val_{name}_rmse", host[k, 3 + T + j])
                if _stop_after(h, epoch, patience, callbacks[k]):
                    active[k] = False
            if not any(active):
                break
    except KeyboardInterrupt:
        for h in histories:
            h.interrupted = True
    for k, m in enumerate(models):
        m.load_state_dict({**{n: v[k] for n, v in best.items()}, **{n: v[k] for n, v in buffers.items()}})
    return histories


def fit_ensemble(make_model: Callable[[int], torch.nn.Module], n_models: int, train: StructureDataset,
                 val: StructureDataset | None = None, loss_weights: dict[str, float] | None = None,
                 epochs: int = 200, lr: float = 1e-4, batch_fraction: float = 0.1, device: Any = "auto",
                 dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[list[torch.nn.Module], list[History]]:
    """Train ``n_models`` task models (e.g. :class:`LatticeMLP`) together; member k is ``make_model(k)``.

    All members see the same mini-batches in the same order (data order from
    ``seed``), each keeps its own best weights by its own validation loss
    (as :func:`fit_tasks` with ``patience=None``). Returns the trained members
    and their histories.
    """
    if n_models < 1:
        raise InputError("n_models must be ≥ 1", field="n_models")
    if len(train) == 0:
        raise InputError("the training set is empty", field="train")
    members = [make_model(k) for k in range(n_models)]
    histories = fit_task_members(members, [train] * n_models, [val] * n_models if val is not None else None,
                                 seeds=seed, loss_weights=loss_weights, epochs=epochs, lr=lr,
                                 batch_fraction=batch_fraction, patience=None, device=device, dtype=dtype)
    return members, histories

"""Train an ensemble of small multi-task models at once, vectorised on one device.

HydraGNN trains its 12-model ensembles one process per model. Here the members'
weights are stacked (``torch.func.stack_module_state``) and every step runs all
members in one vectorised call (``torch.func.vmap``); Adam acts element-wise, so
each member follows exactly the trajectory it would follow alone with the same
initial weights and mini-batch order (tested to float tolerance).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call, stack_module_state, vmap

from ..data.dataset import StructureDataset
from ..errors import InputError
from .fit import History, TrainingError, atoms_of, resolve_device
from .tasks import _targets, standardise_targets

__all__ = ["fit_ensemble"]


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
    device = resolve_device(device)
    members = [make_model(k).to(device=device, dtype=dtype) for k in range(n_models)]
    first = members[0]
    if not isinstance(first.encode(train[:1], device=device, dtype=dtype), torch.Tensor):
        raise InputError("vectorised ensembles need tensor inputs (LatticeMLP); train graph models with "
                         "fit_tasks", field="make_model")
    y_tr = _targets(train, first, device, dtype)
    for m in members:
        standardise_targets(m, y_tr)
    x_tr = first.encode(train, device=device, dtype=dtype)
    x_va = first.encode(val, device=device, dtype=dtype) if val is not None else x_tr
    y_va = _targets(val, first, device, dtype) if val is not None else y_tr
    params, buffers = stack_module_state(members)
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    base = copy.deepcopy(first).to("meta")
    alpha = {t: 1.0 for t in first.tasks}
    alpha.update(loss_weights or {})
    offsets = torch.as_tensor(train.offsets, device=device)

    def member_loss(p, b, x, y):
        pred = functional_call(base, (p, b), (x,), {"normalised": True})
        total = 0.0
        for k, name in enumerate(first.tasks):
            target = (y[name] - b["target_shift"][k]) / b["target_scale"][k]
            total = total + alpha[name] * torch.sqrt(((pred[name] - target) ** 2).mean())
        return total

    batched_loss = vmap(member_loss, in_dims=(0, 0, None, None))
    opt = torch.optim.Adam(params.values(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    batch = max(1, int(round(batch_fraction * len(train))))
    histories = [History() for _ in range(n_models)]
    best = {k: v.detach().clone() for k, v in params.items()}
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(train), generator=gen).to(device)
        for b, start in enumerate(range(0, len(train), batch)):
            idx = torch.sort(order[start:start + batch]).values
            atoms = atoms_of(offsets, idx)
            y_b = {k: v[atoms] if first.tasks[k] == "site" else v[idx] for k, v in y_tr.items()}
            losses = batched_loss(params, buffers, x_tr[idx], y_b)
            if not torch.isfinite(losses).all():
                bad = int(torch.nonzero(~torch.isfinite(losses))[0])
                raise TrainingError(f"member {bad}: the loss became non-finite at epoch {epoch}, batch {b}")
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
        with torch.no_grad():
            tl = batched_loss(params, buffers, x_tr, y_tr)
            vl = batched_loss(params, buffers, x_va, y_va)
        seconds = time.perf_counter() - t0
        for k, h in enumerate(histories):
            if h.log_epoch(epoch, float(tl[k]), float(vl[k]), lr, seconds / n_models):
                for name, v in params.items():
                    best[name][k] = v.detach()[k]
    for k, m in enumerate(members):
        m.load_state_dict({**{n: v[k] for n, v in best.items()}, **{n: v[k] for n, v in buffers.items()}},
                          strict=False)
    return members, histories

"""Fitting and calibrating a :class:`~mlexplore.models.Committee` of BP potentials.

- :func:`fit_committee` trains the members together by default: one run of the training loop
  (:func:`~mlexplore.training.engine.train_loop`, vectorised mode) over a
  :class:`CommitteeObjective`, whose K networks run in one vectorised call on features computed
  once (forces from the stored feature derivatives,
  :mod:`mlexplore.descriptors.derivatives`). Member ``k`` starts from seed ``seed + k``; the
  members share the mini-batch order of ``seed``; with ``resample="bootstrap"`` member ``k``
  weighs each training structure by how often it is in its bootstrap sample
  (:func:`bootstrap_counts` with ``seed + k``). Each member keeps its own history, early stopping,
  learning-rate plateaus and best weights, and ends with exactly the weights
  :func:`~mlexplore.training.fit` would give it alone from the same start and batch order (tested).
  ``vectorise=False`` runs :func:`~mlexplore.training.fit` once per member instead (member k's own
  batch order ``seed + k``; checkpoints). The committee's training domain is that of the whole
  training set.
- :func:`calibrate_committee` fits the one factor ``s`` that makes the committee's spread match
  its error on a validation set, ``s² = ⟨error²⟩ / ⟨σ²⟩`` over the force components (or the
  energies per atom without forces), and stores it in the committee (``std_scale``); it reports
  the ratio before and after.

Measured (one thread, EMT gold ``n_per_group=10``, 35 training structures, 20 epochs, 8 members of
2 × 16 on 14 radial G2): one model 0.94 s; eight together 2.47 s; eight one by one 8.1 s (9.5 s
before the stored derivatives).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset, Structures
from ..data.splits import check_seed
from ..descriptors.derivatives import forces_from_derivatives
from ..errors import InputError
from ..models.committee import Committee
from .engine import DEFAULTS, History, Objective, Output, check_training_options, resolve_device, total_loss, \
    train_loop
from .fit import PreparedSet, check_targets, fit, loss_outputs, plateau_patience, prepare_sets, set_normalisation

__all__ = ["fit_committee", "calibrate_committee", "CommitteeObjective", "bootstrap_counts", "RESAMPLING"]

RESAMPLING = ("none", "bootstrap")


def bootstrap_counts(n: int, seed: int) -> np.ndarray:
    """How often each of ``n`` structures is in a bootstrap sample of size ``n`` drawn with ``seed``
    (``(n,)`` whole numbers summing to ``n``; the sample :func:`fit_committee` gives member ``k``
    with ``seed + k``)."""
    return np.bincount(np.random.default_rng(seed).integers(0, n, n), minlength=n)


class CommitteeObjective(Objective):
    """The K members of a :class:`~mlexplore.models.Committee` trained together, for
    :func:`~mlexplore.training.engine.train_loop` in its vectorised mode.

    The members' weights are stacked (``torch.func.stack_module_state``) and one vectorised call
    (``torch.func.vmap``) runs all K networks on the same batch of features; the descriptor runs
    once per batch for all of them — or not at all when the set stores its features and their
    derivatives (:class:`~mlexplore.training.fit.PreparedSet`), the forces then being the
    contraction of each member's ``∂E/∂G`` with them. Every member sees the same mini-batches;
    members differ by their initial weights and, with bootstrap samples, by ``weights``: how often
    each training structure counts in member k's loss. The loss is :func:`fit`'s — mean squared
    scaled residuals of energies per atom, forces and per-atom outputs, each weighted — with each
    structure (and each of its atoms) counted ``weights[k, s]`` times.
    """

    vectorised = True

    def __init__(self, committee: Committee, train: PreparedSet, val: PreparedSet | None, outputs: Sequence[Output],
                 batch_size: int, device: torch.device, weights: np.ndarray | None = None):
        from torch.func import functional_call, stack_module_state, vmap

        members = list(committee.members)
        self.committee, self.members, self.train, self.val = committee, members, train, val
        self.outputs, self.device = list(outputs), device
        self.n_members, self.n_train, self.batch_size = len(members), len(train.ds), int(batch_size)
        self.need_forces = any(o.name == "forces" for o in self.outputs)
        self.atom_outputs = members[0].atom_outputs
        params, buffers = stack_module_state(members)
        # the descriptor and the element lookup are the same for every member: not stacked
        shared = {k: v for k, v in members[0].state_dict(keep_vars=True).items() if k.startswith("descriptor.")}
        shared.update({k: v for k, v in members[0].named_buffers() if k.startswith("descriptor.")
                       or k == "_element_index"})
        params = {k: v for k, v in params.items() if k not in shared}
        self.buffers = {k: v for k, v in buffers.items() if k not in shared}
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.best = {k: v.detach().clone() for k, v in self.params.items()}
        base = copy.deepcopy(members[0]).to("meta")
        names = ["energy", "energies", *self.atom_outputs]

        def member(p, b, features, numbers, n_atoms):
            out = functional_call(base, (p, b, shared), ({"features": features, "numbers": numbers,
                                                          "n_atoms": n_atoms},))
            return tuple(out[n] for n in names)

        self._names = names
        self._on_shared = vmap(member, in_dims=(0, 0, None, None, None))  # one set of features for all
        self._on_own = vmap(member, in_dims=(0, 0, 0, None, None))  # a copy per member (its own ∂E/∂G)
        K = self.n_members
        w = np.ones((K, self.n_train)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (K, self.n_train):
            raise InputError(f"weights must have shape ({K}, {self.n_train}), got {w.shape}", field="weights")
        self.weights = torch.as_tensor(w, dtype=self.buffers["energy_scale"].dtype, device=device)
        self.energy_scale = self.buffers["energy_scale"]  # (K,)
        self.output_scale = self.buffers["output_scale"]  # (K, n_outputs)

    def parameters(self):
        return list(self.params.values())

    def _predict(self, batch: dict, create_graph: bool) -> dict[str, torch.Tensor]:
        """Every member's outputs, ``(K, …)``, and forces ``(K, N, 3)`` when trained on."""
        K, numbers, n_atoms = self.n_members, batch["numbers"], batch["n_atoms"]
        if not self.need_forces:
            g = batch["features"] if "features" in batch else self.committee.descriptor(
                batch["positions"], numbers, batch["cells"], batch["pbc"], n_atoms, magmoms=batch.get("magmoms"),
                neighbors=batch["neighbors"])
            return dict(zip(self._names, self._on_shared(self.params, self.buffers, g, numbers, n_atoms)))
        if "feature_derivatives" in batch:
            g = batch["features"].detach().unsqueeze(0).repeat(K, 1, 1).requires_grad_(True)
            out = dict(zip(self._names, self._on_own(self.params, self.buffers, g, numbers, n_atoms)))
            grad = torch.autograd.grad(out["energy"].sum(), g, create_graph=create_graph)[0]
            out["forces"] = forces_from_derivatives(grad, batch["feature_derivatives"], batch["neighbors"],
                                                    g.shape[1])
            return out
        positions = batch["positions"].detach().requires_grad_(True)
        g = self.committee.descriptor(positions, numbers, batch["cells"], batch["pbc"], n_atoms,
                                      magmoms=batch.get("magmoms"), neighbors=batch["neighbors"])
        out = dict(zip(self._names, self._on_shared(self.params, self.buffers, g, numbers, n_atoms)))
        totals = out["energy"].sum(dim=1)
        out["forces"] = -torch.stack([torch.autograd.grad(totals[k], positions, retain_graph=True,
                                                          create_graph=create_graph)[0] for k in range(K)])
        return out

    def _squares(self, batch: dict, labels: dict, weights: torch.Tensor, create_graph: bool
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per output: the weighted sum of squared scaled residuals and the weighted count, ``(K,)`` each."""
        out = self._predict(batch, create_graph)
        n_atoms = batch["n_atoms"]
        atom_w = torch.repeat_interleave(weights, n_atoms, dim=1)  # (K, N): each atom as its structure
        parts = {}
        for o in self.outputs:
            if o.name == "energy":
                r = ((out["energy"] - labels["energy"]) / n_atoms) / self.energy_scale[:, None]
                parts[o.name] = ((weights * r ** 2).sum(1), weights.sum(1))
            elif o.name == "forces":
                r = (out["forces"] - labels["forces"]) / self.energy_scale[:, None, None]
                parts[o.name] = ((atom_w * (r ** 2).sum(-1)).sum(1), 3 * atom_w.sum(1))
            else:
                j = self.atom_outputs.index(o.name)
                r = (out[o.name] - labels[o.name]) / self.output_scale[:, j:j + 1]
                parts[o.name] = ((atom_w * r ** 2).sum(1), atom_w.sum(1))
        return parts

    def _loss(self, parts: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        losses = {}
        for o in self.outputs:
            sse, count = parts[o.name]
            mse = sse / count.clamp_min(1e-300)
            losses[o.name] = mse if o.reduction == "mse" else torch.sqrt(mse)
        return total_loss(losses, self.outputs), losses

    def batch_loss(self, idx, sums):
        idx = torch.sort(idx[0]).values  # the members share the batch: one order (fit_committee)
        batch, labels = self.train.batch(idx)
        parts = self._squares(batch, labels, self.weights[:, idx], create_graph=True)
        for name, (sse, count) in parts.items():
            _add(sums, name, sse.detach(), count.detach())
        return self._loss(parts)

    def _scores(self, sums: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        loss, losses = self._loss(sums)
        metrics = {}
        for o in self.outputs:
            sse, count = sums[o.name]
            scale = (self.energy_scale if o.name in ("energy", "forces")
                     else self.output_scale[:, self.atom_outputs.index(o.name)])
            unit = 1000.0 if o.name == "energy" else 1.0
            metrics[f"{o.name}_rmse"] = (torch.sqrt(sse / count.clamp_min(1e-300)) * scale * unit).detach().cpu().numpy()
        return loss.detach().cpu().numpy(), metrics

    def train_scores(self, sums):
        return self._scores(sums)

    def validation_scores(self):
        if self.val is None:
            return None
        sums: dict = {}
        for idx, batch, labels in self.val.chunks(max(self.batch_size, 64)):
            ones = torch.ones((self.n_members, len(idx)), dtype=self.weights.dtype, device=self.device)
            with torch.enable_grad() if self.need_forces else torch.no_grad():
                parts = self._squares(batch, labels, ones, create_graph=False)
            for name, (sse, count) in parts.items():
                _add(sums, name, sse.detach(), count.detach())
        return self._scores(sums)

    def remember_best(self, member: int) -> None:
        for name, v in self.params.items():
            self.best[name][member] = v.detach()[member]

    def restore_best(self) -> None:
        self._write(self.best)

    def _write(self, values: dict) -> None:
        """Put stacked weights ``values`` into the members' own modules."""
        with torch.no_grad():
            for k, m in enumerate(self.members):
                for name, v in values.items():
                    m.get_parameter(name).copy_(v[k])

    def progress_postfix(self, metrics):
        return {f"val {k.removesuffix('_rmse')}": f"{float(np.mean(v)):.3g}" for k, v in metrics.items()}


def _add(sums: dict, name: str, sse: torch.Tensor, count: torch.Tensor) -> None:
    if name in sums:
        a, b = sums[name]
        sums[name] = (a + sse, b + count)
    else:
        sums[name] = (sse, count)


_DEF = DEFAULTS["potential"]


def fit_committee(committee: Committee, train: Structures, val: Structures | None = None, resample: str = "none",
                  seed: int = 0, progress: bool = False, vectorise: bool = True, **fit_kwargs: Any) -> list[History]:
    """Train the members of ``committee`` (see the module's docstring); returns their histories.

    ``vectorise`` (default): all members in one run of the training loop
    (:class:`CommitteeObjective`), sharing the mini-batch order drawn from ``seed``; each member has
    its own history, early stopping, plateau schedule and best weights. ``vectorise=False``: one
    :func:`~mlexplore.training.fit` per member, member k with batch order ``seed + k`` (and
    ``checkpoint_dir`` if given). ``fit_kwargs`` are :func:`~mlexplore.training.fit`'s (``targets``,
    ``loss_weights``, ``epochs``, ``lr``, ``batch_size``, ``weight_decay``, ``patience``,
    ``lr_patience``, ``feature_scaling``, ``device``, ``dtype``, ``cache_features``, …; not ``seed``).
    """
    if not isinstance(committee, Committee):
        raise InputError(f"expected a Committee, got {type(committee).__name__}", field="committee")
    if resample not in RESAMPLING:
        raise InputError(f"resample must be one of {', '.join(RESAMPLING)}, got {resample!r}", field="resample")
    if "seed" in fit_kwargs:
        raise InputError("give the committee's seed as seed=; member k uses seed + k", field="seed")
    known = set(inspect.signature(fit).parameters) - {"model", "train", "val", "seed", "progress"}
    unknown = sorted(set(fit_kwargs) - known)
    if unknown:
        raise InputError(f"fit_committee got unknown argument(s) {', '.join(unknown)}; it takes fit()'s: "
                         f"{', '.join(sorted(known))}", field=unknown[0])
    train = StructureDataset.coerce(train, "train")
    val = None if val is None else StructureDataset.coerce(val, "val")
    seed = check_seed(seed)
    if not vectorise:
        histories = []
        for k, member in enumerate(committee.members):
            part = train
            if resample == "bootstrap":
                part = train.select(np.repeat(np.arange(len(train)), bootstrap_counts(len(train), seed + k)))
            histories.append(fit(member, part, val, seed=seed + k, progress=progress, **fit_kwargs))
        if resample == "bootstrap":  # member 0 recorded the domain of its own sample: record the whole set's
            features = committee.descriptor.compute(train, device="cpu", dtype=torch.float64)
            committee.domain.fit(features, committee.element_index(torch.as_tensor(train.numbers)))
        return histories
    return _fit_together(committee, train, val, resample, seed, progress, **fit_kwargs)


def _fit_together(committee: Committee, train: StructureDataset, val: StructureDataset | None, resample: str,
                  seed: int, progress: bool, targets: Sequence[str] = ("energy", "forces"),
                  loss_weights: dict[str, float] | None = None, epochs: int = _DEF.epochs, lr: float = _DEF.lr,
                  batch_size: int = _DEF.batch_size, weight_decay: float = 0.0, patience: int | None = _DEF.patience,
                  lr_patience: int | None = None, feature_scaling: str = "minmax", normalise: bool = True,
                  device: Any = "auto", dtype: torch.dtype = _DEF.dtype, callback=None,
                  cache_features: bool | None = None, checkpoint_dir=None, pca_init: int | None = None
                  ) -> list[History]:
    """:func:`fit_committee`'s vectorised path: :func:`fit`'s checks and normalisation for every member
    (from the whole training set, featurised once), then one :func:`train_loop` of a
    :class:`CommitteeObjective`."""
    if checkpoint_dir is not None:
        raise InputError("checkpoints are written per member: use fit_committee(..., vectorise=False) with "
                         "checkpoint_dir, or save the committee afterwards", field="checkpoint_dir")
    targets = list(targets)
    check_training_options(epochs, lr, batch_size=batch_size, patience=patience, weight_decay=weight_decay, seed=seed)
    members = list(committee.members)
    check_targets(members[0], train, val, targets)
    outputs = loss_outputs(members[0], targets, loss_weights)
    device = resolve_device(device)
    committee.to(device=device, dtype=dtype)
    if normalise:
        features = committee.descriptor.compute(train, device="cpu", dtype=torch.float64)
        for m in members:
            set_normalisation(m, train, device, dtype, feature_scaling, pca_init, features=features)
    tr, va = prepare_sets(members[0], train, val, device, dtype, targets, cache_features)
    weights = (np.stack([bootstrap_counts(len(train), seed + k) for k in range(len(members))])
               if resample == "bootstrap" else None)
    objective = CommitteeObjective(committee, tr, va, outputs, batch_size, device, weights)
    return train_loop(objective, epochs=epochs, lr=lr, weight_decay=weight_decay, patience=patience,
                      lr_patience=plateau_patience(lr_patience, patience),
                      seeds=[seed] * len(members), callbacks=callback, progress=progress, desc="committee")


def calibrate_committee(committee: Committee, val: Structures, forces: bool | None = None,
                        batch_size: int = 64) -> dict[str, float]:
    """Fit and store the committee's ``std_scale`` on ``val`` (see the module's docstring).

    ``forces``: calibrate on the force components (default: when ``val`` has forces), else on the
    energies per atom. Returns ``scale``, and for each quantity used the RMSE and the root mean
    committee variance before and after (``rmse``, ``std_before``, ``std_after``; eV/atom, eV/Å).
    """
    from .potential import Potential

    val = StructureDataset.coerce(val, "val")
    forces = ("forces" in val) if forces is None else bool(forces)
    if forces and "forces" not in val:
        raise InputError("the validation set has no forces to calibrate on", field="forces")
    if "energy" not in val:
        raise InputError("the validation set has no energies", field="val")
    committee.std_scale.fill_(1.0)
    pred = Potential(committee, device=next(committee.parameters()).device,
                     dtype=next(committee.parameters()).dtype, extrapolation="ignore").predict(
        val, forces=forces, batch_size=batch_size)
    n = val.n_atoms
    e_err = (pred["energy"] - val.label("energy")) / n
    e_std = pred["energy_std"] / n
    if forces:
        err, std = (pred["forces"] - val.label("forces")).ravel(), pred["forces_std"].ravel()
    else:
        err, std = e_err, e_std
    mean_var = float(np.mean(std ** 2))
    if mean_var <= 0:
        raise InputError("the committee's members agree exactly (zero spread): nothing to calibrate; train the "
                         "members from different seeds or samples", field="committee")
    scale = float(np.sqrt(np.mean(err ** 2) / mean_var))
    committee.std_scale.fill_(scale)
    report = {"scale": scale, "calibrated_on": "forces" if forces else "energy"}
    for name, e, s in (("energy", e_err, e_std),) + ((("forces", err, std),) if forces else ()):
        rmse, before = float(np.sqrt(np.mean(e ** 2))), float(np.sqrt(np.mean(s ** 2)))
        report.update({f"{name}_rmse": rmse, f"{name}_std_before": before, f"{name}_std_after": before * scale})
    return report

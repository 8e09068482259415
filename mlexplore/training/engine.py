"""The training loop of mlexplore: every model in the package is trained by :func:`train_loop`.

What differs between a Behler–Parrinello potential, a multi-task lattice or graph network, K
vectorised ensemble members and the one-dimensional teaching network is *what* is trained — the
parameters, how a mini-batch is cut, which outputs enter the loss — not *how*. That part is an
:class:`Objective`; the loop owns the rest, once:

- the optimiser (:func:`make_optimizer`, the only place an optimiser is built) and the optional
  plateau schedule of the learning rate;
- the epoch's mini-batch order from each member's seed (``torch.randperm`` with its own generator);
- the non-finite-loss check (per batch, naming epoch, batch and target; per epoch for vectorised
  members, so that there is no host round trip per batch);
- the history (:class:`History`), early stopping on the validation loss, the best weights kept
  (and restored at the end), callbacks that can stop training, Ctrl-C keeping the best model;
- atomic ``best.pt`` / ``last.pt`` checkpoints (for objectives that can be saved);
- the progress bar.

Vectorised members (K models trained together with ``torch.func``) are a mode of the same loop:
the objective's loss has shape ``(K,)``, every member has its own batch order, history, early
stopping and best weights.

**One loss definition.** Each output (energy, forces, a per-atom or per-site target) is a
:class:`Output` with its weight and reduction; :func:`output_loss` reduces the scaled residuals
and :func:`total_loss` weighs them: ``L = Σ_t w_t · MSE_t`` (SPEC §5, 004 §3.4; ``reduction="mse"``)
or ``L = Σ_t α_t · RMSE_t`` (000's ``Σ α_i ||y_i − ŷ_i||`` divided by √n; ``reduction="rmse"``).

**One documented set of defaults**: :data:`DEFAULTS`, by protocol. Each entry point takes its
defaults from there (its signature shows the values).
"""

from __future__ import annotations

import abc
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.splits import check_seed
from ..errors import InputError, check_positive, check_whole

__all__ = ["History", "TrainingError", "resolve_device", "make_optimizer", "Output", "output_loss", "total_loss",
           "Objective", "train_loop", "TrainingDefaults", "DEFAULTS", "check_training_options", "stop_after",
           "atoms_of", "MemberPlateau"]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says where."""


def resolve_device(device: Any = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"``, ``"cuda:1"``, ``"cpu"``, ``"mps"`` or a
    ``torch.device``. A name torch does not know, or an accelerator this machine lacks, is an
    :class:`InputError` naming ``device`` (instead of a failure in the first tensor moved there)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{device!r} is not a device: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'",
                         field="device") from None
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index is not None and dev.index >= torch.cuda.device_count())):
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise InputError(f"{device!r} asked for, but this machine has {have} CUDA device(s); use 'auto' or "
                         "'cpu'", field="device")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"{device!r} asked for, but MPS is not available here; use 'auto' or 'cpu'", field="device")
    return dev


@dataclass(frozen=True)
class TrainingDefaults:
    """The training settings of one protocol: at most ``epochs`` epochs of Adam at learning rate
    ``lr``; mini-batches of ``batch_size`` structures or ``batch_fraction`` of the training set;
    stop after ``patience`` epochs without a better validation loss (None: never); float precision
    ``dtype``; ``reduction`` of each output's loss (``"mse"`` or ``"rmse"``)."""

    epochs: int
    lr: float
    patience: int | None
    dtype: torch.dtype
    reduction: str
    batch_size: int | None = None
    batch_fraction: float | None = None
    fractions: tuple[float, ...] | None = None
    source: str = ""


#: The defaults of every training entry point, by protocol. Change a default here and the entry
#: point (its signature), the CLI and the docs follow.
DEFAULTS: dict[str, TrainingDefaults] = {
    # fit / train_potential / mlexplore train: BP potentials on energies (+ forces)
    "potential": TrainingDefaults(epochs=200, lr=1e-3, patience=50, dtype=torch.float64, reduction="mse",
                                  batch_size=16, source="SPEC §5; n2p2-like force weighting (004 §3.4)"),
    # fit_tasks / fit_task_members / compare_tasks: the STL/MTL lattice networks of 000
    "tasks": TrainingDefaults(epochs=500, lr=1e-4, patience=50, dtype=torch.float32, reduction="rmse",
                              batch_fraction=0.1, fractions=(0.8, 0.1, 0.1),
                              source="000 §3 (Adam 1e-4, batch = 10 % of the training set, 90 % trains)"),
    # mlexplore compare (GraphNet by default): 001's learning rate and split (pass them to compare_tasks)
    "graph": TrainingDefaults(epochs=500, lr=1e-3, patience=50, dtype=torch.float32, reduction="rmse",
                              batch_fraction=0.1, fractions=(0.7, 0.15, 0.15),
                              source="001 §4.1 (Adam 1e-3, split 70/15/15)"),
    # compare_bases: descriptor bases on Fe (002 §4)
    "bases": TrainingDefaults(epochs=300, lr=3e-3, patience=50, dtype=torch.float64, reduction="mse",
                              batch_size=8, source="002 §4 (small Fe cells: short runs, larger steps)"),
    # fit_ldos: the LDOS surrogate, one grid point per sample (003; Ellis et al. 2021). Epochs and
    # optimiser as MALA's basic example (100 epochs of Adam; it uses batches of 40 points at 1e-5);
    # batches of 1024 points at 1e-3 are this toolkit's choice: on a CPU small batches pay per-batch overhead
    "ldos": TrainingDefaults(epochs=100, lr=1e-3, patience=10, dtype=torch.float32, reduction="mse",
                             batch_size=1024, source="MALA examples/basic/ex01 (Adam, 100 epochs); batch 1024, lr 1e-3"),
    # fit_toy: one-dimensional regression for teaching (002 §2.1)
    "toy": TrainingDefaults(epochs=500, lr=1e-2, patience=None, dtype=torch.float64, reduction="mse",
                            batch_size=16, source="002 §2.1"),
}


def check_training_options(epochs: int, lr: float, batch_size: int | None = None,
                           batch_fraction: float | None = None, patience: int | None = None,
                           weight_decay: float = 0.0, seed: Any = 0) -> None:
    """Refuse settings no training can run with, naming the argument and the value (before any
    work is done): whole numbers ≥ 1 for ``epochs`` and ``batch_size``, a finite ``lr`` > 0, a
    ``batch_fraction`` in (0, 1], ``patience`` ≥ 0 or None, a finite ``weight_decay`` ≥ 0, and
    ``seed`` a whole number ≥ 0 (or, for vectorised members, a sequence of them)."""
    def number(x: Any) -> bool:
        return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))

    check_whole(epochs, "epochs", 1)
    check_positive(lr, "lr")
    if batch_size is not None:
        check_whole(batch_size, "batch_size", 1)
    if batch_fraction is not None and not (number(batch_fraction) and 0 < batch_fraction <= 1):
        raise InputError(f"batch_fraction must be in (0, 1], got {batch_fraction!r}", field="batch_fraction")
    if patience is not None and (isinstance(patience, (bool, np.bool_)) or not isinstance(patience, (int, np.integer))
                                 or patience < 0):
        raise InputError(f"patience must be a whole number ≥ 0 or None, got {patience!r}", field="patience")
    if not (number(weight_decay) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise InputError(f"weight_decay must be a number ≥ 0, got {weight_decay!r}", field="weight_decay")
    for s in (seed if isinstance(seed, (list, tuple, np.ndarray)) else [seed]):
        check_seed(s)


def make_optimizer(parameters, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser of every training run in mlexplore: Adam (element-wise, so vectorised members
    follow exactly the trajectories they would follow alone)."""
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


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


def stop_after(history: History, epoch: int, patience: int | None, callback) -> bool:
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


# ------------------------------------------------------------------------------------------- losses
@dataclass(frozen=True)
class Output:
    """One term of the loss: the target ``name``, its ``weight`` and how its residuals are reduced
    (``"mse"``: mean square; ``"rmse"``: root mean square)."""

    name: str
    weight: float = 1.0
    reduction: str = "mse"

    def __post_init__(self):
        if self.reduction not in ("mse", "rmse"):
            raise InputError(f"reduction must be 'mse' or 'rmse', got {self.reduction!r}", field="reduction")
        if not math.isfinite(self.weight) or self.weight < 0:
            raise InputError(f"the loss weight of {self.name!r} must be a finite number ≥ 0, got {self.weight!r}",
                             field="loss_weights")


def outputs_from(names: Sequence[str], weights: Mapping[str, float] | None, reduction: str) -> list[Output]:
    """The :class:`Output` of each target name, weight 1 unless ``weights`` says otherwise."""
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(names))
    if unknown:  # ignored, as before; said, because a misspelt name would otherwise weigh nothing
        warnings.warn(f"loss_weights: {', '.join(map(repr, unknown))} is not a target of this model "
                      f"({', '.join(names)}) and is ignored; this will become an error", FutureWarning, stacklevel=3)
    return [Output(n, float(weights.get(n, 1.0)), reduction) for n in names]


def output_loss(residual: torch.Tensor, reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of one output from its scaled residuals ``(prediction − reference) / scale`` and the
    squared residuals (for the epoch's running RMSE): ``mean(r²)`` or ``sqrt(mean(r²))``."""
    squared = residual ** 2
    mean = squared.mean()
    return (mean if reduction == "mse" else torch.sqrt(mean)), squared


def total_loss(parts: Mapping[str, torch.Tensor], outputs: Sequence[Output]) -> torch.Tensor:
    """``Σ_t w_t · loss_t`` over the outputs, in their order."""
    total = 0.0
    for o in outputs:
        total = total + o.weight * parts[o.name]
    return total


# ----------------------------------------------------------------------------------------- the loop
class Objective(abc.ABC):
    """What :func:`train_loop` trains. Subclasses say what the parameters are, how a batch's loss
    is computed and how the epoch is scored (the abstract methods); the loop does the rest.

    ``n_members`` > 1 (with ``vectorised = True``) means K members trained together: indices come
    as ``(K, B)``, losses as ``(K,)`` and scores as arrays of K values.
    """

    n_members: int = 1
    vectorised: bool = False
    device: torch.device = torch.device("cpu")
    #: structures (samples) in the training set, and per mini-batch: set by the subclass
    n_train: int
    batch_size: int

    @abc.abstractmethod
    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimiser updates."""

    def train_mode(self, training: bool) -> None:
        """Switch the model(s) between training and evaluation mode."""

    @abc.abstractmethod
    def batch_loss(self, idx: torch.Tensor, sums: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of the structures ``idx`` (and its parts by output); add what the epoch's training
        scores need to ``sums`` (kept on the device)."""

    @abc.abstractmethod
    def train_scores(self, sums: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The epoch's training loss per member and the metrics by name (e.g. ``energy_rmse``)."""

    def validation_scores(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The validation loss per member and the metrics, or None without a validation set."""
        return None

    def epoch_scores(self, sums: dict, finite: torch.Tensor | None = None
                     ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Training loss and metrics, validation loss and metrics (the training ones without a
        validation set) and, for vectorised members, which members' losses stayed finite
        (``finite``, on the device): what the loop logs after an epoch. Vectorised objectives
        override it to bring everything to the host in one transfer."""
        train_loss, train_metrics = self.train_scores(sums)
        scored = self.validation_scores()
        val_loss, val_metrics = scored if scored is not None else (train_loss, train_metrics)
        ok = finite.cpu().numpy() if finite is not None else np.ones(self.n_members, dtype=bool)
        return train_loss, train_metrics, val_loss, val_metrics, ok

    def remember_best(self, member: int) -> None:
        """Keep the present weights of ``member`` as its best."""

    def restore_best(self) -> None:
        """Put the best weights back into the model(s)."""

    def describe_nonfinite(self, idx: torch.Tensor, loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> str:
        """Which targets (and structures) gave a non-finite loss."""
        bad = [k for k, v in parts.items() if not torch.isfinite(v).all()] or list(parts)
        return f"target {', '.join(bad)}"

    def save_checkpoint(self, path: Path, extra: dict) -> None:
        raise InputError(f"{type(self).__name__} cannot write checkpoints", field="checkpoint_dir")

    def progress_postfix(self, metrics: dict[str, np.ndarray]) -> dict[str, str]:
        return {f"val {k}": f"{float(v[0]):.3g}" for k, v in metrics.items()}


class MemberPlateau:
    """``ReduceLROnPlateau`` (halve after ``patience`` epochs without a relative improvement of
    1e-4, as torch's defaults) for each of K vectorised members, whose parameters are stacked on a
    first axis of length K.

    Adam's step is proportional to its learning rate (weight decay enters through the gradient), so
    member k's own rate ``lr · factor_k`` is exactly the shared step scaled by ``factor_k``:
    :meth:`step` takes the optimiser's step and scales each member's part of it; the optimiser's
    moments are those it would have at any rate.
    """

    def __init__(self, n_members: int, patience: int) -> None:
        self.patience = int(patience)
        self.factor = np.ones(n_members)
        self.best = np.full(n_members, np.inf)
        self.bad = np.zeros(n_members, dtype=int)
        self._scale: dict[tuple, torch.Tensor] = {}

    def update(self, val_loss: np.ndarray, active: Sequence[bool]) -> None:
        """After an epoch: count the members' epochs without improvement, halve where too many."""
        for k, v in enumerate(np.asarray(val_loss, dtype=float)):
            if not active[k]:
                continue
            if v < self.best[k] * (1 - 1e-4):
                self.best[k], self.bad[k] = v, 0
            else:
                self.bad[k] += 1
                if self.bad[k] > self.patience:
                    self.factor[k] *= 0.5
                    self.bad[k] = 0
        self._scale.clear()

    def step(self, opt: torch.optim.Optimizer) -> None:
        if (self.factor == 1).all():
            opt.step()
            return
        params = [p for group in opt.param_groups for p in group["params"]]
        before = [p.detach().clone() for p in params]
        opt.step()
        with torch.no_grad():
            for p, old in zip(params, before):
                key = (p.device, p.dtype, p.dim())
                if key not in self._scale:
                    self._scale[key] = torch.as_tensor(self.factor, dtype=p.dtype, device=p.device).view(
                        -1, *([1] * (p.dim() - 1)))
                p.copy_(old + self._scale[key] * (p - old))


def train_loop(objective: Objective, *, epochs: int, lr: float, weight_decay: float = 0.0,
               patience: int | None = None, lr_patience: int | None = None, seeds: Sequence[int] = (0,),
               callbacks: Sequence[Callable | None] | Callable | None = None, progress: bool = False,
               desc: str = "training", checkpoint_dir: str | os.PathLike | None = None,
               restore_best: bool = True) -> list[History]:
    """Train ``objective`` for at most ``epochs`` epochs; one :class:`History` per member.

    Parameters
    ----------
    lr, weight_decay:
        Adam's learning rate and L2 penalty (:func:`make_optimizer`).
    patience:
        Epochs without a better validation loss before a member stops (None: never).
    lr_patience:
        Halve the learning rate after this many epochs without a better validation loss
        (``ReduceLROnPlateau``; None: constant learning rate). Vectorised members each have their
        own rate (:class:`MemberPlateau`).
    seeds:
        One per member: the seed of its mini-batch order.
    callbacks:
        ``callback(epoch, history)`` after every epoch (one per member, or one for a single model);
        returning ``False`` stops that member.
    checkpoint_dir:
        Where ``best.pt`` (on every improvement) and ``last.pt`` (every epoch) are written,
        atomically, with the history.
    restore_best:
        End with the weights of the best validation epoch (else: the last ones).

    Ctrl-C (``KeyboardInterrupt``) ends training after marking every history ``interrupted``;
    the best weights are restored as after a normal end.
    """
    from tqdm.auto import tqdm

    K = objective.n_members
    seeds = [int(s) for s in seeds]
    if len(seeds) != K:
        raise InputError(f"{K} members need {K} seeds, got {len(seeds)}", field="seeds")
    if callbacks is None or callable(callbacks):
        callbacks = [callbacks] * K
    callbacks = list(callbacks)
    device = objective.device
    opt = make_optimizer(objective.parameters(), lr, weight_decay)
    sched = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=lr_patience)
             if lr_patience is not None and not objective.vectorised else None)
    member_rates = MemberPlateau(K, lr_patience) if lr_patience is not None and objective.vectorised else None
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    histories = [History() for _ in range(K)]
    active = [True] * K
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    n, batch = objective.n_train, objective.batch_size
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress)
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            objective.train_mode(True)
            if objective.vectorised:
                order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
                finite = torch.ones(K, dtype=torch.bool, device=device)
            else:
                order = torch.randperm(n, generator=gens[0]).to(device)
            sums: dict = {}
            for b, start in enumerate(range(0, n, batch)):
                idx = order[:, start:start + batch] if objective.vectorised else order[start:start + batch]
                loss, parts = objective.batch_loss(idx, sums)
                if objective.vectorised:
                    finite &= torch.isfinite(loss)  # checked once per epoch: no device round trip per batch
                elif not torch.isfinite(loss):
                    raise TrainingError(f"the loss became {float(loss.detach())} at epoch {epoch}, batch {b} "
                                        f"({objective.describe_nonfinite(idx, loss, parts)}); lower the learning "
                                        "rate or check the labels")
                opt.zero_grad(set_to_none=True)
                (loss.sum() if objective.vectorised else loss).backward()
                if member_rates is not None:
                    member_rates.step(opt)
                else:
                    opt.step()
            objective.train_mode(False)
            train_loss, train_metrics, val_loss, val_metrics, ok = objective.epoch_scores(
                sums, finite if objective.vectorised else None)
            if not ok.all():
                bad = int(np.nonzero(~ok)[0][0])
                raise TrainingError(f"member {bad}: the loss became non-finite in epoch {epoch}")
            if sched is not None:
                sched.step(float(val_loss[0]))
            if member_rates is not None:
                member_rates.update(val_loss, active)
            rate = opt.param_groups[0]["lr"]
            seconds = (time.perf_counter() - t0) / sum(active)
            for k in range(K):
                if not active[k]:
                    continue
                h = histories[k]
                improved = h.log_epoch(epoch, train_loss[k], val_loss[k],
                                       rate * (member_rates.factor[k] if member_rates is not None else 1.0), seconds)
                for name, v in train_metrics.items():
                    h.add(f"train_{name}", v[k])
                for name, v in val_metrics.items():
                    h.add(f"val_{name}", v[k])
                if improved:
                    objective.remember_best(k)
                    if ckpt is not None:
                        objective.save_checkpoint(ckpt / "best.pt", {"history": h.as_dict(), "epoch": epoch})
                if ckpt is not None:
                    objective.save_checkpoint(ckpt / "last.pt", {"history": h.as_dict(), "epoch": epoch})
                if stop_after(h, epoch, patience, callbacks[k]):
                    active[k] = False
            if progress:
                bar.set_postfix(objective.progress_postfix(val_metrics))
            if not any(active):
                break
    except KeyboardInterrupt:
        for h in histories:
            h.interrupted = True
    finally:
        bar.close()
    if restore_best:
        objective.restore_best()
    if ckpt is not None and histories[0].best_epoch >= 0 and not (ckpt / "best.pt").exists():
        objective.save_checkpoint(ckpt / "best.pt", {"history": histories[0].as_dict()})
    return histories

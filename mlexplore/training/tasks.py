"""Training multi-task networks (fixed-lattice MLP of 000, graph network of 001) and comparing
STL/MTL task combinations (001 table 1).

A task model has ``tasks`` (``{name: "structure" | "site"}``), ``encode(dataset,
device, dtype)`` giving its input, and ``forward(inputs, normalised)`` giving
``(S,)`` per-structure and ``(N,)`` per-site predictions.
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..analysis.metrics import r2, rmse
from ..data.dataset import StructureDataset
from ..data.splits import random_split, stratified_split
from ..errors import InputError
from ..models.graph import GraphNet
from ..models.lattice import LatticeMLP
from .fit import History, resolve_device
from .task_models import fit_tasks, predict_tasks
from .task_records import (append_task_record, plan_fingerprint, read_task_records, run_from_record,
                           run_to_record)

__all__ = ["fit_tasks", "predict_tasks", "compare_tasks", "task_combinations", "format_task_table", "TaskRun",
           "TaskComparisonPlan", "plan_task_comparison", "summarise_task_runs"]


def task_combinations(targets: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of the targets, singles first (H, C, M, HC, HM, CM, HCM)."""
    return [c for r in range(1, len(targets) + 1) for c in itertools.combinations(targets, r)]


@dataclass
class TaskRun:
    """One trained model of a comparison: which run and task combination, the fitted model, its
    history, training time (s), and per target the test references and predictions."""

    run: int
    tasks: tuple[str, ...]
    model: Any
    history: History
    seconds: float
    reference: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        return ("MTL " if len(self.tasks) > 1 else "STL ") + "+".join(self.tasks)

    def errors(self, target: str) -> np.ndarray:
        """Test errors (predicted − reference) of one target."""
        return self.predicted[target] - self.reference[target]


@dataclass
class TaskComparisonPlan:
    """Everything :func:`compare_tasks` needs to train its models one at a time: the dataset,
    the targets and their kinds, the (run, combination) jobs in order, and the training options."""

    dataset: StructureDataset
    targets: list[str]
    kinds: dict[str, str]
    jobs: list[tuple[int, tuple[str, ...]]]
    options: dict[str, Any]
    #: the last split made, with its seed: the jobs are ordered run by run, so :meth:`run` makes each
    #: split once for all its task combinations (and once in all with vary="init"), not once per job
    #: (a split of 28 000 structures: 0.4 s)
    _last_split: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def _split(self, r: int) -> tuple[StructureDataset, StructureDataset | None, StructureDataset]:
        """The (train, validation, test) sets of run ``r``."""
        o = self.options
        split_seed = o["seed"] + r if o["vary"] == "split" else o["seed"]
        if self._last_split is None or self._last_split[0] != split_seed:
            self._last_split = (split_seed, self._make_split(split_seed))
        return self._last_split[1]

    def _make_split(self, split_seed: int) -> tuple[StructureDataset, StructureDataset | None, StructureDataset]:
        o = self.options
        split = (stratified_split if o["stratify"] else random_split)(self.dataset, o["fractions"], seed=split_seed)
        train, val, test = split if len(split) == 3 else (split[0], None, split[1])
        for part, name in ((train, "training"), (val, "validation"), (test, "test")):
            if part is not None and len(part) == 0:
                how = "stratified by composition" if o["stratify"] else "random"
                raise InputError(f"the {how} split {o['fractions']} of {len(self.dataset)} structures leaves the "
                                 f"{name} set empty: use more structures"
                                 + (" or stratify=False" if o["stratify"] else ""), field="fractions")
        return train, val, test

    def _network(self, r: int, combo: tuple[str, ...]):
        """The untrained network of run ``r`` (initial weights from seed ``seed + r``)."""
        o = self.options
        torch.manual_seed(o["seed"] + r)
        tasks = {t: self.kinds[t] for t in combo}
        if o["model"] == "lattice":
            return LatticeMLP(int(self.dataset.n_atoms[0]), o["elements"], tasks, **o["model_kwargs"])
        return GraphNet(o["elements"], tasks, **o["model_kwargs"])

    def _scored(self, r, combo, net, history, seconds, test) -> TaskRun:
        pred = predict_tasks(net, test)
        return TaskRun(run=r, tasks=combo, model=net, history=history, seconds=seconds,
                       reference={t: test.label(t).reshape(-1) for t in combo},
                       predicted={t: pred[t] for t in combo})

    def run(self, job: int, callback=None) -> TaskRun:
        """Train and score job number ``job``; ``callback(epoch, history)`` every epoch (return False to stop)."""
        r, combo = self.jobs[job]
        o = self.options
        train, val, test = self._split(r)
        net = self._network(r, combo)
        t0 = time.perf_counter()
        history = fit_tasks(net, train, val, epochs=o["epochs"], lr=o["lr"], batch_fraction=o["batch_fraction"],
                            patience=o.get("patience", 50), device=o["device"], seed=o["seed"] + r, callback=callback)
        return self._scored(r, combo, net, history, time.perf_counter() - t0, test)

    def splits_of(self, jobs: Sequence[int]) -> dict[int, tuple]:
        """The (train, validation, test) sets of the runs of these jobs, each run's split made once
        (a run's split serves all its task combinations)."""
        return {r: self._split(r) for r in dict.fromkeys(self.jobs[j][0] for j in jobs)}

    def can_run_together(self, jobs: Sequence[int], splits: dict[int, tuple] | None = None) -> bool:
        """Whether :meth:`run_together` can train these jobs at once: lattice models of one task
        combination on splits of equal sizes. ``splits``: from :meth:`splits_of`, if already made."""
        if self.options["model"] != "lattice" or len({self.jobs[j][1] for j in jobs}) != 1:
            return False
        if len(np.unique(self.dataset.n_atoms)) != 1:
            return False
        splits = splits if splits is not None else self.splits_of(jobs)
        sizes = {tuple(len(p) if p is not None else -1 for p in splits[self.jobs[j][0]]) for j in jobs}
        return len(sizes) == 1

    def run_together(self, jobs: Sequence[int], splits: dict[int, tuple] | None = None) -> list[TaskRun]:
        """Train jobs of one task combination together, vectorised (:func:`fit_task_members`): each
        model is the one :meth:`run` would give (same split, initial weights, batch order, early
        stopping; to float rounding). ``seconds`` of each run: the group's time divided by its size.
        ``splits``: from :meth:`splits_of`, if already made."""
        from .ensemble import fit_task_members

        splits = splits if splits is not None else self.splits_of(jobs)
        if not self.can_run_together(jobs, splits):
            raise InputError("these jobs cannot be trained together (graph models, different task "
                             "combinations or split sizes): use run()", field="jobs")
        o = self.options
        runs = [self.jobs[j][0] for j in jobs]
        combo = self.jobs[jobs[0]][1]
        splits = [splits[r] for r in runs]
        nets = [self._network(r, combo) for r in runs]
        t0 = time.perf_counter()
        histories = fit_task_members(nets, [s[0] for s in splits],
                                     [s[1] for s in splits] if splits[0][1] is not None else None,
                                     seeds=[o["seed"] + r for r in runs], epochs=o["epochs"], lr=o["lr"],
                                     batch_fraction=o["batch_fraction"], patience=o.get("patience", 50),
                                     device=o["device"])
        seconds = (time.perf_counter() - t0) / len(jobs)
        return [self._scored(r, combo, net, h, seconds, s[2]) for r, net, h, s in zip(runs, nets, histories, splits)]


def plan_task_comparison(dataset: StructureDataset, targets: Sequence[str],
                         combinations: Sequence[Sequence[str]] | None = None, model: str = "lattice",
                         n_runs: int = 3, fractions: Sequence[float] = (0.8, 0.1, 0.1), stratify: bool = True,
                         epochs: int = 500, lr: float = 1e-4, batch_fraction: float = 0.1,
                         elements: Sequence[str] | None = None, device: Any = "auto", seed: int = 0,
                         vary: str = "split", patience: int | None = 50, **model_kwargs) -> TaskComparisonPlan:
    """Check the inputs of :func:`compare_tasks` and list its jobs (same arguments)."""
    if n_runs < 1:
        raise InputError("n_runs must be ≥ 1", field="n_runs")
    if vary not in ("split", "init"):
        raise InputError(f"vary must be 'split' or 'init', got {vary!r}", field="vary")
    if model not in ("lattice", "graph"):
        raise InputError(f"model must be 'lattice' or 'graph', got {model!r}", field="model")
    # the remaining keywords go to the network: name a misspelt or misplaced one here, not in job 1
    cls, fixed = (LatticeMLP, {"self", "n_sites", "elements", "tasks"}) if model == "lattice" else \
        (GraphNet, {"self", "elements", "tasks"})
    allowed = [k for k in inspect.signature(cls.__init__).parameters if k not in fixed]
    unknown = sorted(set(model_kwargs) - set(allowed))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for the {model} model; it takes "
                         f"{', '.join(allowed)}, and compare_tasks takes n_runs, fractions, stratify, epochs, lr, "
                         "batch_fraction, patience, elements, device, seed, vary", field=unknown[0])
    targets = list(targets)
    if not targets:
        raise InputError("no targets chosen", field="targets")
    for t in targets:
        if t not in dataset:
            raise InputError(f"target {t!r} is not in the dataset (it has: {', '.join(dataset.label_names)})",
                             field="targets")
    combos = [tuple(c) for c in (combinations or task_combinations(targets))]
    if not combos:
        raise InputError("no task combinations chosen", field="combinations")
    for c in combos:
        unknown = [t for t in c if t not in targets]
        if unknown:
            raise InputError(f"combination {'+'.join(c)} uses {unknown}, not among the targets {targets}",
                             field="combinations")
    kinds = {t: "site" if dataset.is_per_atom(t) else "structure" for t in targets}
    options = dict(model=model, fractions=tuple(fractions), stratify=stratify, epochs=epochs, lr=lr,
                   batch_fraction=batch_fraction, elements=list(elements or dataset.elements), device=device,
                   seed=seed, vary=vary, model_kwargs=model_kwargs)
    if patience != 50:  # (only when changed, so that the fingerprints of earlier resume files stay valid)
        options["patience"] = patience
    jobs = [(r, c) for r in range(n_runs) for c in combos]
    return TaskComparisonPlan(dataset=dataset, targets=targets, kinds=kinds, jobs=jobs, options=options)


def summarise_task_runs(runs: Sequence[TaskRun]) -> list[dict]:
    """Rows of the comparison table from finished runs (any subset, e.g. after a stop):
    ``{"tasks", "n_tasks", "target", "rmse_mean", "rmse_std", "r2_mean", "r2_std", "seconds_mean",
    "fom", "n_runs"}``, with ``fom = 1 / (time × RMSE)`` (002 eq 4.7)."""
    scores: dict[tuple, dict[str, list]] = {}
    for run in runs:
        for t in run.tasks:
            s = scores.setdefault((run.tasks, t), {"rmse": [], "r2": [], "seconds": []})
            s["rmse"].append(rmse(run.reference[t], run.predicted[t]))
            s["r2"].append(r2(run.reference[t], run.predicted[t]))
            s["seconds"].append(run.seconds)
    rows = []
    for (combo, t), s in scores.items():
        rm, tm = float(np.mean(s["rmse"])), float(np.mean(s["seconds"]))
        rows.append({"tasks": "+".join(combo), "n_tasks": len(combo), "target": t,
                     "rmse_mean": rm, "rmse_std": float(np.std(s["rmse"])),
                     "r2_mean": float(np.mean(s["r2"])), "r2_std": float(np.std(s["r2"])),
                     "seconds_mean": tm, "fom": 1.0 / (tm * rm) if rm > 0 and tm > 0 else math.inf,
                     "n_runs": len(s["rmse"])})
    return rows


def compare_tasks(dataset: StructureDataset, targets: Sequence[str], combinations: Sequence[Sequence[str]] | None = None,
                  model: str = "lattice", n_runs: int = 3, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  stratify: bool = True, epochs: int = 500, lr: float = 1e-4, batch_fraction: float = 0.1,
                  elements: Sequence[str] | None = None, device: Any = "auto", seed: int = 0,
                  vary: str = "split", progress: bool = True, return_runs: bool = False,
                  resume_file: str | os.PathLike | None = None, patience: int | None = 50,
                  vectorise: bool | None = None, **model_kwargs) -> list[dict] | tuple[list[dict], list[TaskRun]]:
    """Train every STL and MTL combination of ``targets`` ``n_runs`` times; score on held-out test sets.

    ``model``: ``"lattice"`` (:class:`LatticeMLP`, 000; kwargs ``width``,
    ``activation``) or ``"graph"`` (:class:`GraphNet`, 001; kwargs ``cutoff``,
    ``width``, ``layers``, ``head``).

    ``vary="split"`` (000: repeated shuffled splits): run r uses the split with
    seed ``seed + r`` (stratified by composition by default) and initial weights
    from seed ``seed + r``. ``vary="init"`` (001: an ensemble of independently
    initialised models): every run uses the split of ``seed`` and only the
    initial weights change. Within a run every combination gets the same split,
    so the combinations are compared on equal footing. Returns the rows of
    :func:`summarise_task_runs` (and the :class:`TaskRun` list with ``return_runs``).

    ``patience``: epochs without a better validation loss before a model stops (None: never).

    ``resume_file`` (a ``.jsonl`` path): every finished model's test predictions and history
    are appended there, and a rerun with the same data and options skips those models
    (:mod:`mlexplore.training.task_records`); their :class:`TaskRun` has ``model=None``.
    Hours-long comparisons (GraphNets on a CPU) survive an interruption that way.

    ``vectorise``: train the ``n_runs`` models of each combination together as one vectorised
    ensemble (:func:`~mlexplore.training.ensemble.fit_task_members`; lattice models only). Each
    model is the one it would be alone, to float rounding; the time of a run is then the
    group's time divided by ``n_runs``. Default: on a CUDA device, where one small model
    leaves the GPU idle between kernel launches (4 runs of the CuAu comparison together:
    2.9× faster per model-epoch on an H100).
    """
    from tqdm.auto import tqdm

    plan = plan_task_comparison(dataset, targets, combinations, model=model, n_runs=n_runs, fractions=fractions,
                                stratify=stratify, epochs=epochs, lr=lr, batch_fraction=batch_fraction,
                                elements=elements, device=device, seed=seed, vary=vary, patience=patience,
                                **model_kwargs)
    fingerprint = plan_fingerprint(plan) if resume_file is not None else ""
    done = read_task_records(resume_file, fingerprint) if resume_file is not None else {}
    pending = [j for j in range(len(plan.jobs)) if j not in done]
    groups = [[j] for j in pending]
    together = model == "lattice" and resolve_device(device).type == "cuda" if vectorise is None else vectorise
    if together:  # the runs of one combination together
        by_combo: dict[tuple, list[int]] = {}
        for j in pending:
            by_combo.setdefault(plan.jobs[j][1], []).append(j)
        # every run's split made once, for all its combinations (a split of 28 000 structures: 0.4 s)
        splits = plan.splits_of(pending) if model == "lattice" else {}
        if all(plan.can_run_together(g, splits) for g in by_combo.values()):
            groups = list(by_combo.values())
        elif vectorise:
            raise InputError("vectorise=True needs lattice models, structures of one size and splits of equal "
                             "sizes", field="vectorise")
        else:
            together = False
    finished = {j: run_from_record(done[j], TaskRun) for j in done}
    with tqdm(total=len(plan.jobs), initial=len(done), desc="STL/MTL runs", disable=not progress) as bar:
        for group in groups:
            trained = plan.run_together(group, splits) if together else [plan.run(group[0])]
            for j, run in zip(group, trained):
                if resume_file is not None:
                    append_task_record(resume_file, run_to_record(run, j, fingerprint))
                finished[j] = run
            bar.update(len(group))
    runs = [finished[j] for j in range(len(plan.jobs))]
    rows = summarise_task_runs(runs)
    return (rows, runs) if return_runs else rows


def format_task_table(rows: list[dict]) -> str:
    """The comparison as a text table in the layout of 001 table 1 (one column per target)."""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    combos = list(dict.fromkeys(r["tasks"] for r in rows))
    cell = {(r["tasks"], r["target"]): r for r in rows}
    width = max(12, *(len(c) for c in combos))
    lines = [f"{'model':<{width}} " + " ".join(f"{t + ' RMSE (mean ± std)':>30}" for t in targets)
             + f" {'time s':>8}"]
    for c in combos:
        parts = []
        for t in targets:
            r = cell.get((c, t))
            parts.append(f"{r['rmse_mean']:>16.4g} ± {r['rmse_std']:<11.2g}" if r else f"{'-':>30}")
        secs = next(r["seconds_mean"] for r in rows if r["tasks"] == c)
        label = ("STL " if "+" not in c else "MTL ") + c
        lines.append(f"{label:<{width + 4}}" + " ".join(parts) + f" {secs:8.2f}")
    return "\n".join(lines)

"""Compare descriptor bases on one task: the same network, the same splits, only the basis differs.

The question of 002 §4 ("do spin terms help?", "is this basis worth its features?") asked
the way 000/001 ask theirs: repeated shuffled splits, mean ± std of the test errors, the
figure of merit ``1 / (time × RMSE)`` (002 eq 4.7). Every basis sees the same split in a
given run (paired comparison), so "best in k of N runs" says more than overlapping error bars.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..analysis.metrics import mae, per_group, r2, rmse
from ..data.dataset import StructureDataset
from ..data.splits import random_split
from ..errors import InputError
from ..execution import ExecutorLike
from ..models.bpnn import BPNN
from .engine import DEFAULTS
from .experiments import ExperimentPlan, ExperimentResult, deprecated_runs_pair, markdown_table, run_experiment
from .fit import fit, predict

_DEF = DEFAULTS["bases"]
#: the defaults of :func:`compare_bases` and :class:`BasisComparisonOptions` (one definition)
_BASIS = dict(fractions=(0.7, 0.15, 0.15), forces=False, hidden=(25, 25), activation="tanh",
              epochs=_DEF.epochs, lr=_DEF.lr, batch_size=_DEF.batch_size, device="auto", seed=0)

__all__ = ["compare_bases", "format_basis_table", "BasisComparisonOptions", "BasisComparisonPlan", "BasisRun"]


class BasisRun(dict):
    """One trained BPNN of :func:`compare_bases`, a dict as before: ``basis``, ``run``, ``n_features``,
    ``seconds`` (training), ``energy_rmse`` / ``energy_mae`` (meV/atom), ``energy_r2``,
    ``baseline_rmse`` (meV/atom), ``errors`` (test energy errors, meV/atom), ``test_rows``
    (positions of the test structures in the dataset), ``forces_rmse`` (eV/Å, with forces) and
    ``groups`` (test RMSE per group, with groups). Also ``variant`` (the basis) and
    :meth:`errors_of` / ``errors(target)`` as the other runs of an
    :class:`~mlexplore.training.experiments.ExperimentResult`."""

    @property
    def run(self) -> int:
        """The run number (split and initial weights of seed ``seed + run``)."""
        return self["run"]

    @property
    def variant(self) -> str:
        """The basis name."""
        return self["basis"]

    @property
    def seconds(self) -> float:
        """Training time (s)."""
        return self["seconds"]

    def errors_of(self, target: str | None = None) -> np.ndarray:
        """Test errors of the energy per atom (predicted − reference, meV/atom)."""
        if target not in (None, "energy"):
            raise InputError(f"compare_bases keeps the test errors of the energy only, not {target!r}",
                             field="target")
        return self["errors"]

    # the generic name of an experiment's runs; a dict key "errors" stays the array
    errors = errors_of


@dataclass
class BasisComparisonOptions:
    """The options of :func:`compare_bases` (see there), typed: the split ``fractions``, ``forces``
    (train and score forces too), the network (``hidden``, ``activation``), :func:`~mlexplore.training.fit`'s
    ``epochs``, ``lr``, ``batch_size`` (structures), ``device``, ``seed`` (run r: ``seed + r``) and
    ``fit_kwargs`` (more :func:`~mlexplore.training.fit` settings)."""

    fractions: tuple[float, ...] = _BASIS["fractions"]
    forces: bool = _BASIS["forces"]
    hidden: tuple[int, ...] = _BASIS["hidden"]
    activation: str = _BASIS["activation"]
    epochs: int = _BASIS["epochs"]
    lr: float = _BASIS["lr"]
    batch_size: int = _BASIS["batch_size"]
    device: Any = _BASIS["device"]
    seed: int = _BASIS["seed"]
    fit_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fractions = tuple(self.fractions)
        self.hidden = tuple(self.hidden)


@dataclass
class BasisComparisonPlan(ExperimentPlan):
    """Runs × bases of :func:`compare_bases`: job ``(r, name)`` trains a BPNN on ``bases[name]`` with
    the split and initial weights of seed ``seed + r``; every basis of a run sees the same split."""

    dataset: StructureDataset
    bases: dict[str, Any]
    n_runs: int = 5
    options: BasisComparisonOptions = field(default_factory=BasisComparisonOptions)
    groups: np.ndarray | None = None
    jobs: list[tuple[int, str]] = field(init=False)

    def __post_init__(self) -> None:
        if not self.bases:
            raise InputError("no bases to compare", field="bases")
        if self.n_runs < 1:
            raise InputError(f"n_runs must be ≥ 1, got {self.n_runs}", field="n_runs")
        if "energy" not in self.dataset:
            raise InputError("the dataset has no 'energy' label", field="energy")
        if self.groups is not None:
            self.groups = np.asarray(self.groups, dtype=object)
            if len(self.groups) != len(self.dataset):
                raise InputError(f"groups has {len(self.groups)} labels for {len(self.dataset)} structures",
                                 field="groups")
        self.bases = dict(self.bases)
        self.jobs = [(r, name) for r in range(self.n_runs) for name in self.bases]

    def _make_split(self, split_seed: int):
        o = self.options
        train, val, test = random_split(self.dataset, o.fractions, seed=split_seed)
        if len(test) == 0 or len(train) == 0:
            raise InputError(f"split {o.fractions} of {len(self.dataset)} structures leaves an empty "
                             "training or test set", field="fractions")
        position = {int(i): k for k, i in enumerate(self.dataset.ids)}
        rows = np.array([position[int(i)] for i in test.ids])
        ref = 1000.0 * test.label("energy") / test.n_atoms  # meV/atom
        mean = float(np.mean(1000.0 * train.label("energy") / train.n_atoms))
        return train, val, test, rows, ref, rmse(ref, np.full_like(ref, mean))

    def run(self, job: int, callback=None) -> BasisRun:
        r, name = self.jobs[job]
        o = self.options
        basis = self.bases[name]
        train, val, test, rows, ref, baseline = self.cached_split(o.seed + r, self._make_split)
        with torch.random.fork_rng(devices=[]):  # the same initial weights for a run, global RNG untouched
            torch.manual_seed(o.seed + r)
            model = BPNN(basis, hidden=o.hidden, activation=o.activation)
        targets = ["energy", "forces"] if o.forces else ["energy"]
        extra = dict(o.fit_kwargs)
        if callback is not None:
            extra["callback"] = callback
        t0 = time.perf_counter()
        fit(model, train, val, targets=targets, epochs=o.epochs, lr=o.lr, batch_size=o.batch_size, seed=o.seed + r,
            device=o.device, progress=False, **extra)
        seconds = time.perf_counter() - t0
        p = predict(model, test, forces=o.forces)
        pred = 1000.0 * p["energy"] / test.n_atoms  # meV/atom
        run = BasisRun(basis=name, run=r, n_features=int(basis.n_features), seconds=seconds,
                       energy_rmse=rmse(ref, pred), energy_mae=mae(ref, pred), energy_r2=r2(ref, pred),
                       baseline_rmse=baseline, errors=pred - ref, test_rows=rows)
        if o.forces:
            run["forces_rmse"] = rmse(test.atom_labels["forces"], p["forces"])
        if self.groups is not None:
            run["groups"] = {k: v["rmse"] for k, v in per_group(ref, pred, self.groups[rows]).items()}
        return run

    def summarise(self, runs: Sequence[BasisRun]) -> list[dict]:
        best: dict[str, int] = {}
        for r in dict.fromkeys(x["run"] for x in runs):
            scores = {x["basis"]: x["energy_rmse"] for x in runs if x["run"] == r}
            winner = min(scores, key=scores.get)
            best[winner] = best.get(winner, 0) + 1
        out = []
        for name in self.bases:
            mine = [x for x in runs if x["basis"] == name]
            if not mine:
                continue
            e = np.array([x["energy_rmse"] for x in mine])
            secs = float(np.mean([x["seconds"] for x in mine]))
            row = {"basis": name, "n_features": mine[0]["n_features"], "energy_rmse_mean": float(e.mean()),
                   "energy_rmse_std": float(e.std()),
                   "energy_mae_mean": float(np.mean([x["energy_mae"] for x in mine])),
                   "energy_r2_mean": float(np.mean([x["energy_r2"] for x in mine])),
                   "baseline_rmse_mean": float(np.mean([x["baseline_rmse"] for x in mine])),
                   "seconds_mean": secs, "fom": 1.0 / (secs * float(e.mean())) if e.mean() > 0 else float("inf"),
                   "best_runs": best.get(name, 0), "n_runs": len(mine)}
            if self.options.forces:
                f = np.array([x["forces_rmse"] for x in mine])
                row.update(forces_rmse_mean=float(f.mean()), forces_rmse_std=float(f.std()))
            if self.groups is not None:
                per = {}
                for g in dict.fromkeys(self.groups.tolist()):
                    vals = np.array([x["groups"][str(g)] for x in mine if str(g) in x["groups"]])
                    if vals.size:
                        per[str(g)] = (float(vals.mean()), float(vals.std()), int(vals.size))
                row["groups"] = per
            out.append(row)
        return out

    def format_table(self, rows: Sequence[dict]) -> str:
        return format_basis_table(rows)

    def markdown(self, rows: Sequence[dict]) -> str:
        forces = bool(rows) and "forces_rmse_mean" in rows[0]
        header = ["basis", "features", "energy RMSE (meV/atom)", "MAE (meV/atom)"] + \
            (["forces RMSE (eV/Å)"] if forces else []) + ["best in", "time (s)", "FOM"]
        cells = []
        for r in rows:
            line = [r["basis"], str(r["n_features"]), f"{r['energy_rmse_mean']:.2f} ± {r['energy_rmse_std']:.2f}",
                    f"{r['energy_mae_mean']:.2f}"]
            if forces:
                line.append(f"{r['forces_rmse_mean']:.3f} ± {r['forces_rmse_std']:.3f}")
            line += [f"{r['best_runs']}/{r['n_runs']}", f"{r['seconds_mean']:.1f}", f"{r['fom']:.3g}"]
            cells.append(line)
        return markdown_table(header, cells)


def compare_bases(dataset: StructureDataset, bases: Mapping[str, Any], n_runs: int = 5,
                  fractions: Sequence[float] = _BASIS["fractions"], groups: Sequence[str] | None = None,
                  forces: bool = _BASIS["forces"], hidden: Sequence[int] = _BASIS["hidden"],
                  activation: str = _BASIS["activation"], epochs: int = _BASIS["epochs"], lr: float = _BASIS["lr"],
                  batch_size: int = _BASIS["batch_size"], device: Any = _BASIS["device"],
                  seed: int = _BASIS["seed"], progress: bool = True, return_runs: bool = False,
                  executor: ExecutorLike = None, **fit_kwargs) -> ExperimentResult:
    """Train a :class:`~mlexplore.models.BPNN` per basis on ``n_runs`` shuffled splits; score on the test sets.

    Parameters
    ----------
    bases:
        ``{name: SymmetryFunctions}``; spin bases read the dataset's ``magmoms``.
    n_runs:
        Run ``r`` splits with seed ``seed + r`` and initialises every network with that seed
        (energy-only training featurises each split once, see :func:`~mlexplore.training.fit`).
    groups:
        One label per structure (e.g. the initial spin pattern): the test RMSE is also
        reported per group (002 fig 4.6–4.9, errors grouped by spin state).
    forces:
        Train on energies and forces (else energies only) and report the force RMSE.
    hidden, activation, epochs, lr, batch_size, fit_kwargs:
        The network and :func:`~mlexplore.training.fit` settings, the same for every basis
        (:class:`BasisComparisonOptions`).
    executor:
        Where the networks are trained (:func:`~mlexplore.training.run_experiment`): None here;
        a Dask cluster (a ``distributed.Client``, ``"tcp://…"``, ``"local"``) one network per task.

    Returns
    -------
    An :class:`~mlexplore.training.experiments.ExperimentResult` (:class:`BasisComparisonPlan`):
    one row per basis: ``basis``, ``n_features``, ``energy_rmse_mean``/``_std`` and
    ``energy_mae_mean`` (meV/atom), ``forces_rmse_mean``/``_std`` (eV/Å, with ``forces``),
    ``energy_r2_mean``, ``baseline_rmse_mean`` (meV/atom: predicting every test structure's
    energy per atom as the training-set mean, the same for every basis; a basis no better than
    that has learnt nothing), ``seconds_mean`` (training), ``fom`` (1 / (s × meV/atom)),
    ``best_runs`` (runs in which this basis had the lowest energy RMSE), ``n_runs``, and ``groups``
    (``{group: (rmse mean, rmse std, runs)}``); the per-run :class:`BasisRun` records as
    ``result.runs``. ``return_runs=True`` (deprecated) returns ``(result, result.runs)``.
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    given = locals()
    options = BasisComparisonOptions(**{name: given[name] for name in _BASIS}, fit_kwargs=fit_kwargs)
    plan = BasisComparisonPlan(dataset, dict(bases), n_runs=n_runs, options=options, groups=groups)
    result = run_experiment(plan, progress=progress, desc="basis runs", executor=executor)
    return deprecated_runs_pair(result, "compare_bases") if return_runs else result


def format_basis_table(rows: Sequence[dict]) -> str:
    """The rows of :func:`compare_bases` as a text table: one line per basis, then the test RMSE per group."""
    if not rows:
        raise InputError("no rows to show", field="rows")
    width = max(10, *(len(r["basis"]) for r in rows))
    has_forces = "forces_rmse_mean" in rows[0]
    head = (f"{'basis':<{width}} {'features':>8} {'energy RMSE meV/atom':>22} {'MAE':>7}"
            + (f" {'forces RMSE eV/Å':>18}" if has_forces else "") + f" {'best in':>8} {'time s':>7} {'FOM':>9}")
    lines = [head]
    for r in rows:
        line = (f"{r['basis']:<{width}} {r['n_features']:>8} {r['energy_rmse_mean']:>12.2f} ± {r['energy_rmse_std']:<7.2f}"
                f" {r['energy_mae_mean']:>7.2f}")
        if has_forces:
            line += f" {r['forces_rmse_mean']:>9.3f} ± {r['forces_rmse_std']:<6.3f}"
        line += f" {r['best_runs']:>3}/{r['n_runs']:<4} {r['seconds_mean']:>7.1f} {r['fom']:>9.3g}"
        lines.append(line)
    if "baseline_rmse_mean" in rows[0]:
        lines.append(f"{'(training mean)':<{width}} {'0':>8} {rows[0]['baseline_rmse_mean']:>12.2f}"
                     "   the RMSE of predicting every structure as the training-set mean")
    if "groups" in rows[0]:
        names = list(dict.fromkeys(g for r in rows for g in r["groups"]))
        lines.append("")
        lines.append(f"{'energy RMSE by group (meV/atom)':<{width + 9}}" + "".join(f"{g:>18}" for g in names))
        for r in rows:
            cells = []
            for g in names:
                m = r["groups"].get(g)
                cells.append(f"{m[0]:>10.2f} ± {m[1]:<5.2f}" if m else f"{'-':>18}")
            lines.append(f"{r['basis']:<{width + 9}}" + "".join(cells))
    return "\n".join(lines)

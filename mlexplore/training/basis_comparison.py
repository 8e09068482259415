"""Compare descriptor bases on one task: the same network, the same splits, only the basis differs.

The question of 002 §4 ("do spin terms help?", "is this basis worth its features?") asked
the way 000/001 ask theirs: repeated shuffled splits, mean ± std of the test errors, the
figure of merit ``1 / (time × RMSE)`` (002 eq 4.7). Every basis sees the same split in a
given run (paired comparison), so "best in k of N runs" says more than overlapping error bars.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..analysis.metrics import mae, per_group, r2, rmse
from ..data.dataset import StructureDataset
from ..data.splits import random_split
from ..errors import InputError
from ..models.bpnn import BPNN
from .fit import fit, predict

__all__ = ["compare_bases", "format_basis_table"]


def compare_bases(dataset: StructureDataset, bases: Mapping[str, Any], n_runs: int = 5,
                  fractions: Sequence[float] = (0.7, 0.15, 0.15), groups: Sequence[str] | None = None,
                  forces: bool = False, hidden: Sequence[int] = (25, 25), activation: str = "tanh",
                  epochs: int = 300, lr: float = 3e-3, batch_size: int = 8, device: Any = "auto",
                  seed: int = 0, progress: bool = True, return_runs: bool = False,
                  **fit_kwargs) -> list[dict] | tuple[list[dict], list[dict]]:
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
        The network and :func:`~mlexplore.training.fit` settings, the same for every basis.

    Returns
    -------
    One row per basis: ``basis``, ``n_features``, ``energy_rmse_mean``/``_std`` and
    ``energy_mae_mean`` (meV/atom), ``forces_rmse_mean``/``_std`` (eV/Å, with ``forces``),
    ``energy_r2_mean``, ``baseline_rmse_mean`` (meV/atom: predicting every test structure's
    energy per atom as the training-set mean, the same for every basis; a basis no better than
    that has learnt nothing), ``seconds_mean`` (training), ``fom`` (1 / (s × meV/atom)),
    ``best_runs`` (runs in which this basis had the lowest energy RMSE), ``n_runs``, and ``groups``
    (``{group: (rmse mean, rmse std, runs)}``). With ``return_runs`` also the per-run records.
    """
    if not bases:
        raise InputError("no bases to compare", field="bases")
    if n_runs < 1:
        raise InputError(f"n_runs must be ≥ 1, got {n_runs}", field="n_runs")
    if "energy" not in dataset:
        raise InputError("the dataset has no 'energy' label", field="energy")
    if groups is not None:
        groups = np.asarray(groups, dtype=object)
        if len(groups) != len(dataset):
            raise InputError(f"groups has {len(groups)} labels for {len(dataset)} structures", field="groups")
    from tqdm.auto import tqdm

    position = {int(i): k for k, i in enumerate(dataset.ids)}
    targets = ["energy", "forces"] if forces else ["energy"]
    runs: list[dict] = []
    with tqdm(total=n_runs * len(bases), desc="basis runs", disable=not progress) as bar:
        for r in range(n_runs):
            train, val, test = random_split(dataset, tuple(fractions), seed=seed + r)
            if len(test) == 0 or len(train) == 0:
                raise InputError(f"split {tuple(fractions)} of {len(dataset)} structures leaves an empty "
                                 "training or test set", field="fractions")
            rows = np.array([position[int(i)] for i in test.ids])
            ref = 1000.0 * test.label("energy") / test.n_atoms  # meV/atom
            mean = float(np.mean(1000.0 * train.label("energy") / train.n_atoms))
            baseline = rmse(ref, np.full_like(ref, mean))
            for name, basis in bases.items():
                with torch.random.fork_rng(devices=[]):  # the same initial weights for a run, global RNG untouched
                    torch.manual_seed(seed + r)
                    model = BPNN(basis, hidden=hidden, activation=activation)
                t0 = time.perf_counter()
                fit(model, train, val, targets=targets, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed + r,
                    device=device, progress=False, **fit_kwargs)
                seconds = time.perf_counter() - t0
                p = predict(model, test, forces=forces)
                pred = 1000.0 * p["energy"] / test.n_atoms  # meV/atom
                run = {"basis": name, "run": r, "n_features": int(basis.n_features), "seconds": seconds,
                       "energy_rmse": rmse(ref, pred), "energy_mae": mae(ref, pred), "energy_r2": r2(ref, pred),
                       "baseline_rmse": baseline,
                       "errors": pred - ref, "test_rows": rows}
                if forces:
                    run["forces_rmse"] = rmse(test.atom_labels["forces"], p["forces"])
                if groups is not None:
                    run["groups"] = {k: v["rmse"] for k, v in per_group(ref, pred, groups[rows]).items()}
                runs.append(run)
                bar.update(1)
    best = {}
    for r in range(n_runs):
        scores = {x["basis"]: x["energy_rmse"] for x in runs if x["run"] == r}
        winner = min(scores, key=scores.get)
        best[winner] = best.get(winner, 0) + 1
    out = []
    for name in bases:
        mine = [x for x in runs if x["basis"] == name]
        e = np.array([x["energy_rmse"] for x in mine])
        secs = float(np.mean([x["seconds"] for x in mine]))
        row = {"basis": name, "n_features": mine[0]["n_features"], "energy_rmse_mean": float(e.mean()),
               "energy_rmse_std": float(e.std()), "energy_mae_mean": float(np.mean([x["energy_mae"] for x in mine])),
               "energy_r2_mean": float(np.mean([x["energy_r2"] for x in mine])),
               "baseline_rmse_mean": float(np.mean([x["baseline_rmse"] for x in mine])),
               "seconds_mean": secs, "fom": 1.0 / (secs * float(e.mean())) if e.mean() > 0 else float("inf"),
               "best_runs": best.get(name, 0), "n_runs": n_runs}
        if forces:
            f = np.array([x["forces_rmse"] for x in mine])
            row.update(forces_rmse_mean=float(f.mean()), forces_rmse_std=float(f.std()))
        if groups is not None:
            per = {}
            for g in dict.fromkeys(groups.tolist()):
                vals = np.array([x["groups"][str(g)] for x in mine if str(g) in x["groups"]])
                if vals.size:
                    per[str(g)] = (float(vals.mean()), float(vals.std()), int(vals.size))
            row["groups"] = per
        out.append(row)
    return (out, runs) if return_runs else out


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

"""Active learning against random selection on EMT gold: how many labels each needs to reach a target.

    python benchmarks/active_learning.py [--quick] [--seeds 0,1,2] [--jobs 2] [--device cpu] [--threads 1]
    python benchmarks/active_learning.py --uncertainty energy --strategies uncertainty
    python benchmarks/active_learning.py --strategies uncertainty/max/picked,uncertainty/energy/labelled,random

Data: a pool of EMT gold structures (``mlexplore.datasets.gold``, seed 0: bulk fcc/bcc under
strain, (100)/(111) slabs, clusters; 5 families × ``--pool-per-group``), a separate test set (seed
1). Each run starts from ``--start`` structures drawn from the pool at random (the run's seed),
then :class:`~mlexplore.training.ActiveLearning` selects ``--per-iteration`` structures per
iteration from the rest of the pool, labels them with EMT and retrains a committee (from scratch)
on everything labelled. ``uncertainty``: the largest committee force spread with farthest-point
sampling for diversity; ``random``: the same loop with a random pick. A run stops when the test
energy RMSE is ≤ ``--energy-target`` (meV/atom) and the force RMSE ≤ ``--force-target`` (eV/Å),
or after ``--iterations``.

Printed: per strategy, the labels needed (mean ± std over the seeds; a run that never reached the
target counts with its last label count, marked ≥), how many runs reached it, the RMSEs at the
end, the time; then the test RMSEs against the number of labels (mean over the seeds).
``--quick``: a small pool, committee and training for a smoke run (its target is rarely reached).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from mlexplore.datasets import gold
from mlexplore.descriptors import G2, SymmetryFunctions
from mlexplore.io.text import parse_numbers
from mlexplore.training import ActiveLearning

FULL = dict(pool_per_group=40, test_per_group=10, start=10, per_iteration=10, iterations=12, members=8, epochs=100,
            hidden="16,16")
QUICK = dict(pool_per_group=8, test_per_group=4, start=5, per_iteration=5, iterations=3, members=2, epochs=30,
             hidden="8")


def descriptor() -> SymmetryFunctions:
    """14 radial terms, the gold basis of tests/test_training.py (reaches < 10 meV/atom, < 0.15 eV/Å)."""
    return SymmetryFunctions([G2(eta, rs) for eta in (1.0, 4.0) for rs in np.linspace(2.2, 5.2, 7)], cutoff=5.5,
                             elements=["Au"])


def run(strategy: str, seed: int, pool, test, args) -> dict:
    rng = np.random.default_rng(seed)
    first = np.sort(rng.choice(len(pool), args.start, replace=False))
    rest = pool.select(np.setdiff1d(np.arange(len(pool)), first))

    def reached(record: dict) -> bool:
        return record["energy_rmse"] <= args.energy_target and record["forces_rmse"] <= args.force_target

    name, reduce, diversity = (strategy.split("/") + [args.uncertainty, args.diversity])[:3] \
        if "/" in strategy else (strategy, args.uncertainty, args.diversity)
    learner = ActiveLearning(descriptor(), labeller="emt", explorers=[rest], iterations=args.iterations,
                             per_iteration=args.per_iteration, strategy=name, uncertainty=reduce,
                             diversity=diversity, n_members=args.members, resample=args.resample,
                             hidden=parse_numbers(args.hidden, "--hidden", int), epochs=args.epochs, lr=5e-3,
                             force_weight=args.force_weight,
                             batch_size=8, device=args.device, seed=seed, progress=False,
                             callback=lambda r: not reached(r))
    t0 = time.perf_counter()
    learner.fit(pool.select(first), test)
    h = learner.history_
    return {"strategy": strategy, "seed": seed, "reached": reached(h[-1]), "labels": h[-1]["n_labels"],
            "energy": h[-1]["energy_rmse"], "forces": h[-1]["forces_rmse"], "seconds": time.perf_counter() - t0,
            "curve": {r["n_labels"]: (r["energy_rmse"], r["forces_rmse"]) for r in h}}


def _run_job(job: tuple) -> dict:
    strategy, seed, pool, test, args = job
    torch.set_num_threads(args.threads)
    return run(strategy, seed, pool, test, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run: " + str(QUICK))
    parser.add_argument("--seeds", default="0,1,2", help="one run per seed and strategy (default 0,1,2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--uncertainty", default="max", help="max or mean force spread, or energy (per atom): "
                        "what 'uncertainty' ranks by (default max)")
    parser.add_argument("--diversity", default="labelled", help="labelled or picked: what the farthest-point step "
                        "counts distances from (default labelled)")
    parser.add_argument("--force-weight", type=float, default=0.1, help="the force term's weight in the loss "
                        "(default 0.1: with 1, energies stay at ~8 meV/atom on the whole pool, too near the target "
                        "to compare label counts)")
    parser.add_argument("--resample", default="bootstrap", help="the committee's resampling: bootstrap or none "
                        "(default bootstrap)")
    parser.add_argument("--strategies", default="uncertainty,random", help="(default uncertainty,random); a "
                        "strategy may name its reduction and diversity: uncertainty/energy/picked")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, in processes (default 1)")
    parser.add_argument("--energy-target", type=float, default=10.0, help="meV/atom (default 10)")
    parser.add_argument("--force-target", type=float, default=0.15, help="eV/Å (default 0.15)")
    for k, v in FULL.items():
        parser.add_argument("--" + k.replace("_", "-"), type=type(v), default=None, help=f"(default {v}; quick "
                            f"{QUICK[k]})")
    args = parser.parse_args()
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    pool = gold(n_per_group=args.pool_per_group, seed=0, progress=False)
    test = gold(n_per_group=args.test_per_group, seed=1, progress=False)
    print(f"EMT gold: pool {len(pool)} structures, test {len(test)}; start {args.start}, +{args.per_iteration} per "
          f"iteration, ≤ {args.iterations} iterations; committee {args.members} × {args.hidden}, {args.epochs} "
          f"epochs, force weight {args.force_weight:g}, resampling {args.resample}; uncertainty: {args.uncertainty}, "
          f"diversity {args.diversity}; target {args.energy_target:g} meV/atom and "
          f"{args.force_target:g} eV/Å; seeds {seeds}\n")
    strategies = args.strategies.split(",")
    jobs = [(strategy, seed) for seed in seeds for strategy in strategies]
    runs = []
    with ProcessPoolExecutor(args.jobs) if args.jobs > 1 else contextlib.nullcontext() as ex:
        results = (ex.map(_run_job, [(s, seed, pool, test, args) for s, seed in jobs]) if ex is not None else
                   (run(s, seed, pool, test, args) for s, seed in jobs))
        for r in results:
            runs.append(r)
            print(f"  {r['strategy']:<11} seed {r['seed']}: {'reached' if r['reached'] else 'not reached'} with "
                  f"{r['labels']} labels (E {r['energy']:.1f} meV/atom, F {r['forces']:.3f} eV/Å) "
                  f"[{r['seconds']:.0f} s]", flush=True)
    print(f"\n| strategy | labels to reach {args.energy_target:g} meV/atom and {args.force_target:g} eV/Å | reached | "
          "energy RMSE at the end (meV/atom) | force RMSE at the end (eV/Å) | time per run (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for strategy in strategies:
        rs = [r for r in runs if r["strategy"] == strategy]
        labels = np.array([r["labels"] for r in rs], float)
        mark = "" if all(r["reached"] for r in rs) else "≥ "
        e, f, s = (np.array([r[k] for r in rs]) for k in ("energy", "forces", "seconds"))
        print(f"| {strategy} | {mark}{labels.mean():.1f} ± {labels.std():.1f} | {sum(r['reached'] for r in rs)}/"
              f"{len(rs)} | {e.mean():.1f} ± {e.std():.1f} | {f.mean():.3f} ± {f.std():.3f} | {s.mean():.0f} |")
    sizes = sorted({n for r in runs for n in r["curve"]})
    print("\n| labels | " + " | ".join(f"{s} E (meV/atom) | {s} F (eV/Å)" for s in strategies) + " |")
    print("| --- " * (1 + 2 * len(strategies)) + "|")
    for n in sizes:
        cells = []
        for strategy in strategies:
            got = [r["curve"][n] for r in runs if r["strategy"] == strategy and n in r["curve"]]
            cells += ([f"{np.mean([g[0] for g in got]):.1f} ({len(got)})", f"{np.mean([g[1] for g in got]):.3f}"]
                      if got else ["–", "–"])
        print(f"| {n} | " + " | ".join(cells) + " |")
    print("\n(the number in brackets: runs still going at that size; a run stops once it reaches the target)")


if __name__ == "__main__":
    main()

"""The executor seam (:mod:`mlexplore.execution`): serial against a local Dask cluster.

    python benchmarks/executor.py [--workers 2] [--per-composition 20] [--epochs 50] [--configs 20] [--repeat 2]

Timings serial (this process, one torch thread, as a worker has) and on a ``LocalCluster`` of
``--workers`` one-thread worker processes (``resolve_executor("local")``), alternately
``--repeat`` times. The cluster's start-up and a first one-epoch comparison on it (imports and
first-call costs on the workers) are timed apart; this process pays its first-call costs before
the timings too. "in tasks": the seconds the tasks themselves report (training, DFT), summed: on
a cluster with less than a free core per worker they grow, and the wall time with them.

- the 12-model STL/MTL comparison of 000 (mixing energy, per-site energies and both, 4 shuffled
  splits each; LatticeMLP width 64, ``--epochs`` epochs, no early stop) on the CuAu lattice alloy
  with ``--per-composition`` structures per composition;
- labelling ``--configs`` CuAu cells (32 atoms) with ASE's EMT through :func:`mlexplore.dft.label`
  (the records written as in a DFT run);
- the round trip of a trivial task: one at a time (submit, wait, next) and 200 submitted at once.

The results are the same either way (checked here: the comparison's table, the labels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the EMT labeller of the tests (dft_stand_in.emt)


def trivial(x: int) -> int:
    """A task that does nothing."""
    return x


def main() -> None:
    import numpy as np
    import torch

    from dft_stand_in import emt
    from mlexplore.datasets import lattice_alloy
    from mlexplore.dft import DFTSettings, label, read_records
    from mlexplore.execution import resolve_executor
    from mlexplore.training import compare_tasks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-composition", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2, help="serial and cluster, alternately, this many times")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()}, cores {os.cpu_count()}")
    data = lattice_alloy("CuAu", n_per_composition=args.per_composition, progress=False)
    comparison = dict(n_runs=4, model="lattice", width=64, epochs=args.epochs, patience=None, device="cpu",
                      progress=False)
    settings = DFTSettings(spinpol=False, hirshfeld=False, kpt_density=2.0)
    configs = data[: args.configs]
    serial, parallel, serial_labels, parallel_labels = [], [], [], []
    targets = ["mixing_energy", "energies"]
    rows: list[tuple[str, float, float]] = []  # (what, wall s, summed in-task seconds)

    def comparison_on(executor) -> tuple[float, list]:
        t0 = time.perf_counter()
        result = compare_tasks(data, targets, executor=executor, **comparison)
        return time.perf_counter() - t0, result

    def labelling_on(executor, out: Path) -> tuple[float, object]:
        t0 = time.perf_counter()
        result = label(configs, out, settings=settings, calculator=emt, progress=False, executor=executor)
        return time.perf_counter() - t0, result

    with tempfile.TemporaryDirectory() as tmp:
        compare_tasks(data, targets, **{**comparison, "epochs": 1, "n_runs": 1})  # first-call costs, here
        t0 = time.perf_counter()
        with resolve_executor("local", workers=args.workers) as cluster:
            start = time.perf_counter() - t0
            t0 = time.perf_counter()
            compare_tasks(data, targets, executor=cluster, **{**comparison, "epochs": 1, "n_runs": 1})
            warm = time.perf_counter() - t0
            for repeat in range(args.repeat):
                for name, executor in (("serial", None), ("cluster", cluster)):
                    seconds, result = comparison_on(executor)
                    rows.append((f"comparison {name}", seconds, sum(r.seconds for r in result.runs)))
                    (serial if name == "serial" else parallel).append(result)
                for name, executor in (("serial", None), ("cluster", cluster)):
                    out = Path(tmp) / f"{name}{repeat}.jsonl"
                    seconds, result = labelling_on(executor, out)
                    rows.append((f"labelling {name}", seconds, sum(r["seconds"] for r in read_records(out))))
                    (serial_labels if name == "serial" else parallel_labels).append(result)
            one_by_one = []
            for k in range(50):
                t0 = time.perf_counter()
                list(cluster.run(trivial, [(k, (k,))]))
                one_by_one.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(cluster.run(trivial, [(k, (k,)) for k in range(200)]))
            batch = (time.perf_counter() - t0) / 200
    for a, b in zip(serial, parallel):
        assert [r["rmse_mean"] for r in a] == [r["rmse_mean"] for r in b]
    for a, b in zip(serial_labels, parallel_labels):
        assert np.array_equal(a.label("energy"), b.label("energy"))
    print(f"{len(data)} structures, 12 models × {args.epochs} epochs; {len(configs)} EMT cells of 32 atoms; "
          f"{args.workers} workers; cluster start {start:.2f} s, first task on the workers {warm:.2f} s")
    print(f"{'':<22} {'wall s':>8} {'in tasks s':>11}")
    for name, seconds, busy in rows:
        print(f"{name:<22} {seconds:8.2f} {busy:11.2f}")
    for what in ("comparison", "labelling"):
        walls = {name: statistics.median(s for n, s, _ in rows if n == f"{what} {name}")
                 for name in ("serial", "cluster")}
        print(f"{what}: median wall serial {walls['serial']:.2f} s, cluster {walls['cluster']:.2f} s, "
              f"speed-up {walls['serial'] / walls['cluster']:.2f}×")
    print(f"trivial task, one at a time: median {1e3 * statistics.median(one_by_one):.1f} ms "
          f"(min {1e3 * min(one_by_one):.1f}, max {1e3 * max(one_by_one):.1f}); "
          f"200 at once: {1e3 * batch:.2f} ms per task")
    print(f"load average after: {os.getloadavg()}")


def _warm() -> int:
    import mlexplore.training  # noqa: F401  (what the tasks import)

    return os.getpid()


if __name__ == "__main__":
    main()

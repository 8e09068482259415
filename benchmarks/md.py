"""The cost of an MD step with a fitted potential, against ASE's EMT in the same process.

    python benchmarks/md.py [--sizes 3,6] [--steps 20] [--threads 1] [--epochs 300] [--compile] [--replicas 16]
    python benchmarks/md.py --first-call          # the first call in a fresh process, timed

Model: a BPNN of 2 × 25 tanh on n2p2's gold basis ``loeffler-au`` (8 G2 + 18 G9, R_c = 6 Å,
polynomial cutoff), trained for ``--epochs`` on EMT gold (``gold(n_per_group=6)``, energies and
forces; the weights only matter for the float32 check). Cells: FCC Au 3×3×3 (108 atoms) and
6×6×6 (864), 300 K Maxwell-Boltzmann velocities, velocity-Verlet steps of 2 fs through
``Potential(model).as_ase_calculator()`` — energy and forces, as ASE's MD asks for them.

Prints, per cell, ms per step and µs per atom-step for:

- ``default``: ``Potential(model).as_ase_calculator()`` with no options (float64, eager, the
  neighbour list kept with a 1 Å skin);
- ``new list each step``: ``skin=0``, what every step cost before the list was kept;
- ``float32``: ``Potential(model, dtype=torch.float32)``, and its largest force difference from
  float64 over the run's structures against the model's own test force RMSE;
- ``compiled`` (with ``--compile``): the descriptor's ``torch.compile`` path (after its cold
  compile, which is timed and printed);
- ASE's EMT on the same trajectory (``ase.calculators.emt``, C-free Python/numpy);

and the ratios to EMT; then ``--replicas`` 32-atom cells advanced together by
:class:`~mlexplore.simulation.ReplicaMD` against ASE's velocity Verlet on each in turn. n2p2 is not required: to compare with it, build ``nnp-predict`` from
n2p2's public repository (``make -C src libnnp libnnpif nnp-predict`` with Debian's
``libgsl-dev`` and ``libeigen3-dev``, ``PROJECT_CC=g++``), write the model's symmetry functions
and weights as its ``input.nn``/``weights.079.data``/``scaling.data`` and time ``nnp-predict`` on
the same cell; the issue measured 46.9 ms (108 atoms) and 456 ms (864) for this basis on this
machine, one core.

Times are the median of ``--steps`` steps after 3 warm-up steps, all in this process on
``--threads`` torch threads (1: one core each, as EMT and n2p2 use).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet


def cell(rep: int):
    atoms = bulk("Au", "fcc", a=4.08, cubic=True).repeat((rep, rep, rep))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    return atoms


def ms_per_step(atoms, calc, steps: int) -> tuple[float, list]:
    """Median ms per velocity-Verlet step and the structures visited."""
    atoms = atoms.copy()
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, 2 * units.fs)
    dyn.run(3)
    times, frames = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        dyn.run(1)
        times.append(time.perf_counter() - t0)
        frames.append(atoms.copy())
    return 1000 * float(np.median(times)), frames


def trained_model(epochs: int):
    from mlexplore.data import random_split
    from mlexplore.datasets import gold
    from mlexplore.descriptors import from_preset
    from mlexplore.models import BPNN
    from mlexplore.training import Potential, fit

    data = gold(n_per_group=6, progress=False)
    train, val, test = random_split(data, (0.7, 0.15, 0.15), seed=0)
    torch.manual_seed(0)
    model = BPNN(from_preset("loeffler-au", elements=["Au"]), hidden=(25, 25))
    t0 = time.perf_counter()
    fit(model, train, val, epochs=epochs, progress=False)
    fitted = time.perf_counter() - t0
    pred = Potential(model, extrapolation="ignore").predict(test)
    rmse = float(np.sqrt(np.mean((pred["forces"] - test.atom_labels["forces"]) ** 2)))
    print(f"model: loeffler-au, 2 × 25 tanh, {epochs} epochs on {len(train)} EMT gold structures "
          f"({fitted:.0f} s); test force RMSE {rmse:.3f} eV/Å")
    return model, rmse


def first_call() -> None:
    """A fresh process: import, build, and the first energy + forces of a 108-atom cell."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import torch; torch.set_num_threads(1)\n"
        "from mlexplore.descriptors import from_preset\n"
        "from mlexplore.models import BPNN\n"
        "from mlexplore.training import Potential\n"
        "from ase.build import bulk\n"
        "t1 = time.perf_counter()\n"
        "a = bulk('Au', 'fcc', a=4.08, cubic=True).repeat(3)\n"
        "a.calc = Potential(BPNN(from_preset('loeffler-au', elements=['Au'])), extrapolation='ignore')"
        ".as_ase_calculator()\n"
        "a.get_forces(); t2 = time.perf_counter()\n"
        "a.positions[0, 0] += 0.01; a.get_forces(); t3 = time.perf_counter()\n"
        "print(f'imports {t1 - t0:.1f} s, first energy + forces {t2 - t1:.2f} s, second {1000 * (t3 - t2):.1f} ms')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print("fresh process:", out.stdout.strip())


def replicas_vs_one_by_one(model, n_replicas: int, rep: int, steps: int) -> None:
    """``n_replicas`` copies of an FCC Au cell (``rep``³ cubes) with their own 300 K velocities:
    :class:`~mlexplore.simulation.ReplicaMD` (one batch) against ASE's velocity Verlet on each in turn,
    ms per replica-step, both in this process."""
    from mlexplore.simulation import ReplicaMD
    from mlexplore.training import Potential

    cells = []
    for k in range(n_replicas):
        atoms = bulk("Au", "fcc", a=4.08, cubic=True).repeat((rep, rep, rep))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(k))
        cells.append(atoms)
    pot = Potential(model, extrapolation="ignore")
    md = ReplicaMD(pot, cells, timestep_fs=2.0).run(2)
    t0 = time.perf_counter()
    md.run(steps)
    batched = 1000 * (time.perf_counter() - t0) / steps / n_replicas
    one = []
    for atoms in cells[:4]:
        ms, _ = ms_per_step(atoms, pot.as_ase_calculator(), max(5, steps // 4))
        one.append(ms)
    single = float(np.median(one))
    print(f"\n{n_replicas} replicas of {len(cells[0])} atoms: ReplicaMD {batched:.2f} ms per replica-step, "
          f"ASE one at a time {single:.2f} ({single / batched:.1f}× faster batched; lists: {md.neighbors})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,6", help="cells as repeats of the 4-atom FCC cube (3: 108, 6: 864)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile path")
    parser.add_argument("--first-call", action="store_true", help="only time a fresh process's first call")
    parser.add_argument("--replicas", type=int, default=16,
                        help="also time this many 32-atom replicas batched (ReplicaMD) against one at a time (0: skip)")
    args = parser.parse_args()
    if args.first_call:
        first_call()
        return
    torch.set_num_threads(args.threads)
    from mlexplore.training import Potential

    model, rmse = trained_model(args.epochs)
    for rep in (int(s) for s in args.sizes.split(",")):
        atoms = cell(rep)
        n = len(atoms)
        rows = {}
        calc = Potential(model, extrapolation="ignore").as_ase_calculator()
        rows["default"], frames = ms_per_step(atoms, calc, args.steps)
        lists = f"{calc.neighbors.builds} list(s) for {calc.neighbors.calls} calls"
        rows["new list each step"], _ = ms_per_step(
            atoms, Potential(model, extrapolation="ignore").as_ase_calculator(skin=0), args.steps)
        p32 = Potential(model, dtype=torch.float32, extrapolation="ignore")
        rows["float32"], _ = ms_per_step(atoms, p32.as_ase_calculator(), args.steps)
        p64 = Potential(model, extrapolation="ignore")
        diff = max(float(np.abs(p32.calculate(f, stress=False)["forces"]
                                - p64.calculate(f, stress=False)["forces"]).max()) for f in frames[::5])
        if args.compile:
            model.descriptor.compile = True
            t0 = time.perf_counter()
            Potential(model, extrapolation="ignore").calculate(atoms, stress=False)
            cold = time.perf_counter() - t0
            rows["compiled"], _ = ms_per_step(atoms, Potential(model, extrapolation="ignore").as_ase_calculator(),
                                              args.steps)
            model.descriptor.compile = False
            print(f"  (first compiled call {cold:.1f} s)")
        rows["EMT"], _ = ms_per_step(atoms, EMT(), args.steps)
        print(f"\n{n} atoms, {args.threads} thread(s), {args.steps} velocity-Verlet steps (default: {lists}):")
        for name, ms in rows.items():
            print(f"  {name:20s} {ms:8.1f} ms/step {1000 * ms / n:8.1f} µs/atom-step  "
                  f"{ms / rows['EMT']:5.2f}× EMT")
        print(f"  float32 forces differ from float64 by ≤ {diff:.1e} eV/Å "
              f"({diff / rmse:.1e} of the model's test force RMSE {rmse:.3f} eV/Å)")
    if args.replicas:
        replicas_vs_one_by_one(model, args.replicas, 2, args.steps)


if __name__ == "__main__":
    main()

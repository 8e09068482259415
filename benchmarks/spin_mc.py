"""Spin Monte Carlo speed: sweeps per second for BCC iron cells, replicas batched against one at a time.

    python benchmarks/spin_mc.py [--sizes 3,5] [--replicas 8] [--sweeps 3] [--threads 1] [--device cpu]
                                 [--basis bloore-fe-sannip]

Model: a BPNN of 2 × 25 tanh on a spin-aware preset: the thesis' ``bloore-fe-sannip`` (24 G2 + 18 G4 +
8 S1 + 12 S2, R_c = 6 Å) by default, or ``fe-exchange`` (the notebook's); random weights (the cost
does not depend on them). Cells: BCC Fe,
a = 2.83 Å, 3×3×3 cubic cells (54 atoms) and 5×5×5 (250), PM initial state, cone moves of 0.3
rad at 1000 K. A sweep is one attempted move per atom of every replica. Prints, per cell:
replica-sweeps per second for ``--replicas`` replicas in one :class:`SpinMonteCarlo` and for one
replica alone (the same process, one after the other), their ratio, and the one-off cost of the
geometric features (computed once per run).
"""

from __future__ import annotations

import argparse
import time

import torch
from ase.build import bulk

from mlexplore.descriptors import from_preset
from mlexplore.models import BPNN
from mlexplore.simulation import SpinMonteCarlo
from mlexplore.training import Potential


def rate(potential, cell, replicas: int, sweeps: int) -> tuple[float, float]:
    """(replica-sweeps per second, seconds to set up) for ``replicas`` copies of ``cell``."""
    t0 = time.perf_counter()
    mc = SpinMonteCarlo(potential, [cell] * replicas, temperature_K=1000, initial="PM", move="cone", seed=0)
    setup = time.perf_counter() - t0
    mc.run(1)  # warm-up
    t0 = time.perf_counter()
    mc.run(sweeps)
    return replicas * sweeps / (time.perf_counter() - t0), setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,5")
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--basis", default="bloore-fe-sannip", choices=["bloore-fe-sannip", "fe-exchange"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = BPNN(from_preset(args.basis, elements=["Fe"]), hidden=(25, 25))
    pot = Potential(model, device=args.device, extrapolation="ignore")
    print(f"{args.basis}, 2 × 25 tanh, {args.device}, {torch.get_num_threads()} thread(s), cone moves at 1000 K")
    for rep in (int(s) for s in args.sizes.split(",")):
        cell = bulk("Fe", "bcc", a=2.83, cubic=True).repeat(rep)
        batched, setup = rate(pot, cell, args.replicas, args.sweeps)
        alone, _ = rate(pot, cell, 1, args.sweeps)
        print(f"{len(cell):4d} atoms: {args.replicas} replicas batched {batched:7.2f} replica-sweeps/s, one alone "
              f"{alone:7.2f} ({batched / alone:.1f}× batched); geometric features once: {setup:.2f} s")


if __name__ == "__main__":
    main()

"""LDOS surrogate against DFT: the time to get a snapshot's LDOS (and so its DOS, density, band energy)
from the network and from GPAW, on the same cell, one after the other in this process.

    OMP_NUM_THREADS=1 python benchmarks/ldos_surrogate.py [--cells 2,3] [--model data/ldos/al_ldos_model.pt]
                                                          [--threads 1] [--device cpu] [--no-gpaw]

Cells: FCC Al at 933 K's lattice constant (a = 4.124 Å), n×n×n conventional cells (32 atoms for n = 2,
108 for n = 3), rattled by 0.1 Å, on the grid of the shipped settings (h = a/18: 36³ and 54³ points).
Surrogate: mlexplore.training.predict_snapshot (point features of every grid point + the network)
followed by the observables (mlexplore.analysis.ldos_observables); the model is --model when it
exists, else an untrained network of the study's shape on the ``al-ldos`` preset (the cost does not
depend on the weights). GPAW: mlexplore.dft.gpaw_ldos with the set's settings (SCF + LDOS), once per
cell; --no-gpaw leaves it out (the 108-atom SCF takes tens of minutes on one core). Prints seconds for
each and their ratio. Set --device cuda on a GPU machine for the surrogate's GPU time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from mlexplore.analysis import ldos_observables
from mlexplore.descriptors import from_preset
from mlexplore.dft import AL_LATTICE_CONSTANT_933K, KT_933K, LDOSSettings
from mlexplore.models import LDOSNet
from mlexplore.training import load_model, predict_snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="2,3", help="n of the n×n×n conventional cells")
    parser.add_argument("--model", type=Path, default=Path("data/ldos/al_ldos_model.pt"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-gpaw", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = LDOSSettings()
    if args.model.exists():
        net = load_model(args.model, map_location=args.device)
        source = str(args.model)
    else:
        sf = from_preset("al-ldos", elements=["Al"])
        net = LDOSNet(sf.n_features, settings.energies[::2], hidden=(100, 100), descriptor=sf)
        source = "untrained al-ldos network (same shape as the study's)"
    net = net.to(args.device)
    print(f"surrogate: {source}; {args.threads} thread(s), device {args.device}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for n in (int(c) for c in args.cells.split(",")):
        atoms = bulk("Al", "fcc", a=AL_LATTICE_CONSTANT_933K, cubic=True).repeat(n)
        atoms.positions += np.random.default_rng(0).normal(0, 0.1, atoms.positions.shape)
        shape = tuple(int(round(np.linalg.norm(v) / settings.h)) for v in atoms.cell) if settings.h else None
        if shape is None:
            raise SystemExit("the settings have no grid spacing h")
        predict_snapshot(net, atoms, grid_shape=(4, 4, 4))  # warm-up (imports, first kernels)
        t0 = time.perf_counter()
        pred = predict_snapshot(net, atoms, grid_shape=shape)
        volume = atoms.get_volume() / np.prod(shape)
        ldos_observables(pred, net.energies, volume, 3.0 * len(atoms), KT_933K)
        surrogate = time.perf_counter() - t0
        line = f"{len(atoms):>4} atoms, grid {shape}: surrogate {surrogate:7.2f} s"
        if not args.no_gpaw:
            from mlexplore.dft import gpaw_ldos

            t0 = time.perf_counter()
            result = gpaw_ldos(atoms, settings)
            gpaw = time.perf_counter() - t0
            if result.grid_shape != shape:
                line += f" (GPAW's grid is {result.grid_shape})"
            line += f", GPAW (SCF + LDOS) {gpaw:8.1f} s: {gpaw / surrogate:6.1f}× faster"
        print(line, flush=True)


if __name__ == "__main__":
    main()

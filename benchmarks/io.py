"""Reading a large dataset: extxyz (parse + checks) against the .npz cache, same data, same run.

    python benchmarks/io.py [--n N]

Prints the time of each and the ratio. N is configurations per composition of the
CuAu lattice alloy (1000 gives the full 28 058-structure set).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mlexplore.datasets import lattice_alloy
from mlexplore.io import read, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="configurations per composition")
    args = parser.parse_args()
    ds = lattice_alloy("CuAu", n_per_composition=args.n, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name in ("set.extxyz", "set.xyz.gz", "set.npz"):
            path = Path(tmp) / name
            t0 = time.perf_counter()
            write(ds, path)
            t_write = time.perf_counter() - t0
            t0 = time.perf_counter()
            back = read(path)
            t_read = time.perf_counter() - t0
            assert len(back) == len(ds)
            rows.append((name, t_write, t_read, path.stat().st_size / 1e6))
    base = rows[-1][2]
    print(f"{len(ds)} structures, {ds.n_total_atoms} atoms")
    print(f"{'file':<12} {'write s':>8} {'read s':>8} {'MB':>8} {'read / npz read':>16}")
    for name, tw, tr, mb in rows:
        print(f"{name:<12} {tw:8.2f} {tr:8.2f} {mb:8.1f} {tr / base:16.1f}")


if __name__ == "__main__":
    main()

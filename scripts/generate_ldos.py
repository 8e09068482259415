#!/usr/bin/env python
"""Generate (or resume) the aluminium-at-933 K LDOS set with GPAW, and write its shipped small version.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/generate_ldos.py [--out data/ldos] [--limit N] [--reverse]
    OMP_NUM_THREADS=1 .venv/bin/python scripts/generate_ldos.py --small [--out data/ldos]

Runs single-threaded (one core). The snapshots (mlexplore.dft.ldos_data.aluminium_snapshots: EMT
Langevin MD at 933 K, 32-atom train/test cells, 108-atom large cells) are made once and frozen to
<out>/plan.json, so that a resumed run (on any machine) works on the same geometries. Each snapshot's
LDOS goes to <out>/<key>.npz and one JSON record to <out>/records.jsonl (label_ldos): kill it at
any moment and start it again to resume. Two processes can share the set (one core each): one
plain, one with --reverse; they meet in the middle.

--small computes nothing: it takes the first finished snapshots of each tag in <out> (plan order;
2 train, 1 test, 1 large by default), keeps every 4th grid point of the 32-atom cells and every 6th
of the 108-atom ones (mlexplore.dft.ldos_data.coarsen; --factor), and writes them with their
manifest (data card) to mlexplore/datasets/data/al933_ldos_small*.{npz,json}, the files
mlexplore.dft.ldos_data.load_aluminium_ldos reads.

--preset quick runs the same plan with k-points 2×2×2 (Monkhorst–Pack, 4 irreducible points on a
snapshot) instead of 3×3×3 Γ-centred (14): about 3.5 times cheaper, for a shipped small version made
before the full set exists (its manifest records the settings it was made with).
Needs GPAW (scripts/install_gpaw.sh) except for --small.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlexplore.dft.ldos_data import (AL_LATTICE_CONSTANT_933K, KT_933K, SNAPSHOT_TAGS, LDOSSettings,  # noqa: E402
                                     aluminium_snapshots, label_ldos, load_ldos_set, load_plan, save_plan,
                                     write_small_set)

#: the settings of each preset; changing one changes every record key of that preset
PRESETS = {
    "full": LDOSSettings(),
    "quick": LDOSSettings(kpts=(2, 2, 2), gamma=False),
}


def plan(out: Path, n_train: int, n_test: int, n_large: int, seed: int) -> list:
    """The snapshots: read from <out>/plan.json when it holds these counts and seed, else made and written."""
    path = out / "plan.json"
    wanted = {"train": n_train, "test": n_test, "large": n_large}
    if path.exists():
        snaps = load_plan(path)
        have = {t: sum(a.info.get("tag") == t for a in snaps) for t in SNAPSHOT_TAGS}
        if have == wanted and all(a.info.get("seed") == seed for a in snaps):
            return snaps
        print(f"{path} holds {have} (seed {snaps[0].info.get('seed') if snaps else None}); making the plan for "
              f"{wanted} (seed {seed}) and writing it over", file=sys.stderr)
    snaps = aluminium_snapshots(n_train=n_train, n_test=n_test, n_large=n_large, seed=seed)
    save_plan(snaps, path)
    return snaps


def write_small(out: Path, keys: list[str], settings: LDOSSettings, preset: str, counts: dict, factor: int,
                energy_factor: int, dest: Path) -> Path:
    """The shipped small version from the finished snapshots of <out>."""
    chosen = []
    for tag in SNAPSHOT_TAGS:
        chosen += load_ldos_set(out, tag=tag, keys=keys)[: counts[tag]]
    if not chosen:
        raise SystemExit(f"no finished snapshot of this plan in {out}: run the generator first")
    seconds = {t: [s.record["seconds"] for s in chosen if s.tag == t] for t in SNAPSHOT_TAGS}
    card = {
        "name": "Aluminium at 933 K: LDOS from GPAW (small, coarse copy)",
        "reference": "MALA's first case: J. A. Ellis et al., Phys. Rev. B 104, 035120 (2021)",
        "geometry": {"lattice_constant_A": AL_LATTICE_CONSTANT_933K, "temperature_K": 933.0,
                     "md": "ASE EMT, Langevin 933 K, 2 fs, friction 0.01/fs, 2 ps equilibration, 1 ps between "
                           "snapshots, one trajectory per tag"},
        "settings": settings.to_dict(), "preset": preset, "kT_eV": KT_933K,
        "made_from": str(out.resolve().relative_to(ROOT)) if out.resolve().is_relative_to(ROOT) else str(out),
        "seconds_per_snapshot": seconds,
        "note": "every factor-th grid point of the GPAW LDOS (per snapshot: its entry's factor); DFT references kept; coarse_grid_checks show what "
                "the coarse LDOS itself integrates to",
    }
    for old in dest.glob("al933_ldos_small_*.npz"):  # a smaller new set must not leave old files behind
        old.unlink()
    return write_small_set(chosen, dest, factor, energy_factor, card=card)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "ldos", help="record and LDOS folder")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--limit", type=int, default=None, help="only the first N snapshots of the plan")
    parser.add_argument("--reverse", action="store_true", help="work from the last snapshot down (a second process)")
    parser.add_argument("--log", action="store_true", help="keep GPAW's text log of each snapshot in <out>/logs")
    parser.add_argument("--n-train", type=int, default=8)
    parser.add_argument("--n-test", type=int, default=4)
    parser.add_argument("--n-large", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="compute nothing: write the shipped small version")
    parser.add_argument("--small-counts", type=int, nargs=3, default=(2, 1, 1), metavar=("TRAIN", "TEST", "LARGE"),
                        help="snapshots of each tag in the small version")
    parser.add_argument("--factor", type=int, default=4,
                        help="grid stride of the small version: each snapshot takes the smallest stride >= this "
                             "that divides its grid (4: 36^3 -> 9^3 for 32-atom cells, 54^3 -> 9^3 for 108-atom ones)")
    parser.add_argument("--energy-factor", type=int, default=1, help="energy stride of the small version")
    parser.add_argument("--dest", type=Path, default=ROOT / "mlexplore" / "datasets" / "data",
                        help="where --small writes")
    args = parser.parse_args()
    settings = PRESETS[args.preset]
    snaps = plan(args.out, args.n_train, args.n_test, args.n_large, args.seed)
    keys = [settings.key(a) for a in snaps]
    if args.small:
        counts = dict(zip(SNAPSHOT_TAGS, args.small_counts))
        path = write_small(args.out, keys, settings, args.preset, counts, args.factor, args.energy_factor, args.dest)
        print(f"small version: {path}")
        return
    if args.limit is not None:
        snaps = snaps[: args.limit]
    done = label_ldos(snaps, args.out, settings, reverse=args.reverse, log=args.log)
    print(f"{len(done)} of {len(snaps)} snapshots done in {args.out} (preset {args.preset}: "
          f"{dataclasses.asdict(settings)})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Generate (or extend, or resume) the shipped DFT datasets with GPAW.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/generate_dft.py [fe_spin] [fept] [fe_noncollinear] [--limit N] [--reverse]
        [--scheduler tcp://HOST:PORT|local [--workers N] [--threads N]]

Runs single-threaded (one core). Records go to data/dft/<name>.jsonl, appended
one configuration at a time: kill it at any moment and start it again to
resume. After each dataset (and every --export-every configurations) the
successful records of the set's plan (mlexplore.dft.configs.shipped_plan) are exported
to mlexplore/datasets/data/<name>_dft.extxyz.gz, the file the package loads
(--export-only does just that). A configuration whose SCF did not converge is tried once
more with a wider-smearing warm-up (RESCUE_SMEARING; earlier failures too, once).

Two processes can share a set (one core each): `generate_dft.py fept` works from the
first configuration up, `generate_dft.py fept --reverse` from the last one down. Both
append to the same record file (locked appends) and skip what the other has finished,
so they meet in the middle (see `label(..., reverse=True)`).

On a Dask cluster (`pip install "mlexplore[cluster]"`) every configuration is a task instead:
`--scheduler local [--workers N]` starts N one-thread worker processes here (default: the usable
cores), `--scheduler tcp://HOST:8786` uses a running scheduler whose workers see this folder
(the GPAW logs are written by the workers). This process appends each record as it arrives, so
killing it and starting it again resumes from the records (see `label(..., executor=...)`);
`--threads` sets GPAW's OpenMP threads per configuration (default 1).
Needs GPAW: scripts/install_gpaw.sh.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlexplore.dft import label  # noqa: E402
from mlexplore.dft.configs import SHIPPED_SETTINGS, shipped_plan  # noqa: E402
from mlexplore.dft.export import export_dataset  # noqa: E402
from mlexplore.execution import Executor, add_cluster_arguments, resolve_executor  # noqa: E402

#: eV. A configuration whose SCF does not converge at the run's 0.1 eV is tried once more,
#: first converged at this width and then at 0.1 eV from that density (see mlexplore.dft.label).
RESCUE_SMEARING = 0.3


def _exporter(name: str, records: Path, keys: list[str], every: int):
    """An ``on_record`` callback that exports the package file after every ``every`` records."""
    finished = 0

    def export_now(record: dict) -> None:
        nonlocal finished
        finished += 1
        if finished % every == 0:
            export_dataset(name, records, keys=keys)

    return export_now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("names", nargs="*", default=["fe_spin", "fept"], choices=sorted(SHIPPED_SETTINGS))
    parser.add_argument("--limit", type=int, default=None, help="stop after the first N configurations")
    parser.add_argument("--export-every", type=int, default=1,
                        help="export the package file every N configurations")
    parser.add_argument("--export-only", action="store_true",
                        help="compute nothing: write the package files from the records as they are")
    parser.add_argument("--reverse", action="store_true",
                        help="work from the last configuration down: a second process on the same set")
    add_cluster_arguments(parser.add_argument, "configuration")  # instead of --reverse pairs
    args = parser.parse_args()
    with resolve_executor(None if args.export_only else args.scheduler, workers=args.workers) as executor:
        for name in args.names:
            _generate(name, args, executor)


def _generate(name: str, args: argparse.Namespace, executor: Executor) -> None:
    """Label (or only export, ``--export-only``) one shipped set."""
    configs, settings, keys = shipped_plan(name)
    records = ROOT / "data" / "dft" / f"{name}.jsonl"
    if args.export_only:
        print(f"{name}: exported to {export_dataset(name, records, keys=keys)}")
        return
    if args.limit is not None:
        configs = configs[: args.limit]
    # GPAW's non-collinear calculator cannot change its smearing in place: no rescue there
    run = dict(out=records, settings=settings, log_dir=ROOT / "data" / "dft" / "logs" / name,
               rescue_smearing=None if settings.noncollinear else RESCUE_SMEARING)
    # one label() call per set, so its progress bar and ETA span the whole set; the forward
    # process exports as it goes (the reverse one's records included), the reverse one at its end
    export_now = _exporter(name, records, keys, max(1, args.export_every))
    label(configs, reverse=args.reverse, on_record=None if args.reverse else export_now, executor=executor,
          threads=args.threads, **run)
    export_dataset(name, records, keys=keys)
    print(f"{name}: done, {records}")


if __name__ == "__main__":
    main()

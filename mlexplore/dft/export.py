"""Turn a record file into the dataset file shipped inside the package."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.dataset import StructureDataset
from ..io import mixing_energy, write_extxyz
from .label import pattern_kept
from .records import latest_records, read_records, records_to_dataset

__all__ = ["export_dataset", "PACKAGE_DATA", "finish_dataset"]

#: Where the shipped datasets live.
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "datasets" / "data"


def finish_dataset(name: str, ds: StructureDataset) -> StructureDataset:
    """Add the derived labels of a shipped set.

    ``fept``: ``mixing_energy`` (eV/atom) against the pure Fe16 and Pt16 cells
    of the same set (001 eq 12). Both: ``pattern_kept`` (1 when the SCF kept the
    initial collinear pattern of the large seeded moments, see
    :func:`mlexplore.dft.pattern_kept`; 0 flags e.g. an FePt cell that converged to
    a non-magnetic solution).
    """
    if name == "fept":
        symbols, counts = ds.element_counts()
        if all((counts[:, j] == ds.n_atoms).any() for j in range(len(symbols))) and len(symbols) == 2:
            ds.add_label("mixing_energy", mixing_energy(ds, "auto"), per_atom=False)
    init, final = ds.per_structure("initial_magmoms"), ds.per_structure("magmoms")
    ds.add_label("pattern_kept", np.array([int(pattern_kept(i, f)) for i, f in zip(init, final)]),
                 per_atom=False)
    return ds


def export_dataset(name: str, records: str | os.PathLike, out: str | os.PathLike | None = None,
                   keys: Sequence[str] | None = None) -> Path | None:
    """Write the successful records of ``records`` to ``<name>_dft.extxyz.gz`` (atomically).

    With ``keys`` (record keys, e.g. ``[settings.key(a) for a in plan]``) only those
    configurations are written, in that order; records the plan no longer holds stay in the
    record file but not in the dataset. Returns the path, or None when there is nothing
    successful yet.
    """
    # the last record of each configuration: a rescue supersedes its failure, and a configuration
    # computed twice (two generators meeting in the middle of a set) appears once
    latest = latest_records(read_records(records))
    if keys is not None:
        latest = {k: latest[k] for k in dict.fromkeys(keys) if k in latest}
    recs = [r for r in latest.values() if r["status"] == "ok"]
    if not recs:
        return None
    ds = finish_dataset(name, records_to_dataset(recs, name=f"{name}_dft"))
    for m in ds.meta:  # the settings are the same for all: keep the file small
        m.pop("settings", None)
    path = Path(out) if out is not None else PACKAGE_DATA / f"{name}_dft.extxyz.gz"
    write_extxyz(ds, path)
    return path

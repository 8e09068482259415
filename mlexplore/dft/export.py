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

__all__ = ["export_dataset", "PACKAGE_DATA", "finish_dataset", "direction_deviation"]

#: Where the shipped datasets live.
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "datasets" / "data"


def finish_dataset(name: str, ds: StructureDataset) -> StructureDataset:
    """Add the derived labels of a shipped set.

    ``fept``: ``mixing_energy`` (eV/atom) against the pure Fe16 and Pt16 cells
    of the same set (001 eq 12). Collinear sets: ``pattern_kept`` (1 when the SCF kept
    the initial collinear pattern of the large seeded moments, see
    :func:`mlexplore.dft.pattern_kept`; 0 flags e.g. an FePt cell that converged to
    a non-magnetic solution). Non-collinear sets: ``direction_deviation`` (rad, the
    largest angle between an atom's seeded and reached moment).
    """
    if name == "fept":
        symbols, counts = ds.element_counts()
        if all((counts[:, j] == ds.n_atoms).any() for j in range(len(symbols))) and len(symbols) == 2:
            ds.add_label("mixing_energy", mixing_energy(ds, "auto"), per_atom=False)
    init, final = ds.per_structure("initial_magmoms"), ds.per_structure("magmoms")
    if ds.atom_labels["magmoms"].ndim == 2:  # non-collinear: how far the reached directions are from the seeds
        ds.add_label("direction_deviation", np.array([direction_deviation(i, f).max() for i, f in zip(init, final)]),
                     per_atom=False)
        return ds
    ds.add_label("pattern_kept", np.array([int(pattern_kept(i, f)) for i, f in zip(init, final)]),
                 per_atom=False)
    return ds


def direction_deviation(initial: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Angle (rad) between each atom's seeded and reached moment direction, ``(N,)``
    (``π/2`` for an atom whose moment vanished)."""
    initial, final = np.asarray(initial, float), np.asarray(final, float)
    norms = np.linalg.norm(initial, axis=1) * np.linalg.norm(final, axis=1)
    cos = np.divide((initial * final).sum(axis=1), norms, out=np.zeros(len(initial)), where=norms > 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0))


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

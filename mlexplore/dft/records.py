"""The resumable record file of a labelling run: one JSON object per line.

Each finished configuration (or failure) is appended as one line, written in a
single call, flushed and fsync'ed. A run killed while writing leaves at most a
partial last line, which :func:`read_records` ignores and :func:`append_record`
cuts off before writing the next one; nothing finished is ever lost. JSON keeps
every float exactly (17 significant digits).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import StructureDataset
from ..errors import InputError
from ..io.files import append_line

__all__ = ["append_record", "read_records", "read_new_records", "latest_records", "records_to_dataset", "PendingWork"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def append_record(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` as one line of ``path``, durably.

    :func:`mlexplore.io.append_line`: a torn last line is dropped first, and the append holds
    an exclusive lock on the file (POSIX ``flock``), so several processes labelling parts of one
    set (``scripts/generate_dft.py --reverse``) can share a record file.
    """
    append_line(path, json.dumps(_jsonable(record), sort_keys=True, allow_nan=True))


def read_records(path: str | os.PathLike) -> list[dict]:
    """All complete records of ``path`` (none if the file does not exist yet)."""
    return read_new_records(path, 0)[0]


def read_new_records(path: str | os.PathLike, offset: int) -> tuple[list[dict], int]:
    """The complete records of ``path`` from byte ``offset`` on, and the offset just past the
    last complete one (to pass next time: a process sharing the file sees only what is new).

    A partial last line (being written by another process, or left by a kill) is not read and
    not passed. A file shorter than ``offset`` (cut back after a kill) is read from the start.
    """
    path = Path(path)
    if not path.exists():
        return [], 0
    with open(path, "rb") as fh:
        if fh.seek(0, os.SEEK_END) < offset:
            offset = 0
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    records = []
    for line_no, line in enumerate(data[:end].decode("utf-8").split("\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            where = {"line": line_no} if offset == 0 else {}
            raise InputError(f"damaged record: {exc.msg}" + ("" if offset == 0 else f" (after byte {offset})"),
                             path=path, **where) from None
    return records, offset + end


def latest_records(records: list[dict]) -> dict[str, dict]:
    """``{key: the last record of that configuration}``, in order of first appearance: a later
    record (a retry, a rescue) supersedes an earlier failure of the same key."""
    return {r["key"]: r for r in records}


def records_to_dataset(records: list[dict], name: str = "") -> StructureDataset:
    """The successful records as a :class:`StructureDataset`.

    Labels: ``energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt),
    ``magmom`` (total, μ_B), ``magmoms`` (per atom, μ_B), ``initial_magmoms``
    (μ_B), and when computed ``charges`` (Hirshfeld partial charge Z − N_e, e)
    and ``charge_transfer`` (N_e − Z = −charges, e, the LSMS convention).
    ``meta`` holds the record key, settings, k-points and seconds, and
    ``rescue`` for a configuration that converged only on the second try
    (see :func:`mlexplore.dft.label`).
    """
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        raise InputError("no successful records to make a dataset from")
    n = len(ok)
    structure_labels = {
        "energy": np.array([r["energy"] for r in ok], dtype=float),
        "magmom": np.array([r["magmom"] for r in ok], dtype=float),
    }
    if all("stress" in r for r in ok):
        structure_labels["stress"] = np.array([r["stress"] for r in ok], dtype=float)
    atom_labels = {
        "forces": np.concatenate([np.asarray(r["forces"], dtype=float).reshape(-1, 3) for r in ok]),
        "magmoms": np.concatenate([np.asarray(r["magmoms"], dtype=float) for r in ok]),
        "initial_magmoms": np.concatenate([np.asarray(r["initial_magmoms"], dtype=float) for r in ok]),
    }
    if all(r.get("charges") is not None for r in ok):
        charges = np.concatenate([np.asarray(r["charges"], dtype=float) for r in ok])
        atom_labels["charges"] = charges
        atom_labels["charge_transfer"] = -charges
    return StructureDataset(
        numbers=np.concatenate([r["numbers"] for r in ok]),
        positions=np.concatenate([np.asarray(r["positions"], dtype=float).reshape(-1, 3) for r in ok]),
        cells=np.array([r["cell"] for r in ok], dtype=float).reshape(n, 3, 3),
        pbc=np.array([r["pbc"] for r in ok], dtype=bool).reshape(n, 3),
        n_atoms=np.array([len(r["numbers"]) for r in ok]),
        structure_labels=structure_labels,
        atom_labels=atom_labels,
        tags=[tuple(r.get("tags", ())) for r in ok],
        meta=[{"key": r["key"], "seconds": r["seconds"], "kpts": r["kpts"], "settings": r["settings"],
               **({"rescue": r["rescue"]} if "rescue" in r else {}), **r.get("meta", {})} for r in ok],
        name=name,
    )


class PendingWork:
    """Which of ``keys`` a resumable run still has to compute, shared with other processes.

    ``settled(record)`` says whether a record needs no more work. :attr:`todo` holds the indices not
    settled in ``path`` at the start (in order, or reversed with ``reverse``: a second process
    working from the other end). Iterating yields ``(index, run)`` for each of them: before each,
    the records other processes appended meanwhile are read, and ``run`` is False for a key that is
    settled by now or was already taken by this run (a key listed twice is computed once). Used by
    :func:`mlexplore.dft.label` and :func:`mlexplore.dft.label_ldos`.
    """

    def __init__(self, keys: list[str], path: str | os.PathLike, settled, reverse: bool = False) -> None:
        self.keys, self.path, self.settled = list(keys), Path(path), settled
        self.previous, self._offset = read_new_records(self.path, 0)
        self.done = {k for k, r in latest_records(self.previous).items() if settled(r)}
        self.todo = [i for i, k in enumerate(self.keys) if k not in self.done]
        if reverse:
            self.todo.reverse()

    def __iter__(self):
        seen: set[str] = set()
        for i in self.todo:
            news, self._offset = read_new_records(self.path, self._offset)
            self.done.update(r["key"] for r in news if self.settled(r) and r["key"] not in seen)
            key = self.keys[i]
            if key in seen or key in self.done:
                yield i, False
                continue
            seen.add(key)
            yield i, True

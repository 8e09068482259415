"""A record file for long STL/MTL comparisons: each finished model's test predictions are appended
as one JSON line, so an interrupted :func:`~mlexplore.training.compare_tasks` resumes where it
stopped (``compare_tasks(..., resume_file="runs.jsonl")``).

A record belongs to one comparison through a fingerprint of its data (structures and target
labels) and its options (model, sizes, splits, seeds; not the device). Change any of them and
the old records are ignored, not reused. A line cut short by a kill is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io.files import append_line
from .fit import History

__all__ = ["plan_fingerprint", "read_task_records", "append_task_record", "run_to_record", "run_from_record"]


def plan_fingerprint(plan: Any) -> str:
    """A short hash (24 hex digits) of a :class:`~mlexplore.training.TaskComparisonPlan`'s data, options
    (:meth:`~mlexplore.training.experiments.TaskComparisonOptions.fingerprint_fields`: not the device,
    ``patience`` only when it is not 50) and jobs. Unchanged from the dict-options layout, so record
    files written before stay valid."""
    h = hashlib.sha256()
    ds = plan.dataset
    for arr in (ds.numbers, ds.positions, ds.cells, ds.n_atoms):
        h.update(np.ascontiguousarray(arr).tobytes())
    for t in plan.targets:
        h.update(t.encode())
        h.update(np.ascontiguousarray(ds.label(t), dtype=np.float64).tobytes())
    opts = plan.options
    if hasattr(opts, "fingerprint_fields"):  # TaskComparisonOptions
        options = opts.fingerprint_fields()
    else:  # a plain dict of options (the layout before TaskComparisonOptions): the same hash
        options = {k: v for k, v in opts.items() if k != "device"}
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    h.update(json.dumps([[r, list(c)] for r, c in plan.jobs]).encode())
    return h.hexdigest()[:24]


def read_task_records(path: str | os.PathLike, fingerprint: str) -> dict[int, dict]:
    """The finished jobs of the comparison ``fingerprint`` in ``path``: ``{job: record}`` (none if
    the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
            if isinstance(record, dict) and record.get("fingerprint") == fingerprint:
                out[int(record["job"])] = record
    return out


def append_task_record(path: str | os.PathLike, record: dict) -> None:
    """Append one record as a JSON line, durably; a last line torn by an earlier kill is dropped
    first, so this record is not glued to it and lost (:func:`mlexplore.io.append_line`)."""
    append_line(path, json.dumps(record))


def run_to_record(run: Any, job: int, fingerprint: str) -> dict:
    """What a finished :class:`~mlexplore.training.TaskRun` leaves in the file (no weights)."""
    return {"fingerprint": fingerprint, "job": job, "run": run.run, "tasks": list(run.tasks),
            "seconds": run.seconds, "history": run.history.as_dict(),
            "reference": {t: np.asarray(v, dtype=float).tolist() for t, v in run.reference.items()},
            "predicted": {t: np.asarray(v, dtype=float).tolist() for t, v in run.predicted.items()}}


def run_from_record(record: dict, run_class: type) -> Any:
    """A ``run_class`` (TaskRun) rebuilt from a record: its scores and history, ``model=None``."""
    return run_class(run=int(record["run"]), tasks=tuple(record["tasks"]), model=None,
                     history=History(**record["history"]), seconds=float(record["seconds"]),
                     reference={t: np.asarray(v) for t, v in record["reference"].items()},
                     predicted={t: np.asarray(v) for t, v in record["predicted"].items()})

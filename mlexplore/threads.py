"""Torch thread count for shared machines (draft; policy filled in after measuring)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import InputError

__all__ = ["ENV_VAR", "usable_cores", "cgroup_cpu_limit", "runnable_others", "choose_threads",
           "configure_threads"]

ENV_VAR = "MLEXPLORE_NUM_THREADS"
CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"
LOADAVG = "/proc/loadavg"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_paths(self_cgroup: str | os.PathLike) -> tuple[str | None, str | None]:
    """This process's cgroup path: (v2 unified path, v1 path of the ``cpu`` controller)."""
    text = _read(Path(self_cgroup))
    v2 = v1 = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "" and parts[0] == "0":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(root: Path, own: str | None) -> list[Path]:
    """``root/own``, its parents up to ``root``, and ``root`` itself (deduplicated, deepest first)."""
    out = []
    if own and own.strip("/"):
        d = root / own.strip("/")
        while d != root and root in d.parents:
            out.append(d)
            d = d.parent
    out.append(root)
    return out


def _v2_limit(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if not text:
        return None
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    try:
        q, p = int(quota or ""), int(period or "")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_limit(cgroup_root: str | os.PathLike = CGROUP_ROOT,
                     self_cgroup: str | os.PathLike = SELF_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in cores (``quota / period``, e.g. 1.5), or None when
    there is none (``max``, ``-1``, no cgroup files).

    Reads cgroup v2 ``cpu.max`` (``"150000 100000"`` or ``"max 100000"``) and cgroup v1
    ``cpu/cpu.cfs_quota_us`` + ``cpu.cfs_period_us`` (also under ``cpu,cpuacct``), at the root
    (what a container sees) and along the process's own path from ``/proc/self/cgroup`` up to the
    root (what a process in a systemd slice sees); the smallest quota found wins.
    """
    root = Path(cgroup_root)
    v2_path, v1_path = _own_paths(self_cgroup)
    limits = [_v2_limit(d) for d in _ancestors(root, v2_path)]
    for controller in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        base = root / controller
        if base.is_dir():
            limits += [_v1_limit(d) for d in _ancestors(base, v1_path)]
    found = [x for x in limits if x is not None]
    return min(found) if found else None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def usable_cores(cgroup_root: str | os.PathLike = CGROUP_ROOT,
                 self_cgroup: str | os.PathLike = SELF_CGROUP) -> int:
    """The CPUs this process may actually use: its affinity mask (``os.sched_getaffinity``, which
    includes a cpuset), capped by the cgroup CPU quota rounded up (:func:`cgroup_cpu_limit`); at least 1."""
    n = _affinity()
    limit = cgroup_cpu_limit(cgroup_root, self_cgroup)
    if limit is not None:
        n = min(n, math.ceil(limit))
    return max(1, n)


def runnable_others(loadavg: str | os.PathLike = LOADAVG) -> int | None:
    """Runnable tasks on the machine besides this one, now: the 4th field of ``/proc/loadavg``
    (``running/total``, which counts the reader) minus 1; None where the file cannot be read."""
    text = _read(Path(loadavg))
    try:
        return max(0, int(text.split()[3].split("/")[0]) - 1)  # type: ignore[union-attr]
    except (AttributeError, IndexError, ValueError):
        return None


def _from_env(environ: Mapping[str, str]) -> int | None:
    raw = environ.get(ENV_VAR)
    if raw is None or raw.strip() == "":
        return None
    try:
        n = int(raw.strip())
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{ENV_VAR}={raw!r} is not a positive whole number of threads", field=ENV_VAR)
    return n


def choose_threads(cores: int | None = None, others: int | None = None,
                   environ: Mapping[str, str] | None = None) -> int:
    n = _from_env(os.environ if environ is None else environ)
    if n is not None:
        return n
    cores = usable_cores() if cores is None else cores
    others = runnable_others() if others is None else others
    return max(1, cores - (others or 0))


_configured: int | None = None


def configure_threads(n: int | None = None) -> int:
    global _configured
    if n is None:
        n = choose_threads()
    elif isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"the number of threads must be a positive whole number, not {n!r}", field="n")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _configured = n
    return n

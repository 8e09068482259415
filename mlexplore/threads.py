"""Torch's thread count for shared machines.

Torch starts as many intra-op (OpenMP) threads as the machine has cores. On a shared machine that
is a trap: every parallel region ends at a barrier where the threads wait for each other, so when one
of them shares its core with another busy process the whole computation runs at the pace of the
descheduled thread. On a 2-core machine with anything else running, float32 descriptors of 100 CuAu
cells took 1.3–21 s with torch's default 2 threads instead of 0.5–1 s with 1 (``benchmarks/threads.py``).

This module picks the count from what the process may really use and what else is running:

* :func:`usable_cores` — the affinity mask (cpuset included), capped by the cgroup CPU quota
  (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up;
* :func:`other_load` — the other runnable work on the machine (``/proc/loadavg``);
* :func:`choose_threads` — the policy: ``MLEXPLORE_NUM_THREADS`` if set (then ``OMP_NUM_THREADS``),
  else ``max(1, min(cores // 2, cores - other load))``;
* :func:`configure_threads` — applies it with ``torch.set_num_threads`` (the package calls it once at
  import; call it again, e.g. ``configure_threads(1)``, to change it).

Measurements (``python benchmarks/threads.py``; 2-core shared VM, torch 2.13 CPU with GNU OpenMP,
each variant in a fresh process; descriptor = ``bloore-fe-bp`` Cu/Au, float32, 3 200 atoms, median of
up to 3 runs; step = one Adam step of a BPNN 2 × 25 on the features of 320 atoms, median of 100;
"busy" = a second process spinning a core; three runs of the benchmark, the machine's own background
load (1-minute average) 0.7, then 1–1.2, then 2.6–3)::

    neighbour  variant                   threads  descriptor s (3 runs)  step ms (3 runs)
    none       default wait              1        0.70  0.45  0.46       1.44  1.10  1.19
    none       default wait              2        0.43 21.8  20.7        1.10  1.32  1.76
    none       OMP_WAIT_POLICY=PASSIVE   2        0.69  0.52  0.60       3.82  1.47  2.72
    none       inter-op threads 1        2        0.46 16.4   3.69       1.62 10.7   1.11
    busy       default wait              1        0.64  1.02  0.48       1.20  1.12  1.13
    busy       default wait              2        6.06  1.32  1.33       5.61  5.41  6.79
    busy       OMP_WAIT_POLICY=PASSIVE   2        0.63  1.12  0.76       1.51  5.61  2.87
    busy       inter-op threads 1        2        5.97  1.43  1.56       1.57  1.58  2.05

(worst single descriptor runs: 2 threads 38.6 s, 1 thread 1.07 s.) What that says:

* One thread never collapses. Two threads gain ×1.6 (descriptor) and ×1.3 (training step) on an idle
  machine, but lose ×3 to ×45 as soon as anything else runs: a neighbour of ours, or just the
  machine's background load (the second and third runs had no neighbour of ours).
* Passive OpenMP waiting (``OMP_WAIT_POLICY=PASSIVE``) removes the collapse but also the gain: every
  parallel region then pays a thread wake-up, so 2 passive threads were never faster than 1 thread
  and up to ×2.7 slower for the small training step. It also has to be set before torch is imported,
  which a library cannot promise. Not used.
* The inter-op pool (``torch.set_num_interop_threads(1)``) does not help: eager code of this package
  does not use it. Left alone (torch also refuses to change it once parallel work has started).

Hence the policy: leave at least half of the usable cores as headroom — the second half of the
threads buys little (parallel efficiency 65–80 % already at 2 threads for these small tensors) and
risks a several-fold collapse whenever another process wakes up — and never more threads than the
cores the other runnable work leaves free. On 2 cores that is always 1 thread. The load is a
snapshot (the busier of the runnable tasks now and the 1-minute average), so it errs on the side of
fewer threads; on a container the load is the host's, which errs the same way. Machines larger than
2 cores were not measured here: the ``cores // 2`` headroom there is the reasoning above, not a
measurement; set ``MLEXPLORE_NUM_THREADS`` on a dedicated machine to use every core.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import InputError

__all__ = ["ENV_VAR", "usable_cores", "cgroup_cpu_limit", "other_load", "choose_threads", "configure_threads"]

#: the environment variable that sets the thread count (a positive whole number)
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
    v2 = v1 = None
    for line in (_read(Path(self_cgroup)) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(root: Path, own: str | None) -> list[Path]:
    """``root/own`` and its parents down to ``root`` itself, deepest first."""
    out = []
    if own and own.strip("/"):
        d = root / own.strip("/")
        while d != root and root in d.parents:
            out.append(d)
            d = d.parent
    out.append(root)
    return out


def _v2_limit(directory: Path) -> float | None:
    fields = (_read(directory / "cpu.max") or "").split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(directory: Path) -> float | None:
    try:
        quota = int(_read(directory / "cpu.cfs_quota_us") or "")
        period = int(_read(directory / "cpu.cfs_period_us") or "")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None  # quota -1: no limit


def cgroup_cpu_limit(cgroup_root: str | os.PathLike = CGROUP_ROOT,
                     self_cgroup: str | os.PathLike = SELF_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in cores (``quota / period``, e.g. 1.5), or None when
    there is none (``max``, ``-1``, no cgroup files, unreadable files).

    Reads cgroup v2 ``cpu.max`` (``"150000 100000"`` or ``"max 100000"``) and cgroup v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` under ``cpu``, ``cpu,cpuacct`` or ``cpuacct,cpu``, at
    the root (what a container sees) and along this process's own path from ``self_cgroup``
    (``/proc/self/cgroup``) up to the root (what a process in a systemd slice sees); the smallest
    quota found wins. ``cgroup_root`` and ``self_cgroup`` are parameters for tests with fake files.
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
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def usable_cores(cgroup_root: str | os.PathLike = CGROUP_ROOT,
                 self_cgroup: str | os.PathLike = SELF_CGROUP) -> int:
    """The CPUs this process may actually use: its affinity mask (``os.sched_getaffinity``, which
    reflects a cpuset and ``taskset``), capped by the cgroup CPU quota rounded up
    (:func:`cgroup_cpu_limit`: 1.5 cores → 2); at least 1."""
    n = _affinity()
    limit = cgroup_cpu_limit(cgroup_root, self_cgroup)
    if limit is not None:
        n = min(n, math.ceil(limit))
    return max(1, n)


def other_load(loadavg: str | os.PathLike = LOADAVG) -> int:
    """The other runnable work on the machine, in cores: the larger of the tasks runnable now besides
    this one (``/proc/loadavg``'s ``running/total`` field, which counts the reader, minus 1) and the
    1-minute load average rounded. Falls back to ``os.getloadavg()``, then to 0, where the file is missing."""
    fields = (_read(Path(loadavg)) or "").split()
    try:
        now = int(fields[3].split("/")[0]) - 1
        average = float(fields[0])
    except (IndexError, ValueError):
        try:
            now, average = 0, os.getloadavg()[0]
        except (AttributeError, OSError):
            return 0
    return max(0, now, round(average))


def _positive(name: str, raw: str) -> int:
    try:
        n = int(raw.strip())
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{name}={raw!r} is not a positive whole number of threads", field=name)
    return n


def choose_threads(cores: int | None = None, others: int | None = None,
                   environ: Mapping[str, str] | None = None) -> int:
    """The number of torch intra-op threads to use.

    1. ``MLEXPLORE_NUM_THREADS`` when set (a positive whole number; anything else: :class:`InputError`
       naming the variable and the value);
    2. else ``OMP_NUM_THREADS`` when it is set to a positive whole number (the user's general choice);
    3. else ``max(1, min(cores // 2, cores - others))`` with ``cores`` = :func:`usable_cores` and
       ``others`` = :func:`other_load` (pass them to override the measurement).

    Why (module docstring, ``benchmarks/threads.py``): on a 2-core machine 2 threads were ×1.6 / ×1.3
    faster than 1 (descriptor / training step) when the machine was idle but ×3–45 / ×4–6 slower with
    a busy neighbour or background load, while 1 thread never collapsed; passive OpenMP waiting
    removed the collapse and the gain with it.
    So half the usable cores stay free as headroom and the other load is subtracted: 1 thread on 2 cores.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(ENV_VAR)
    if raw is not None and raw.strip():
        return _positive(ENV_VAR, raw)
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    cores = usable_cores() if cores is None else cores
    others = other_load() if others is None else others
    return max(1, min(cores // 2, cores - others))


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (``torch.set_num_threads``) to ``n``, or to
    :func:`choose_threads` when ``n`` is None, and return it.

    Safe to call any number of times (it only calls torch when the count changes). The inter-op pool is
    left alone: it made no difference in the measurements and torch refuses to change it once parallel
    work has started.
    """
    if n is None:
        n = choose_threads()
    else:
        try:
            n = operator.index(n) if not isinstance(n, bool) else 0
        except TypeError:
            n = 0
        if n < 1:
            raise InputError(f"the number of threads must be a positive whole number, not {n!r}", field="n")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n

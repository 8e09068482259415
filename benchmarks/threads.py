"""Torch threads on a shared machine: descriptor and training-step time for 1 against 2 intra-op
threads, on a quiet machine and beside a busy neighbour, with OpenMP's default and passive waiting,
and what :func:`mlexplore.threads.choose_threads` picks under the same conditions.

    python benchmarks/threads.py [--repeat 3] [--steps 100]

Workload: ``bloore-fe-bp`` (Cu, Au) features in float32 of 100 CuAu FCC 32-atom rattled cells
(``benchmarks/descriptors.py``'s ``structures()``), ``sf.compute`` (3 200 atoms, one chunk); and one
energy-only training step of a BPNN 2 × 25 (Adam) on the stored features of 10 cells (320 atoms).
Busy neighbour: a second Python process spinning (``while True: pass``), killed at the end.

Every variant runs in a fresh child process (``--worker``) so that all start equal: the wait policy
(``OMP_WAIT_POLICY``) is read when torch loads OpenMP, and ``torch.set_num_interop_threads`` works only
before any parallel work. The parent starts and kills the neighbour and prints the table: descriptor
seconds (median and worst of ``--repeat`` runs), training-step milliseconds (median of ``--steps``), and
each median as a ratio to the quiet 1-thread run of the default policy. "load" is the machine's
1-minute load average and runnable tasks (``/proc/loadavg``) when the child started: "quiet" means
no neighbour of ours, not an idle machine. A descriptor cell stops repeating once it has spent 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- child: the measurements
def worker(threads: list[str], repeat: int, steps: int, interop: int | None) -> dict:
    import torch

    if interop is not None:
        torch.set_num_interop_threads(interop)
    sys.path.insert(0, str(HERE))
    from descriptors import structures

    from mlexplore.descriptors import from_preset
    from mlexplore.models import BPNN
    from mlexplore.threads import choose_threads, configure_threads, other_load, usable_cores

    cuau, _ = structures()
    ds = cuau[:100]
    sf = from_preset("bloore-fe-bp", elements=["Cu", "Au"])
    torch.set_num_threads(1)
    features = sf.compute(ds, dtype=torch.float32)  # warm-up, and the training step's input
    batch_atoms = 10 * 32
    batch = {"features": features[:batch_atoms], "numbers": torch.as_tensor(ds.numbers[:batch_atoms]),
             "n_atoms": torch.full((10,), 32, dtype=torch.long)}
    target = torch.randn(10)
    out = {"cores": usable_cores(), "load": " ".join(Path("/proc/loadavg").read_text().split()[::3]), "rows": {}}
    for spec in threads:
        if spec == "auto":
            out["others"] = other_load()
            n = configure_threads(choose_threads())
        else:
            n = configure_threads(int(spec))
        sf.compute(ds[:10], dtype=torch.float32)  # warm the thread pool at this size
        times = []
        for _ in range(repeat):  # at most `repeat` runs, fewer once 10 s are spent (a collapsed cell)
            t0 = time.perf_counter()
            sf.compute(ds, dtype=torch.float32)
            times.append(time.perf_counter() - t0)
            if sum(times) > 10:
                break
        torch.manual_seed(0)
        model = BPNN(sf, hidden=(25, 25))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step_times = []
        for k in range(steps + 10):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = ((model(batch)["energy"] - target) ** 2).mean()
            loss.backward()
            opt.step()
            if k >= 10:
                step_times.append(time.perf_counter() - t0)
        out["rows"][spec] = {"threads": n, "descriptor_s": times, "step_ms": 1e3 * statistics.median(step_times)}
    return out


# ----------------------------------------------------------------------------- parent: the conditions
def run_child(threads: list[str], env_extra: dict, args, interop: int | None = None) -> dict:
    env = {**os.environ, **env_extra}
    env.pop("MLEXPLORE_NUM_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", ",".join(threads),
           "--repeat", str(args.repeat), "--steps", str(args.steps)]
    if interop is not None:
        cmd += ["--interop", str(interop)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"worker failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", default="1,2,auto", help=argparse.SUPPRESS)
    parser.add_argument("--interop", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.threads.split(","), args.repeat, args.steps, args.interop)))
        return

    print(f"python {sys.version.split()[0]}, affinity {len(os.sched_getaffinity(0))} CPUs, "
          f"loadavg {Path('/proc/loadavg').read_text().strip()}", flush=True)
    variants = [  # (label, env, interop, thread specs)
        ("default wait", {}, None, ["1", "2", "auto"]),
        ("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, None, ["1", "2"]),
        ("default wait, inter-op 1", {}, 1, ["2"]),
    ]
    rows = []
    t_start = time.perf_counter()
    for busy in (False, True):
        neighbour = None
        try:
            if busy:
                neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(1.0)
            for label, env, interop, specs in variants:
                res = run_child(specs, env, args, interop)
                for spec, r in res["rows"].items():
                    rows.append({"neighbour": "busy" if busy else "quiet", "variant": label,
                                 "spec": spec, "others": res.get("others"), "cores": res["cores"],
                                 "load": res["load"], **r})
                print(f"  done: {'busy' if busy else 'quiet'} / {label} "
                      f"({time.perf_counter() - t_start:.0f} s)", flush=True)
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()

    base = next(r for r in rows if r["neighbour"] == "quiet" and r["variant"] == "default wait" and r["spec"] == "1")
    base_d, base_s = statistics.median(base["descriptor_s"]), base["step_ms"]
    print()
    print(f"{'neighbour':9} {'variant':26} {'load':>8} {'threads':>10} {'descr. s (median/worst)':>24} "
          f"{'ratio':>6} {'step ms':>8} {'ratio':>6}")
    for r in rows:
        d = statistics.median(r["descriptor_s"])
        who = f"{r['threads']}" if r["spec"] != "auto" else f"policy→{r['threads']}"
        print(f"{r['neighbour']:9} {r['variant']:26} {r['load']:>8} {who:>10} {d:>11.2f} / "
              f"{max(r['descriptor_s']):<10.2f} "
              f"{d / base_d:>6.2f} {r['step_ms']:>8.2f} {r['step_ms'] / base_s:>6.2f}")
    pol = [r for r in rows if r["spec"] == "auto"]
    print()
    for r in pol:
        print(f"choose_threads() with a {r['neighbour']} neighbour: usable_cores={r['cores']}, "
              f"other_load={r['others']} → {r['threads']} thread(s)")
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()

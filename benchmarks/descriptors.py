"""Descriptor speed: mlexplore's SymmetryFunctions against dscribe's ACSF on the same structures.

    python benchmarks/descriptors.py [--device cuda] [--repeat 3] [--scale 1]
    python benchmarks/descriptors.py --device cuda --stages | --profile [--variants compiled]
    python benchmarks/descriptors.py --default-call [--busy] [--repeat 3]

Structures: 200 CuAu FCC 32-atom cells and 20 BCC Fe 128-atom cells, rattled
(0.1 Å), the ``bloore-fe-bp`` terms (24 G2 + 18 G4, R_c = 6 Å, cosine),
element-resolved like dscribe. Prints time per atom for features and for
features + forces (autograd of E = Σ w·G), dscribe's ACSF features (and its
analytic derivatives, which give the same information as forces) on the same
input, and the ratios. On CUDA it also prints end-to-end atoms/s (neighbour
list, triplets, features, forces, all included) and peak GPU memory per atom.
``--scale k`` repeats the structure set k times (for GPU batch sizes).

``--default-call`` times what a user types — ``compute(structures)`` with no options — and its
float32 variant against dscribe (``n_jobs=1``), interleaved in one process, on one and two torch
threads; ``--busy`` repeats that while a second process spins one core.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase.build import bulk

from mlexplore import StructureDataset
from mlexplore.descriptors import from_preset, preset_terms


def structures(scale: int = 1) -> tuple[StructureDataset, StructureDataset]:
    rng = np.random.default_rng(0)
    cuau, fe = [], []
    for _ in range(200 * scale):
        a = bulk("Cu", "fcc", a=3.75, cubic=True).repeat(2)
        a.numbers = np.where(rng.random(len(a)) < 0.5, 79, 29)
        a.positions += rng.normal(0, 0.1, a.positions.shape)
        cuau.append(a)
    for _ in range(20 * scale):
        a = bulk("Fe", "bcc", a=2.83, cubic=True).repeat(4)
        a.positions += rng.normal(0, 0.1, a.positions.shape)
        fe.append(a)
    return StructureDataset.from_atoms(cuau), StructureDataset.from_atoms(fe)


def descriptor_sets(cuau: StructureDataset, fe: StructureDataset, device: str, compiled: bool) -> list:
    """(structures, descriptor) pairs: ``bloore-fe-bp`` resolved by element for each set."""
    return [(cuau, from_preset("bloore-fe-bp", elements=["Cu", "Au"], compile=compiled).to(device)),
            (fe, from_preset("bloore-fe-bp", elements=["Fe"], compile=compiled).to(device))]


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def ours(sets, device, dtype, forces: bool, chunk: int):
    def run():
        for ds, sf in sets:
            for a in range(0, len(ds), chunk):
                batch = sf.prepare(ds[a:a + chunk], device=device, dtype=dtype)
                if forces:
                    batch["positions"].requires_grad_(True)
                    g = sf(**batch)
                    w = torch.ones(g.shape[1], device=device, dtype=dtype)
                    torch.autograd.grad((g @ w).sum(), batch["positions"])
                else:
                    with torch.no_grad():
                        sf(**batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return run


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def stages(sets, device: str, dtype, chunk: int, repeat: int) -> None:
    """Time of each stage for one batch of ``chunk`` structures of each set: the neighbour
    list, the features on that list, and the backward pass for forces (and peak memory)."""
    from mlexplore.descriptors.neighbors import neighbor_pairs

    print(f"\nstages, one batch of {chunk} structures, {str(dtype)[6:]} (best of {repeat}):")
    print(f"{'':<10} {'atoms':>7} {'pairs':>9} {'neighbours ms':>14} {'features ms':>12} {'backward ms':>12} "
          f"{'peak KB/atom':>13}")
    for ds, sf in sets:
        batch = sf.prepare(ds[:chunk], device=device, dtype=dtype)
        n = batch["positions"].shape[0]
        times = {"nl": [], "feat": [], "back": []}
        peak = 0.0
        for _ in range(repeat):
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            pos = batch["positions"].detach().requires_grad_(True)
            _sync(device)
            t0 = time.perf_counter()
            nb = neighbor_pairs(pos, batch["cells"], batch["pbc"], batch["n_atoms"], sf.neighbor_cutoff,
                                method=sf.neighbor_method)
            _sync(device)
            t1 = time.perf_counter()
            g = sf(pos, batch["numbers"], batch["cells"], batch["pbc"], batch["n_atoms"], neighbors=nb)
            _sync(device)
            t2 = time.perf_counter()
            torch.autograd.grad(g.sum(), pos)
            _sync(device)
            t3 = time.perf_counter()
            times["nl"].append(t1 - t0)
            times["feat"].append(t2 - t1)
            times["back"].append(t3 - t2)
            if device.startswith("cuda"):
                peak = torch.cuda.max_memory_allocated() / n / 1024
        name = "/".join(sf.elements)
        print(f"{name:<10} {n:7d} {len(nb):9d} {min(times['nl']) * 1e3:14.2f} {min(times['feat']) * 1e3:12.2f} "
              f"{min(times['back']) * 1e3:12.2f} {peak:13.1f}")


def profile_batch(sets, device: str, dtype, chunk: int, rows: int = 20) -> None:
    """``torch.profiler`` tables (by device time, then by host time) of features + forces for one
    batch of ``chunk`` structures of each set: where the time goes, kernel by kernel."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    sort = "cuda_time_total" if device.startswith("cuda") else "cpu_time_total"
    for ds, sf in sets:
        batch = sf.prepare(ds[:chunk], device=device, dtype=dtype)

        def step():
            pos = batch["positions"].detach().requires_grad_(True)
            g = sf(pos, batch["numbers"], batch["cells"], batch["pbc"], batch["n_atoms"])
            torch.autograd.grad(g.sum(), pos)
            _sync(device)

        step()
        step()  # warm-up (and compilation)
        with profile(activities=activities) as prof:
            step()
        print(f"\n== {'/'.join(sf.elements)}: {batch['positions'].shape[0]} atoms, by {sort}")
        print(prof.key_averages().table(sort_by=sort, row_limit=rows, max_name_column_width=60))
        if sort != "cpu_time_total":
            print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=rows // 2,
                                            max_name_column_width=60))


def default_call(cuau: StructureDataset, fe: StructureDataset, rounds: int) -> dict[str, float]:
    """The call a user makes, ``from_preset("bloore-fe-bp", elements=…).compute(structures)`` with no
    options (float64, eager), and with ``dtype=torch.float32``, against dscribe's ACSF with
    ``n_jobs=1``, interleaved over ``rounds`` rounds in this process (best of each), on the torch
    thread count in force. Returns seconds per variant."""
    from dscribe.descriptors import ACSF

    sets = [(cuau, from_preset("bloore-fe-bp", elements=["Cu", "Au"])), (fe, from_preset("bloore-fe-bp", elements=["Fe"]))]
    terms = preset_terms("bloore-fe-bp")
    g2 = [(t.eta, t.rs) for t in terms[:24]]
    g4 = [(t.eta, t.zeta, t.lam) for t in terms[24:]]
    acsf = [ACSF(r_cut=6.0, g2_params=g2, g4_params=g4, species=["Cu", "Au"], periodic=True),
            ACSF(r_cut=6.0, g2_params=g2, g4_params=g4, species=["Fe"], periodic=True)]
    images = [cuau.to_atoms(), fe.to_atoms()]
    runs = {"compute() (float64)": lambda: [sf.compute(ds) for ds, sf in sets],
            "compute(dtype=float32)": lambda: [sf.compute(ds, dtype=torch.float32) for ds, sf in sets],
            "dscribe ACSF n_jobs=1": lambda: [a.create(i, n_jobs=1) for a, i in zip(acsf, images)]}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for name, fn in runs.items():
            if r == 0:
                fn()  # warm-up
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def print_default_call(cuau, fe, rounds: int, busy: bool) -> None:
    """:func:`default_call` on one and two torch threads, quiet and (``busy``) with a second process
    spinning one core — what a neighbour's job does to a shared machine."""
    import subprocess
    import sys

    conditions = [("quiet", False)] + ([("busy neighbour core", True)] if busy else [])
    print(f"\nthe default call, {cuau.n_total_atoms + fe.n_total_atoms} atoms (best of {rounds} interleaved rounds):")
    print(f"{'':<22} {'threads':>7} {'variant':<24} {'s':>8} {'vs dscribe':>11}")
    for label, spin in conditions:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if spin else None
        try:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                res = default_call(cuau, fe, rounds)
                for name, t in res.items():
                    print(f"{label:<22} {threads:>7} {name:<24} {t:8.3f} {res['dscribe ACSF n_jobs=1'] / t:10.1f}x")
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=50, help="structures per batch")
    parser.add_argument("--no-dscribe", action="store_true")
    parser.add_argument("--no-forces", action="store_true", help="time the features only")
    parser.add_argument("--variants", default="eager,compiled",
                        help="which of our variants to time: eager, compiled or both (comma-separated)")
    parser.add_argument("--profile", action="store_true",
                        help="print torch.profiler tables of one batch per set (features + forces)")
    parser.add_argument("--stages", action="store_true",
                        help="only time the stages (neighbour list, features, backward) of one batch per set")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; use 1 when another job holds a core)")
    parser.add_argument("--default-call", action="store_true",
                        help="only time compute() with no options against dscribe, on 1 and 2 threads")
    parser.add_argument("--busy", action="store_true",
                        help="with --default-call: also with a second process spinning one core")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuau, fe = structures(args.scale)
    if args.default_call:
        print_default_call(cuau, fe, args.repeat, args.busy)
        return
    n_atoms = cuau.n_total_atoms + fe.n_total_atoms
    cuda = args.device.startswith("cuda")
    print(f"{len(cuau)} CuAu (32 atoms) + {len(fe)} Fe (128 atoms) = {n_atoms} atoms; bloore-fe-bp; "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    if args.profile:
        sets = descriptor_sets(cuau, fe, args.device, "compiled" in args.variants.split(","))
        profile_batch(sets, args.device, torch.float32, args.chunk)
        return
    if args.stages:
        sets = descriptor_sets(cuau, fe, args.device, False)
        stages(sets, args.device, torch.float32, args.chunk, 1)  # warm-up
        stages(sets, args.device, torch.float32, args.chunk, args.repeat)
        return
    rows = []
    dtypes = [torch.float32] if cuda else [torch.float64, torch.float32]
    for compiled in [c == "compiled" for c in args.variants.split(",")]:
        sets = descriptor_sets(cuau, fe, args.device, compiled)
        for dtype in dtypes:
            name = f"mlexplore{' compiled' if compiled else ''} {str(dtype)[6:]}"
            if not args.no_forces:
                ours(sets, args.device, dtype, True, args.chunk)()  # warm-up (and compilation)
            ours(sets, args.device, dtype, False, args.chunk)()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            rows.append((f"{name} features", best_of(ours(sets, args.device, dtype, False, args.chunk),
                                                     args.repeat)))
            if not args.no_forces:
                rows.append((f"{name} features + forces", best_of(ours(sets, args.device, dtype, True, args.chunk),
                                                                  args.repeat)))
            if cuda:
                peak = torch.cuda.max_memory_allocated() / (args.chunk * 128)
    ours_rows = list(rows)
    if not args.no_dscribe:
        from dscribe.descriptors import ACSF

        terms = preset_terms("bloore-fe-bp")
        g2 = [(t.eta, t.rs) for t in terms[:24]]
        g4 = [(t.eta, t.zeta, t.lam) for t in terms[24:]]
        acsf = {"CuAu": ACSF(r_cut=6.0, g2_params=g2, g4_params=g4, species=["Cu", "Au"], periodic=True),
                "Fe": ACSF(r_cut=6.0, g2_params=g2, g4_params=g4, species=["Fe"], periodic=True)}
        images = {"CuAu": cuau.to_atoms(), "Fe": fe.to_atoms()}

        def ds_feat(jobs):
            def run():
                for k in acsf:
                    acsf[k].create(images[k], n_jobs=jobs)
            return run

        def ds_deriv():
            for k in acsf:
                acsf[k].derivatives(images[k][:5 * args.scale] if k == "Fe" else images[k][:50 * args.scale],
                                    n_jobs=1, method="auto", attach=True)

        t_ds = best_of(ds_feat(1), 1)
        rows.append(("dscribe ACSF features (n_jobs=1)", t_ds))
        # the same number of cores as torch uses (joblib worker processes)
        jobs = torch.get_num_threads()
        t_ds_all = best_of(ds_feat(jobs), 1) if jobs > 1 else t_ds
        if jobs > 1:
            rows.append((f"dscribe ACSF features (n_jobs={jobs})", t_ds_all))
        t_dd = None
        try:
            if args.no_forces:
                raise RuntimeError("--no-forces")
            n_sub = 50 * args.scale * 32 + 5 * args.scale * 128
            t_dd = best_of(ds_deriv, 1) * n_atoms / n_sub
            rows.append(("dscribe ACSF features + derivatives (n_jobs=1)", t_dd))
        except Exception as exc:  # derivatives unsupported in some dscribe versions
            print(f"(dscribe derivatives not measured: {exc})")
    print(f"\n{'':<48} {'total s':>9} {'µs/atom':>9} {'atoms/s':>12}")
    for name, t in rows:
        print(f"{name:<48} {t:9.3f} {t / n_atoms * 1e6:9.2f} {n_atoms / t:12.0f}")
    if not args.no_dscribe:
        print(f"\nspeed-up over dscribe ACSF, features (target ≥ 10x){'':<6} n_jobs=1  n_jobs={jobs}")
        for name, t in ours_rows:
            if name.endswith(" features"):
                print(f"  {name:<46} {t_ds / t:6.1f}x  {t_ds_all / t:6.1f}x")
        if t_dd is not None and not args.no_forces:
            print("speed-up over dscribe ACSF + derivatives, features + forces:")
            for name, t in [r for r in ours_rows if r[0].endswith("forces")]:
                print(f"  {name:<46} {t_dd / t:6.1f}x")
    if cuda and not args.no_forces:
        best = min(t for name, t in ours_rows if name.endswith("forces"))
        print(f"\nend-to-end with forces: {n_atoms / best:,.0f} atoms/s; peak GPU memory "
              f"{peak / 1024:.1f} KB per atom of a {args.chunk}-structure batch")


if __name__ == "__main__":
    main()

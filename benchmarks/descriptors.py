"""Descriptor speed: mlexplore's SymmetryFunctions against dscribe's ACSF on the same structures.

    python benchmarks/descriptors.py [--device cuda] [--repeat 3] [--scale 1]

Structures: 200 CuAu FCC 32-atom cells and 20 BCC Fe 128-atom cells, rattled
(0.1 Å), the ``bloore-fe-bp`` terms (24 G2 + 18 G4, R_c = 6 Å, cosine),
element-resolved like dscribe. Prints time per atom for features and for
features + forces (autograd of E = Σ w·G), dscribe's ACSF features (and its
analytic derivatives, which give the same information as forces) on the same
input, and the ratios. On CUDA it also prints end-to-end atoms/s (neighbour
list, triplets, features, forces, all included) and peak GPU memory per atom.
``--scale k`` repeats the structure set k times (for GPU batch sizes).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=50, help="structures per batch")
    parser.add_argument("--no-dscribe", action="store_true")
    parser.add_argument("--no-forces", action="store_true", help="time the features only")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; use 1 when another job holds a core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuau, fe = structures(args.scale)
    n_atoms = cuau.n_total_atoms + fe.n_total_atoms
    cuda = args.device.startswith("cuda")
    print(f"{len(cuau)} CuAu (32 atoms) + {len(fe)} Fe (128 atoms) = {n_atoms} atoms; bloore-fe-bp; "
          f"device {args.device}, torch threads {torch.get_num_threads()}")
    rows = []
    dtypes = [torch.float32] if cuda else [torch.float64, torch.float32]
    for compiled in (False, True):
        sets = [(cuau, from_preset("bloore-fe-bp", elements=["Cu", "Au"], compile=compiled).to(args.device)),
                (fe, from_preset("bloore-fe-bp", elements=["Fe"], compile=compiled).to(args.device))]
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
            for name, t in ours_rows[1::2]:
                print(f"  {name:<46} {t_dd / t:6.1f}x")
    if cuda and not args.no_forces:
        best = min(t for name, t in ours_rows[1::2])
        print(f"\nend-to-end with forces: {n_atoms / best:,.0f} atoms/s; peak GPU memory "
              f"{peak / 1024:.1f} KB per atom of a {args.chunk}-structure batch")


if __name__ == "__main__":
    main()

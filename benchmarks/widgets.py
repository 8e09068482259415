"""Panel responsiveness: time from a BasisTuner control change to updated figure data, on CPU.

    python benchmarks/widgets.py [--environments 10000] [--threads 1] [--repeat 3]

Measures, on the built-in CuAu data (rattled FCC cells, element-resolved features):

* the function plot: a radial η change → new curves and maxima table (target < 50 ms);
* the PCA map of ``--environments`` environments after a control change
  (re-featurise + PCA + correlation summary; target < 0.5 s), for a radial-only
  basis (8 G2) and a radial + angular one (8 G2 + 12 G4), when a radial or an angular
  parameter changes (the neighbour list and the other family's block are reused) and
  when R_c changes (everything is recomputed);
* as baseline, in the same process: the same features through
  ``SymmetryFunctions.compute`` (neighbour list built every time) + PCA, and the
  ratio baseline / panel.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mlexplore.analysis import pca
from mlexplore.datasets import lattice_alloy
from mlexplore.widgets import BasisTuner


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = lattice_alloy("CuAu", n_per_composition=40, rattle=0.1, strain=0.02, progress=False)
    t0 = time.perf_counter()
    tuner = BasisTuner(data, max_environments=args.environments, debounce=0)
    t_open = time.perf_counter() - t0
    n_env = len(tuner.features)
    print(f"{n_env} environments ({len(tuner.sample)} structures of {len(data)}), torch threads "
          f"{torch.get_num_threads()}; panel ready in {t_open:.2f} s (first featurisation, neighbour list "
          f"for the slider's largest R_c = {tuner.rc.max} Å, compilation if not cached)\n")
    tuner.auto_eta.value = False
    tuner.n_radial.value = 8
    tuner.rc.value = 5.0
    etas = iter(np.geomspace(0.5, 8.0, 1000))
    # one sequence for both bases, so every R_c change is to a value never seen (the FeatureCache keeps
    # the blocks of earlier radii: a repeated value would be a cache hit, not an R_c change)
    rcs = iter(np.linspace(5.0, 5.5, 1000)[1:])

    def curve_only():
        tuner.debounce = 3600  # the PCA waits; only the fast path runs
        tuner.eta.value = float(next(etas))
        tuner._timer.cancel()
        tuner.debounce = 0

    t_curve = best(curve_only, 5 * args.repeat)
    rows = [("function plot (η change)", t_curve, None)]
    for label, n_eta in (("8 G2", 0), ("8 G2 + 12 G4", 1)):
        tuner.n_angular_eta.value = n_eta
        tuner.update_features()  # neighbour list for this R_c is cached now

        def params_change():
            tuner.eta.value = float(next(etas))

        def rc_change():
            tuner.rc.value = round(float(next(rcs)), 4)

        angular_etas = iter(np.geomspace(0.005, 0.05, 1000))

        def angular_change():
            tuner.angular_eta.value = float(next(angular_etas))

        t_param = best(params_change, args.repeat)
        t_ang = best(angular_change, args.repeat) if n_eta else None
        t_rc = best(rc_change, args.repeat)
        sf = tuner.descriptor

        def baseline():
            pca(sf.compute(tuner.sample).numpy(), 2)

        t_base = best(baseline, args.repeat)
        rows.append((f"PCA map, {label}: radial η change", t_param, t_base))
        if t_ang is not None:
            rows.append((f"PCA map, {label}: angular η change", t_ang, t_base))
        rows.append((f"PCA map, {label}: R_c change", t_rc, t_base))
    print(f"{'control change → figure data':<42} {'seconds':>9} {'baseline s':>11} {'ratio':>7}")
    for name, t, base in rows:
        ratio = f"{base / t:7.1f}" if base else ""
        b = f"{base:11.3f}" if base else ""
        print(f"{name:<42} {t:9.3f} {b:>11} {ratio}")
    print("\ntargets: function plot < 0.050 s; PCA map of 10 000 environments < 0.5 s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Print the data card numbers of the DFT record files (counts, ranges, timing, SCF pattern retention,
checks against known iron and FePt).

    .venv/bin/python scripts/dft_report.py [--markdown]

``--markdown`` ends with the README's status table.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlexplore.dft import latest_records, read_records, records_to_dataset  # noqa: E402
from mlexplore.dft.configs import shipped_plan  # noqa: E402
from mlexplore.dft.export import finish_dataset  # noqa: E402
from mlexplore.dft.iron_physics import (ferromagnetic_bcc_eos, pattern_energy_gaps, same_geometry,  # noqa: E402
                                        two_sublattice_exchange)


def noncollinear_card(ds) -> None:
    """The non-collinear set: states, moments held, energies above FM by state, the Heisenberg J."""
    state = np.array([t[2] for t in ds.tags])
    norms = np.linalg.norm(ds.label("magmoms"), axis=1)
    print(f"   |moments| {norms.min():.2f} … {norms.max():.2f} μB; largest angle seed → reached "
          f"{ds.label('direction_deviation').max():.3f} rad (median {np.median(ds.label('direction_deviation')):.3f})")
    e = ds.label("energy") / ds.n_atoms
    above = np.full(len(ds), np.nan)
    for g in same_geometry(ds):
        fm = [i for i in g if state[i] == "FM"]
        if fm:
            above[g] = e[g] - e[fm[0]]
    for s in dict.fromkeys(state):
        sel = (state == s) & np.isfinite(above)
        cells = dict(Counter(int(n) for n in ds.n_atoms[state == s]))
        line = f"   {s:<13} {int((state == s).sum()):3d} {cells}"
        if sel.any() and s != "FM":
            line += (f"; E − E_FM {1000 * above[sel].min():+.0f} … {1000 * above[sel].max():+.0f} meV/atom, "
                     f"median {1000 * np.median(above[sel]):+.0f}")
        print(line)
    per_geometry = []
    for g in same_geometry(ds):  # one J per geometry: the coupling changes with the strain
        try:
            r = two_sublattice_exchange(ds[[i for i in g if ds.n_atoms[i] == 2]], max_angle=np.pi / 3)
        except Exception:  # noqa: BLE001 - no FM state or too few small angles there
            continue
        if r["n"] >= 3:
            per_geometry.append((r["J"], r["r2"]))
    if per_geometry:
        j, r2 = np.array(per_geometry).T
        print(f"   exchange per 2-atom geometry (θ ≤ 60°, ≥ 3 states): {len(j)} geometries, J {1000 * j.min():.0f} … "
              f"{1000 * j.max():.0f} meV/atom (median {1000 * np.median(j):.0f}), R² ≥ {r2.min():.3f}")
    for name, angle in (("all angles", np.pi), ("θ ≤ 60°", np.pi / 3)):
        try:
            r = two_sublattice_exchange(ds, max_angle=angle)
        except Exception as exc:  # noqa: BLE001 - too few states yet
            print(f"   exchange ({name}): {exc}")
            continue
        print(f"   exchange ({name}): J = {1000 * r['J']:.1f} ± {1000 * r['J_error']:.1f} meV/atom over {r['n']} "
              f"Fe2 states, R² {r['r2']:.4f}, rms residual {r['rms_residual']:.1f} meV/atom, mean-field T_C "
              f"{r['tc_mean_field']:.0f} K")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="end with the status table in markdown")
    args = parser.parse_args()
    table = []
    for name in ("fe_spin", "fept", "fe_noncollinear"):
        path = ROOT / "data" / "dft" / f"{name}.jsonl"
        records = read_records(path)
        _, _, keys = shipped_plan(name)
        keys = list(dict.fromkeys(keys))  # a random pattern equal to another one is one calculation
        last = latest_records(records)  # a rescue supersedes the failure before it
        on_plan = [last[k] for k in keys if k in last]
        ok = [r for r in on_plan if r["status"] == "ok"]
        failed = [r for r in on_plan if r["status"] == "failed"]
        rescued = [r for r in ok if "rescue" in r]
        print(f"== {name}: {len(ok)} ok ({len(rescued)} of them rescued by the wider-smearing warm-up), "
              f"{len(failed)} failed, of {len(keys)} planned")
        if not ok:
            continue
        secs = np.array([r["seconds"] for r in records])
        off_plan = len(last) - len(on_plan)
        print(f"   CPU time {secs.sum() / 3600:.2f} h (one core, all {len(records)} records"
              + (f", {off_plan} configurations no longer in the plan" if off_plan else "")
              + f"), per configuration {np.median(secs):.0f} s median, {secs.min():.0f}–{secs.max():.0f} s")
        table.append(f"| `{name}_dft` | {len(ok)} ({len(rescued)} rescued) | {len(failed)} | {len(keys)} | "
                     f"{secs.sum() / 3600:.1f} h | {np.median(secs):.0f} s |")
        ds = finish_dataset(name, records_to_dataset(ok, name=name))
        e = ds.label("energy") / ds.n_atoms
        print(f"   energy per atom {e.min():.3f} … {e.max():.3f} eV; |forces| max "
              f"{np.linalg.norm(ds.label('forces'), axis=1).max():.3f} eV/Å")
        m = ds.label("magmoms")
        sizes = Counter(int(n) for n in ds.n_atoms)
        print(f"   cells {dict(sorted(sizes.items()))}; tags {dict(Counter(t for tt in ds.tags for t in tt))}")
        if name == "fe_noncollinear":
            noncollinear_card(ds)
        elif name == "fept":
            fe, pt = m[ds.numbers == 26], m[ds.numbers == 78]
            print(f"   moments Fe {fe.min():.2f} … {fe.max():.2f} μB, Pt {pt.min():.2f} … {pt.max():.2f} μB")
            ct = ds.label("charge_transfer")
            print(f"   charge transfer Fe {ct[ds.numbers == 26].mean():+.3f} e, Pt {ct[ds.numbers == 78].mean():+.3f} e (mean)")
            if "mixing_energy" in ds:
                mix = ds.label("mixing_energy")
                print(f"   mixing enthalpy {mix.min() * 1000:.1f} … {mix.max() * 1000:.1f} meV/atom")
                b2 = [i for i, t in enumerate(ds.tags) if "ordered-B2" in t]
                others = mix[np.array([f == "Fe8Pt8" and "ordered-B2" not in t for f, t in zip(ds.formulas, ds.tags)])]
                if b2 and others.size:
                    print(f"   B2 Fe8Pt8 {1000 * mix[b2[0]]:.0f} meV/atom; the other {others.size} Fe8Pt8 "
                          f"{1000 * others.min():.0f} … {1000 * others.max():.0f}")
        else:
            print(f"   |moments| {np.abs(m).min():.2f} … {np.abs(m).max():.2f} μB")
            kept = ds.label("pattern_kept")
            was_rescued = np.array(["rescue" in m for m in ds.meta])
            if was_rescued.any():
                print(f"   SCF kept the pattern in {kept[was_rescued].sum()} of {was_rescued.sum()} rescued")
            for pattern in ("FM", "AFM-B2", "AFM-layer", "AFM-L10", "random"):
                sel = np.array([pattern in t for t in ds.tags])
                if sel.any():
                    print(f"   SCF kept {pattern:<9} {kept[sel].sum():3d} / {sel.sum():3d}")
            for (lattice, pattern), gap in pattern_energy_gaps(ds).items():
                print(f"   {lattice} {pattern:<9} − FM at the same geometry: {1000 * gap.min():+.0f} … "
                      f"{1000 * gap.max():+.0f} meV/atom, median {1000 * np.median(gap):+.0f} ({len(gap)} geometries)")
            for sheared in (False, True):
                eos = ferromagnetic_bcc_eos(ds, include_sheared=sheared)
                print(f"   FM BCC equation of state ({eos['n']} cells{', sheared included' if sheared else ''}, "
                      f"rattle energy removed): a0 {eos['a0']:.3f} Å, B {eos['bulk_modulus']:.0f} GPa, "
                      f"{eos['moment_at_v0']:.2f} μB at V0, residual {eos['rms_residual']:.1f} meV/atom")

    if args.markdown and table:
        print("\n| set | done | failed | planned | one-core CPU | median per configuration |")
        print("| --- | --- | --- | --- | --- | --- |")
        print("\n".join(table))


if __name__ == "__main__":
    main()

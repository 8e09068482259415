#!/usr/bin/env python
"""The LDOS surrogate of aluminium at 933 K, measured: train on the training snapshots, predict the
held-out ones and the larger cells, and compare every observable with DFT.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/ldos_study.py [--data data/ldos] [--sigma 0.15]
        [--descriptors al-ldos,...] [--epochs 150] [--energy] [--save-model PATH] [--out PATH]

Reads the generator's full set (scripts/generate_ldos.py: the plan's snapshots with the "full"
settings; whatever is finished). Per descriptor in --descriptors (the library's point preset
"al-ldos" and the alternatives below, for the tuning table): features of every grid point, an
LDOSNet trained by the one training loop on every point of the training snapshots but the last
(which validates: early stopping, best weights), then for every test and large snapshot the
prediction of its whole grid (timed: features + network) and mlexplore.analysis.ldos_errors against
the DFT LDOS at the same broadening, plus the band energy against GPAW's own Σ f ε. --energy adds
the total free energy: GPAW's SCF is rerun on each held-out 32-atom snapshot (same settings) and
mlexplore.dft.total_energy_from_density evaluates the predicted and the DFT density + band energy +
entropy with the atomic density matrices of that SCF (the one unavoidable approximation, see
mlexplore.dft.ldos_energy). Results go to --out (JSON, written atomically), a table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mlexplore.analysis import ldos_errors, ldos_observables  # noqa: E402
from mlexplore.descriptors import G2, G4, SymmetryFunctions, from_preset  # noqa: E402
from mlexplore.dft import LDOSSettings, broaden, coarsen, load_ldos_set, load_plan  # noqa: E402
from mlexplore.io.files import atomic_write  # noqa: E402
from mlexplore.models import LDOSNet  # noqa: E402
from mlexplore.training import fit_ldos, ldos_points, load_model, predict_snapshot, save_model  # noqa: E402


def _g4(zetas=(1, 4)):
    return [G4(0.05, z, lam) for z in zetas for lam in (-1, 1)]


#: the descriptors compared (the first is the library's preset); names say what they hold
CANDIDATES = {
    "al-ldos": lambda: from_preset("al-ldos", elements=["Al"]),
    "wide-6A": lambda: SymmetryFunctions([G2(4.0, rs) for rs in np.arange(0, 6.0, 0.5)]
                                         + [G2(1.0, rs) for rs in (0.0, 2.0, 4.0)] + _g4(), cutoff=6.0, elements=["Al"]),
    "radial-6A": lambda: SymmetryFunctions([G2(4.0, rs) for rs in np.arange(0, 6.0, 0.5)]
                                           + [G2(1.0, rs) for rs in (0.0, 2.0, 4.0)], cutoff=6.0, elements=["Al"]),
    "coarse-5A": lambda: SymmetryFunctions([G2(eta, rs) for eta in (1.0, 4.0) for rs in (0.0, 1.0, 2.0, 3.0, 4.0)]
                                           + _g4(), cutoff=5.0, elements=["Al"]),
    "short-4A": lambda: SymmetryFunctions([G2(4.0, rs) for rs in np.arange(0, 4.0, 0.5)]
                                          + [G2(1.0, rs) for rs in (0.0, 2.0)] + _g4(), cutoff=4.1, elements=["Al"]),
}


def _table(rows: list[dict]) -> str:
    head = (f"{'descriptor':<11} {'snapshot':<9} {'atoms':>5} {'E_b meV/at':>10} {'vs GPAW':>8} {'E_F meV':>8} "
            f"{'n MAPE %':>8} {'DOS %':>6} {'F meV/at':>8} {'pred s':>7} {'GPAW s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        f = r.get("free_energy_error")
        lines.append(f"{r['descriptor']:<11} {r['snapshot']:<9} {r['n_atoms']:>5} {r['band_energy']:>+10.2f} "
                     f"{r['band_energy_vs_gpaw']:>+8.2f} {r['e_fermi']:>+8.1f} {r['density_mape']:>8.2f} "
                     f"{r['dos_error']:>6.2f} {'' if f is None else f'{f:+8.2f}':>8} {r['predict_seconds']:>7.1f} "
                     f"{r['gpaw_seconds']:>7.0f}")
    return "\n".join(lines)


def _free_energy_errors(snapshot, predicted: np.ndarray, settings: LDOSSettings) -> dict:
    """GPAW's SCF of the snapshot again, then F of the DFT and of the predicted density (meV/atom)."""
    from ase import Atoms

    from mlexplore.dft import fermi_dirac_entropy_energy, ldos_scf, total_energy_from_density

    r = snapshot.result
    t0 = time.perf_counter()
    atoms = ldos_scf(Atoms(numbers=r.numbers, positions=r.positions, cell=r.cell, pbc=True), settings)
    scf = time.perf_counter() - t0
    gpaw_free = atoms.get_potential_energy(force_consistent=True)
    out = {"gpaw_free_energy": gpaw_free, "scf_seconds": scf}
    for name, ldos in (("dft", r.ldos), ("predicted", predicted)):
        o = ldos_observables(ldos, r.energies, r.voxel_volume, r.n_electrons, r.kT)
        ts = fermi_dirac_entropy_energy(o.dos, r.energies, o.e_fermi, r.kT)
        out[f"{name}_free_energy"] = total_energy_from_density(atoms.calc, o.density, o.band_energy, ts,
                                                               renormalize=True)
    n = len(r.numbers)
    out["free_energy_error"] = 1000 * (out["predicted_free_energy"] - out["dft_free_energy"]) / n
    out["dft_ldos_free_energy_vs_gpaw"] = 1000 * (out["dft_free_energy"] - gpaw_free) / n
    return out


def _train(name: str, fit_on: list, val_on, hidden: tuple, args, save: bool) -> tuple[LDOSNet, dict]:
    """An LDOSNet with descriptor ``name`` trained on every point of ``fit_on``, validated on ``val_on``."""
    sf = CANDIDATES[name]()
    t0 = time.perf_counter()
    parts = [ldos_points(s.result, sf) for s in fit_on]
    x, y = torch.cat([p.features for p in parts]), torch.cat([p.ldos for p in parts])
    del parts
    val = ldos_points(val_on.result, sf)
    featurise = time.perf_counter() - t0
    torch.manual_seed(0)
    net = LDOSNet(sf.n_features, val.energies, hidden=hidden, descriptor=sf)
    t0 = time.perf_counter()
    history = fit_ldos(net, x, y, val=val, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       lr_patience=5, patience=args.patience, device=args.device, progress=False)
    train_seconds = time.perf_counter() - t0
    if save and args.save_model:
        save_model(net, args.save_model, extra={"sigma": args.sigma, "energy_factor": args.energy_factor,
                                                "descriptor": name, "train": [s.key for s in fit_on],
                                                "validation": val_on.key, "study": "scripts/ldos_study.py"})
    return net, {"descriptor": name, "n_features": sf.n_features, "cutoff": sf.cutoff, "train_points": int(x.shape[0]),
                 "featurise_seconds": featurise, "train_seconds": train_seconds, "best_epoch": history.best_epoch,
                 "epochs_run": len(history.train_loss), "snapshots": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "ldos")
    parser.add_argument("--sigma", type=float, default=0.15, help="Gaussian width of the LDOS trained (eV)")
    parser.add_argument("--energy-factor", type=int, default=2,
                        help="keep every n-th energy of the broadened LDOS (2: 0.1 eV, MALA's spacing; the "
                             "σ = 0.15 eV Gaussians stay resolved)")
    parser.add_argument("--descriptors", default="al-ldos", help=f"comma-separated, of {', '.join(CANDIDATES)}")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--hidden", default="100,100")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training snapshots")
    parser.add_argument("--energy", action="store_true", help="total free energy of the held-out 32-atom cells "
                        "(reruns GPAW's SCF on each: ~2 min per cell)")
    parser.add_argument("--save-model", type=Path, default=None, help="save the first descriptor's model here")
    parser.add_argument("--model", type=Path, default=None, help="evaluate this saved model instead of training "
                        "(--descriptors, --epochs, --hidden are then ignored; its descriptor is its own)")
    parser.add_argument("--held", default="test,large", help="the held-out tags predicted")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "ldos" / "study.json")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = LDOSSettings()
    keys = [settings.key(a) for a in load_plan(args.data / "plan.json")]
    by_tag = {t: load_ldos_set(args.data, tag=t, keys=keys) for t in ("train", "test", "large")}
    train = by_tag["train"][: args.train_limit] if args.train_limit else by_tag["train"]
    if len(train) < 2 or not (by_tag["test"] or by_tag["large"]):
        raise SystemExit(f"need ≥ 2 training and ≥ 1 held-out snapshot in {args.data}: have "
                         f"{ {t: len(v) for t, v in by_tag.items()} } (run scripts/generate_ldos.py)")
    fit_on, val_on = train[:-1], train[-1]
    held = [s for t in args.held.split(",") for s in by_tag[t]]
    for s in train + held:
        s.result = coarsen(broaden(s.result, args.sigma), 1, args.energy_factor)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    results = {"sigma": args.sigma, "energy_factor": args.energy_factor, "hidden": hidden, "epochs": args.epochs, "train": [s.key for s in fit_on],
               "validation": val_on.key, "held_out": [s.key for s in held], "runs": []}
    rows = []
    for k, name in enumerate(args.descriptors.split(",") if args.model is None else ["saved"]):
        if args.model is not None:
            net, extra = load_model(args.model, return_extra=True)
            if not np.allclose(net.energies, held[0].result.energies):
                raise SystemExit(f"{args.model} predicts on another energy grid: pass its --sigma/--energy-factor "
                                 f"(saved with: {extra})")
            run = {"descriptor": str(args.model), "saved_with": extra, "snapshots": []}
        else:
            net, run = _train(name, fit_on, val_on, hidden, args, save=k == 0)
        for s in held:
            r = s.result
            t0 = time.perf_counter()
            pred = predict_snapshot(net, r)
            seconds = time.perf_counter() - t0
            e = ldos_errors(pred, r.ldos, r.energies, r.voxel_volume, r.n_electrons, r.kT, len(r.numbers))
            o = ldos_observables(pred, r.energies, r.voxel_volume, r.n_electrons, r.kT)
            row = {"descriptor": name, "snapshot": f"{s.tag}{s.record.get('index', '')}", "key": s.key,
                   **e.as_dict(), "n_atoms": len(r.numbers),
                   "band_energy_vs_gpaw": 1000 * (o.band_energy - r.band_energy) / len(r.numbers),
                   "predict_seconds": seconds, "gpaw_seconds": float(s.record.get("compute_seconds", float("nan")))}
            if args.energy and s.tag == "test":
                row.update(_free_energy_errors(s, pred, settings))
            run["snapshots"].append(row)
            rows.append(row)
            print(_table([row]).splitlines()[-1], flush=True)
        results["runs"].append(run)
        with atomic_write(args.out) as fh:
            json.dump(results, fh, indent=1)
    print(_table(rows))
    for run in results["runs"]:
        s = [r for r in run["snapshots"] if r["snapshot"].startswith("test")]
        if s:
            print(f"{run['descriptor']}: test mean |E_b| {np.mean([abs(r['band_energy']) for r in s]):.2f} meV/atom, "
                  f"density MAPE {np.mean([r['density_mape'] for r in s]):.2f} %, DOS {np.mean([r['dos_error'] for r in s]):.2f} %"
                  + (f"; {run['train_points']} points, {run['train_seconds']:.0f} s training, best epoch "
                     f"{run['best_epoch']}" if "train_points" in run else ""))


if __name__ == "__main__":
    main()

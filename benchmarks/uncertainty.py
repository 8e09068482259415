"""Can the committee's spread be trusted? Rank correlation of force std with force error on held-out
gold, the spread on gold compressed by 25 % against the test set's, and the cost of a committee in MD.

    python benchmarks/uncertainty.py [--members 8] [--epochs 300] [--n-per-group 6] [--test-per-group 0]
                                     [--basis radial|loeffler-au] [--resample none|bootstrap]

Data: EMT gold (``mlexplore.datasets.gold``), split 70/15/15 at random; a committee of
``--members`` BPNNs (2 × 16 tanh) on the radial basis of the notebook
``uncertainty_and_active_learning`` (14 G2, R_c = 5.5 Å) or on ``loeffler-au`` (8 G2 + 18 G9,
R_c = 6 Å; about 20× slower), each member from its own seed, calibrated on the validation set
(``calibrate_committee``). Prints:

1. Spearman rank correlation between the per-atom committee force std (norm over components) and
   the per-atom force error |F_pred − F_EMT| on the test set;
2. the committee energy std per atom on FCC Au compressed by 25 % (lattice constant 0.75 × 4.08 Å) against its median on
   the test set, and the same for the Au dimer at 1.6 Å; the EMT energies there against the
   committee's prediction; and whether the extrapolation warning fired;
3. milliseconds per velocity-Verlet MD step (ASE, 108-atom FCC cell, 300 K) with one member alone
   and with the whole committee, both measured in this process, one after the other, on the same
   thread count, and their ratio.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from scipy.stats import spearmanr

from mlexplore.data import random_split
from mlexplore.datasets import gold
from mlexplore.descriptors import SymmetryFunctions, radial_grid
from mlexplore.descriptors.presets import from_preset
from mlexplore.models import Committee
from mlexplore.training import ExtrapolationWarning, Potential, calibrate_committee, fit_committee


def md_ms_per_step(potential: Potential, steps: int) -> float:
    atoms = bulk("Au", "fcc", a=4.08, cubic=True).repeat((3, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    atoms.calc = potential.as_ase_calculator()
    dyn = VelocityVerlet(atoms, 2 * units.fs)
    dyn.run(2)  # warm up
    start = time.perf_counter()
    dyn.run(steps)
    return 1000 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--basis", choices=("radial", "loeffler-au"), default="radial")
    parser.add_argument("--resample", choices=("none", "bootstrap"), default="none")
    parser.add_argument("--n-per-group", type=int, default=6)
    parser.add_argument("--test-per-group", type=int, default=0, help="a separate test set of this many "
                        "structures per gold family (gold seed 1); 0 (default): 15 %% of the set")
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--md-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ds = gold(n_per_group=args.n_per_group, progress=False)
    if args.test_per_group:  # an independent test set (gold's seed 1), the set split 85/15 into train/validation
        train, val = random_split(ds, (0.85, 0.15), seed=args.seed)
        test = gold(n_per_group=args.test_per_group, seed=1, progress=False)
    else:
        train, val, test = random_split(ds, (0.7, 0.15, 0.15), seed=args.seed)
    print(f"gold(n_per_group={args.n_per_group}): {len(train)} train / {len(val)} validation / {len(test)} test "
          f"structures; committee of {args.members}, {args.epochs} epochs each, resampling: {args.resample}")
    if args.basis == "radial":
        sf = SymmetryFunctions(radial_grid(7, 2.2, 5.2, eta=1.0) + radial_grid(7, 2.2, 5.2, eta=4.0), cutoff=5.5,
                               elements=["Au"])
    else:
        sf = from_preset("loeffler-au", elements=["Au"])
    committee = Committee(sf, n_members=args.members, hidden=(args.hidden, args.hidden), seed=args.seed).double()
    t0 = time.perf_counter()
    fit_committee(committee, train, val, epochs=args.epochs, lr=5e-3, batch_size=8, device="cpu",
                  dtype=torch.float64, seed=args.seed, resample=args.resample)
    print(f"trained in {time.perf_counter() - t0:.0f} s")
    report = calibrate_committee(committee, val)
    print(f"calibration on the validation forces: scale {report['scale']:.3g} (force RMSE "
          f"{report['forces_rmse']:.3f} eV/Å, committee std {report['forces_std_before']:.3f} → "
          f"{report['forces_std_after']:.3f})")

    pot = Potential(committee, extrapolation="ignore")
    pred = pot.predict(test)
    f_err = np.linalg.norm(pred["forces"] - test.label("forces"), axis=1)
    f_std = np.linalg.norm(pred["forces_std"], axis=1)
    rho = spearmanr(f_std, f_err).statistic
    comp_rho = spearmanr(np.abs(pred["forces_std"]).ravel(), np.abs(pred["forces"] - test.label("forces")).ravel()).statistic
    bounds = np.concatenate([[0], np.cumsum(test.n_atoms)])
    s_std = [f_std[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])]
    s_err = [np.sqrt(np.mean(f_err[a:b] ** 2)) for a, b in zip(bounds[:-1], bounds[1:])]
    e_std_test = pred["energy_std"] / test.n_atoms
    e_rmse = 1000 * np.sqrt(np.mean(((pred["energy"] - test.label("energy")) / test.n_atoms) ** 2))
    print(f"\n1. test set ({test.n_total_atoms} atoms): energy RMSE {e_rmse:.1f} meV/atom, force RMSE "
          f"{np.sqrt(np.mean(f_err ** 2) / 3):.3f} eV/Å; Spearman ρ(force std, force error) = {rho:.3f} per atom, "
          f"{comp_rho:.3f} per component, {spearmanr(s_std, s_err).statistic:.3f} per structure ({len(test)})")

    median = float(np.median(e_std_test))
    print(f"2. committee energy std per atom, median over the test set: {1000 * median:.2f} meV/atom")
    cases = {"FCC Au compressed by 25 %": bulk("Au", "fcc", a=4.08 * 0.75, cubic=True),
             "Au dimer at 1.6 Å": Atoms("Au2", positions=[[0, 0, 0], [1.6, 0, 0]])}
    reference = bulk("Au", "fcc", a=4.08, cubic=True)
    reference.calc = EMT()
    e0 = reference.get_potential_energy() / len(reference)
    for name, atoms in cases.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = Potential(committee).predict(atoms)
        warned = any(issubclass(w.category, ExtrapolationWarning) for w in caught)
        atoms.calc = EMT()
        emt = atoms.get_potential_energy() / len(atoms) - e0
        ml = float(p["energy"][0]) / len(atoms) - e0
        std = float(p["energy_std"][0]) / len(atoms)
        print(f"   {name}: EMT {emt:+.2f} eV/atom, committee {ml:+.2f} ± {std:.3f} eV/atom; std = "
              f"{std / median:.0f}× the test median; extrapolation warning: {'yes' if warned else 'no'}; "
              f"{int(p['extrapolating'].sum())} of {len(atoms)} atoms flagged")

    single = Potential(committee.members[0], extrapolation="ignore")
    one = md_ms_per_step(single, args.md_steps)
    many = md_ms_per_step(pot, args.md_steps)
    print(f"3. MD on a 108-atom cell, {args.threads} thread(s): one model {one:.1f} ms/step, committee of "
          f"{args.members} {many:.1f} ms/step ({many / one:.2f}×)")


if __name__ == "__main__":
    main()

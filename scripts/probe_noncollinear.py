"""Probe GPAW 26.7's routes to non-collinear (canted / spiral) BCC-Fe states.

Measures, for BCC Fe (a = 2.83 Angstrom), wall time, SCF iterations,
convergence, local moments and total energy of:

``fm``
    collinear spin-polarised LDA ferromagnet (reference).
``nc-free``
    self-consistent non-collinear LDA, seeded with the two sublattices canted
    by ``--angle`` radians (moments at +-angle/2 from z, in the xz plane), no
    constraint (GPAW relaxes it to the nearest collinear state).
``nc-con``
    the same seed, but with GPAW's penalty constraint on each atom's moment
    direction, ``gpaw.new.constraints.SpinDirectionConstraint`` (passed as
    ``extensions=[...]``; penalty lambda*(|m|^2 - (u.m)^2), ``--penalty``
    in eV, default 0.8 as in GPAW).  The reported energy excludes the
    penalty energy (the extension returns 0 energy and its potential is
    removed from the kinetic-energy double counting).
``spiral``
    flat spin spiral by the generalised Bloch theorem,
    ``mode={'name': 'pw', 'qspiral': q}``, q = (0, 0, ``--q``) in units of
    the reciprocal cell (cubic cell), moments seeded in the xy plane rotated by
    -2*pi*q.r_frac per atom (``--seed-sign``; GPAW's rotation sense).

``--cell fe2`` is the 2-atom cubic BCC cell, ``--cell fe4`` the 1x1x2
cubic supercell (k-points k x k x k/2), ``--cell fe16`` the 2x2x2 cubic
supercell (16 atoms).  ``--spins pm`` draws paramagnetic directions
(thesis eq 3.32) instead of the two-sublattice canting.  LDA throughout (self-consistent non-collinear
GPAW accepts LDA only).  Each run appends one JSON line to
``/tmp/ncprobe/results.jsonl``; the GPAW log goes to ``/tmp/ncprobe/<tag>.txt``.

Run single-threaded, one at a time, e.g.::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        .venv/bin/python scripts/probe_noncollinear.py nc-con --angle 0.3
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.build import bulk

OUT = Path('/tmp/ncprobe')


def make_atoms(cell: str, a: float):
    atoms = bulk('Fe', 'bcc', a=a, cubic=True)  # 2 atoms
    if cell == 'fe4':
        atoms = atoms.repeat((1, 1, 2))
    elif cell == 'fe16':
        atoms = atoms.repeat((2, 2, 2))
    return atoms


def canted_directions(atoms, angle: float) -> np.ndarray:
    """Unit vectors: sublattice A at +angle/2, B at -angle/2 from z (xz)."""
    # corner atoms sit at multiples of a (even in units of a/2), centres odd
    nsub = np.rint(atoms.positions[:, 0] / (atoms.info['a_cubic'] / 2))
    nsub = nsub.astype(int)
    sign = np.where(nsub % 2 == 0, 1.0, -1.0)
    u = np.zeros((len(atoms), 3))
    u[:, 0] = sign * np.sin(angle / 2)
    u[:, 2] = np.cos(angle / 2)
    return u


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('case', choices=['fm', 'nc-free', 'nc-con', 'spiral'])
    p.add_argument('--cell', choices=['fe2', 'fe4', 'fe16'], default='fe2')
    p.add_argument('--a', type=float, default=2.83)
    p.add_argument('--angle', type=float, default=0.0,
                   help='angle between the two sublattices (rad)')
    p.add_argument('--sigma', type=float, default=0.2,
                   help="pfm: polar angle arccos(1 - |N(0, sigma)|) (the "
                        "literal thesis eq 3.29, arccos(|N(0, sigma)|), is "
                        "~90 deg for small sigma)")
    p.add_argument('--spins', choices=['canted', 'pm', 'pfm'],
                   default='canted',
                   help="nc-*: 'canted' two sublattices at +-angle/2, or "
                        "'pm' random directions, polar arccos(1 - U[0, 2)), "
                        "azimuth U[0, 2pi) (thesis eq 3.32)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--q', type=float, default=0.0,
                   help='spiral q_z in reciprocal-cell units')
    p.add_argument('--seed-sign', type=float, default=-1.0,
                   help='spiral seed: phi_a = sign*2*pi*q.r_a')
    p.add_argument('--penalty', type=float, default=0.8, help='eV')
    p.add_argument('--m0', type=float, default=2.2, help='seed moment')
    p.add_argument('--ecut', type=float, default=300.0)
    p.add_argument('--k', type=int, default=4)
    p.add_argument('--width', type=float, default=0.1)
    p.add_argument('--maxiter', type=int, default=200)
    p.add_argument('--mixer', default=None,
                   help="e.g. 'msr1' to use mixer={'backend': 'msr1'}")
    p.add_argument('--tag', default=None)
    args = p.parse_args(argv)

    from gpaw.new.ase_interface import GPAW

    OUT.mkdir(parents=True, exist_ok=True)
    atoms = make_atoms(args.cell, args.a)
    atoms.info['a_cubic'] = args.a
    n = len(atoms)
    spins = f'a{args.angle:g}'
    if args.case.startswith('nc') and args.spins == 'pm':
        spins = f'pm{args.seed}'
    elif args.case.startswith('nc') and args.spins == 'pfm':
        spins = f'pfm{args.sigma:g}s{args.seed}'
    tag = args.tag or (f'{args.cell}_{args.case}_{spins}_q{args.q:g}'
                       f'_k{args.k}_p{args.penalty:g}')

    kpts = (args.k, args.k, args.k)
    if args.cell == 'fe4':  # cell doubled along z
        kpts = (args.k, args.k, max(1, args.k // 2))
    mode = {'name': 'pw', 'ecut': args.ecut}
    kw = dict(xc='LDA',
              kpts=kpts,
              occupations={'name': 'fermi-dirac', 'width': args.width},
              symmetry='off',
              maxiter=args.maxiter,
              parallel={'domain': 1, 'band': 1},
              txt=str(OUT / f'{tag}.txt'))
    if args.mixer:
        kw['mixer'] = {'backend': args.mixer}

    u = None
    if args.case == 'fm':
        kw['magmoms'] = [args.m0] * n
    elif args.case in ('nc-free', 'nc-con'):
        if args.spins in ('pm', 'pfm'):
            rng = np.random.default_rng(args.seed)
            if args.spins == 'pm':
                theta = np.arccos(1 - rng.uniform(0, 2, n))
            else:
                theta = np.arccos(np.clip(
                    1 - np.abs(rng.normal(0, args.sigma, n)), -1, 1))
            phi = rng.uniform(0, 2 * np.pi, n)
            u = np.stack([np.sin(theta) * np.cos(phi),
                          np.sin(theta) * np.sin(phi),
                          np.cos(theta)], axis=1)
        else:
            u = canted_directions(atoms, args.angle)
        kw['magmoms'] = (args.m0 * u).tolist()
        if args.case == 'nc-con':
            from gpaw.new.constraints import SpinDirectionConstraint
            kw['extensions'] = [SpinDirectionConstraint(
                {i: u[i].tolist() for i in range(n)}, args.penalty)]
    else:  # spiral
        q_c = np.array([0.0, 0.0, args.q])
        mode['qspiral'] = q_c.tolist()
        # GPAW 26.7's gBT rotates the moment by -2*pi*q.R (measured: seeded
        # with +2*pi*q.r the Fe2 q=0.1 SCF converged to the -0.314 rad
        # sense), so seed the real-space moments with that sense.
        phi = args.seed_sign * 2 * np.pi * atoms.get_scaled_positions() @ q_c
        kw['magmoms'] = np.stack([args.m0 * np.cos(phi),
                                  args.m0 * np.sin(phi),
                                  np.zeros(n)], axis=1).tolist()
    kw['mode'] = mode

    atoms.calc = GPAW(**kw)
    t0 = time.time()
    converged = True
    err = None
    try:
        energy = atoms.get_potential_energy()
    except Exception as e:  # KohnShamConvergenceError and friends
        converged = False
        err = f'{type(e).__name__}: {e}'
        energy = float('nan')
    wall = time.time() - t0
    dft = atoms.calc.dft
    niter = dft.scf_loop.niter
    try:
        mm_v, mm_av = dft.density.calculate_magnetic_moments()
        mm_av = np.asarray(mm_av)
        if mm_av.ndim == 1:
            mm_av = np.stack([np.zeros(n), np.zeros(n), mm_av], axis=1)
    except Exception:
        mm_v, mm_av = np.full(3, np.nan), np.full((n, 3), np.nan)
    # angle between consecutive atoms' moments (pairwise 0-1)
    m0, m1 = mm_av[0], mm_av[1]
    ang01 = float(np.arccos(np.clip(m0 @ m1 / np.linalg.norm(m0)
                                    / np.linalg.norm(m1), -1, 1)))
    dev = None
    if u is not None:
        mhat = mm_av / np.linalg.norm(mm_av, axis=1)[:, None]
        dev = np.arccos(np.clip((mhat * u).sum(1), -1, 1))
        dev = dict(max=round(float(dev.max()), 4),
                   mean=round(float(dev.mean()), 4))
    rec = dict(tag=tag, case=args.case, cell=args.cell, natoms=n,
               kpts=list(kpts),
               angle_seed=args.angle, q=args.q, penalty=args.penalty,
               seed_sign=args.seed_sign, spins=args.spins, seed=args.seed,
               sigma=args.sigma,
               seed_directions=np.round(u, 4).tolist() if u is not None
               else None,
               ecut=args.ecut, k=args.k, width=args.width,
               mixer=args.mixer, wall_s=round(wall, 1), niter=niter,
               converged=converged, error=err, energy_eV=energy,
               energy_per_atom_eV=energy / n,
               moments=np.round(mm_av, 3).tolist(),
               total_moment=np.round(np.asarray(mm_v), 3).tolist(),
               angle01_rad=round(ang01, 4),
               seed_to_final_angle_rad=dev,
               moment_norms=np.round(np.linalg.norm(mm_av, axis=1),
                                     3).tolist())
    with open(OUT / 'results.jsonl', 'a') as f:
        f.write(json.dumps(rec) + '\n')
    print(json.dumps(rec))


if __name__ == '__main__':
    main()

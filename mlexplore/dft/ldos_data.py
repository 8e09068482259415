"""LDOS training data from GPAW: aluminium at 933 K, MALA's first case (Ellis et al., *Phys. Rev. B*
**104**, 035120 (2021)), made resumably, with a small coarse copy shipped in the package.

The pieces:

* :func:`aluminium_snapshots` — the geometries: FCC Al at the density of the solid at its melting
  point, thermalised at 933 K by Langevin molecular dynamics with ASE's EMT (cheap); 32-atom
  cells (2×2×2 conventional) tagged ``train`` and ``test`` (independent trajectories) and 108-atom
  cells (3×3×3) tagged ``large`` for size transfer.
* :class:`LDOSSettings` — how each snapshot's LDOS is computed: GPAW plane waves, Fermi–Dirac
  occupations at the ionic temperature, and one energy grid fixed for the whole set.
* :func:`label_ldos` — runs GPAW and :func:`mlexplore.dft.compute_ldos` on each snapshot not done
  yet, writes the :class:`~mlexplore.dft.LDOSResult` to ``<out_dir>/<key>.npz`` (atomically) and
  appends one JSON record to ``<out_dir>/records.jsonl`` (:func:`mlexplore.dft.append_record`), as
  :func:`mlexplore.dft.label` does for energies and forces: a killed run resumes, failures are
  recorded and skipped, and a second process with ``reverse=True`` shares the work.
* :func:`coarsen` and :func:`load_aluminium_ldos` — the shipped small version: every ``factor``-th
  grid point of a few snapshots (``scripts/generate_ldos.py --small``), loadable without GPAW.

Choices, with their numbers:

**Volume.** ``a = 4.124 Å`` (:data:`AL_LATTICE_CONSTANT_933K`, 17.53 Å³/atom, 2.555 g/cm³): the
room-temperature lattice parameter 4.0495 Å expanded by the X-ray (lattice) thermal expansion of
about 1.84 % from 293 K to the melting point (Simmons & Balluffi, *Phys. Rev.* **117**, 52 (1960),
who measured Δa/a and ΔL/L of 99.995 % Al up to 656 °C; the figure is quoted from memory of their
curve, to about ±0.1 %, i.e. ±0.004 Å). ASE's EMT agrees: measured here (32 atoms, Langevin
933 K, 10 ps per volume) its pressure is +0.43 GPa at 4.10 Å, −0.03 GPa at 4.124 Å and −0.47 GPa
at 4.15 Å, so EMT's own zero-pressure lattice constant at 933 K is 4.122 Å and the MD runs at its
own equilibrium. MALA's Al/933K data were made at the room-temperature density 2.699 g/cm³
(``a = 4.049 Å``); pass ``lattice_constant=4.0495`` to follow them instead.

**Dynamics.** Langevin at 933 K, time step 2 fs, friction 0.01 fs⁻¹, the centre of mass fixed
(``FixCom``: the kinetic temperature counts 3N − 3 degrees of freedom), velocities drawn from
Maxwell–Boltzmann; 2 ps of equilibration, then one snapshot every 1 ps. Measured (32 atoms, 10 ps):
the autocorrelation of the atoms' displacements from their lattice sites falls to 0.03 at 0.1 ps,
−0.11 at 0.2 ps and stays within ±0.04 (noise) after 0.3 ps: snapshots 1 ps apart are decorrelated.
The snapshots are hot but crystalline: rms displacement from the lattice sites 0.29–0.45 Å (3D,
measured on 11 snapshots), the largest single displacement ≈ 0.9 Å, every atom nearest a site
of its own (a Lindemann ratio of 0.10–0.15 of the 2.92 Å neighbour distance); the mean kinetic
temperature over 10 ps came out 921, 932 and 933 K for seeds 0, 1, 2.
Each tag has its own trajectory (its own random stream from ``seed``), so test snapshots share no
history with training ones; asking for more snapshots of a tag appends to its trajectory, so the
first ones (and their record keys) stay as they were.

**DFT** (:class:`LDOSSettings` defaults). PBE, plane waves 300 eV, Fermi–Dirac width
kT = k_B × 933 K = 0.0804 eV (MALA's electronic temperature equals the ionic one), Γ-centred
k-point grids from a density of 3.5 Å (ASE's ``kptdensity2monkhorstpack``): 3×3×3 on the 32-atom
cells and 2×2×2 on the 108-atom ones — the *same* k-points of the conventional cell (a Γ-centred
6×6×6 grid), so the two sizes differ only by their disorder, not by their Brillouin-zone
sampling. Real-space grid spacing h = 0.23 Å: GPAW then takes a/18 = 0.2291 Å on every cell (18³,
36³ and 54³ points on the 4-, 32- and 108-atom cells), so all sizes share one grid spacing and
the strides 2, 3, 6 and 9 of :func:`coarsen` divide both set sizes (GPAW's plane-wave default
for 300 eV, π/√(4 E_cut) = 0.250 Å, gives 35³ and 50³: no common spacing). For the perfect
crystal at this volume (1 atom, k 12×12×12 Γ, measured with GPAW 26.7) the occupied band runs
from −4.134 eV to E_F = 6.480 eV at 250 and 350 eV alike (0.6 meV apart): the LDOS is converged
in the cutoff well below 300 eV.

**Energy grid.** One grid for every snapshot, in GPAW's absolute energies, as MALA's (one fixed
grid of absolute Quantum ESPRESSO energies, −10 … 14.9 eV by 0.1 eV, for all Al snapshots). A
surrogate predicts the LDOS on the grid from the geometry alone and finds E_F afterwards from the
electron count; shifting each snapshot's grid by its own E_F would need E_F before the prediction.
GPAW's zero (its plane-wave Poisson solver sets the G = 0 component, the cell average, of the
electrostatic potential to zero) is the same convention in every cell of the same density, so
E_F moves only by what the disorder and the k-points do to it (recorded per snapshot: 6.59 and
6.62 eV on two 32-atom snapshots with k 2×2×2, 6.49 eV on a rattled 4-atom cell with k 6×6×6, 6.48
eV for the perfect crystal). The default −5.5 … 8.0 eV covers the band bottom −4.13 eV less
1.37 eV and E_F + 1.4 eV (10 kT = 0.80 eV, where f < 5e-5, plus 5σ and room for E_F to move).

**Broadening.** σ = 0.05 eV on a grid spacing of 0.05 eV (271 energies). A Gaussian sampled
every σ sums to 1 within 2 exp(−2π²) = 5e-9, so the spacing can be σ: measured on the snapshots'
eigenvalues, the electron count, Fermi level and band energy from a DOS sampled every σ and every
σ/2 agree to 2e-5 of the count. What σ costs is a bias, ∝ σ²: the LDOS is exact for its Gaussians
(∫ LDOS dr equals GPAW's broadened DOS to 1e-8), but Gaussian-broadened discrete levels, occupied
at kT, do not hold exactly GPAW's Σ w f(ε). Measured at GPAW's E_F (rattled 4-atom cell with k
6×6×6, the k-point density of the 32-atom cells with 3×3×3; and two 32-atom snapshots with
k 2×2×2), then the band energy at the Fermi level that holds GPAW's count:

====== ======================= ==========================
σ (eV) N off (4-atom; 32-atom) band energy off (meV/atom)
====== ======================= ==========================
0.1    −0.14 %; +0.10, +0.15 % −2.3; −3.8, −4.5
0.05   −0.04 %; +0.02, +0.04 % −0.6; −0.9, −1.2
0.025  −0.01 %; +0.01 %        −0.1; −0.2, −0.3
====== ======================= ==========================

σ = 0.05 eV holds the count to 0.04 % and the band energy to about 1 meV/atom for the same data
size as σ = 0.1 eV on a σ/2 grid; 0.025 eV would double the energies for the last 1 meV/atom.
The references the LDOS must reproduce are therefore both kept: GPAW's (``references``) and the
LDOS's own integrals (``checks``, :func:`ldos_checks`).

**Cost and memory** are measured per snapshot and kept in its record (``seconds``,
``scf_seconds``, ``ldos_seconds``, ``ldos_bytes``, ``peak_rss_mb``); the README's data card
collects them. The LDOS is accumulated in float32 (``n_grid × n_E × 4`` bytes: 50.6 MB for a
32-atom cell, 171 MB for a 108-atom one) with :func:`~mlexplore.dft.compute_ldos`'s bounded work arrays;
one snapshot is held at a time.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from ..analysis.ldos import band_energy, electron_count, fermi_level, gaussian_dos
from ..errors import InputError, check_positive, check_whole
from ..io.files import atomic_write
from .ldos import LDOSResult, compute_ldos
from .records import PendingWork, append_record, latest_records, read_records

__all__ = ["aluminium_snapshots", "LDOSSettings", "label_ldos", "gpaw_ldos", "ldos_scf", "coarsen", "broaden", "ldos_checks",
           "load_ldos_set", "load_aluminium_ldos", "aluminium_ldos_card", "LDOSSnapshot", "write_small_set",
           "save_plan", "load_plan", "AL_LATTICE_CONSTANT_933K", "KT_933K", "SNAPSHOT_TAGS", "SHIPPED_LDOS_MANIFEST",
           "RECORDS_NAME"]

#: Å. FCC Al at 933 K (module docstring): 4.0495 Å × (1 + 1.84 %); EMT's zero pressure at 933 K: 4.122 Å.
AL_LATTICE_CONSTANT_933K = 4.124
#: eV. k_B × 933 K, the Fermi–Dirac width (electronic temperature = ionic temperature, as MALA).
KT_933K = float(units.kB * 933.0)
#: the tags of :func:`aluminium_snapshots`, in the order of their random streams
SNAPSHOT_TAGS = ("train", "test", "large")
#: the record file of :func:`label_ldos` inside its output folder
RECORDS_NAME = "records.jsonl"
#: the manifest (data card and index) of the shipped small set, in ``mlexplore/datasets/data``
SHIPPED_LDOS_MANIFEST = "al933_ldos_small.json"
#: the ``format`` entry of that manifest and of a frozen plan
_MANIFEST_FORMAT = "mlexplore-ldos-set-1"
_PLAN_FORMAT = "mlexplore-ldos-plan-1"


# ----------------------------------------------------------------------------------------------
# Geometries: EMT Langevin molecular dynamics of FCC Al
# ----------------------------------------------------------------------------------------------

def _trajectory(repeat: int, count: int, tag: str, rng: np.random.Generator, temperature_K: float,
                lattice_constant: float, timestep_fs: float, friction_per_fs: float, equilibration_ps: float,
                interval_ps: float) -> list[Atoms]:
    """``count`` snapshots of one Langevin trajectory of an FCC Al cell repeated ``repeat``³ times."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary

    try:  # ASE ≥ 3.29; the same draws as the older MaxwellBoltzmannDistribution
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

        def thermalize_momenta(atoms: Atoms, temperature_K: float, rng: Any = None) -> None:
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)

    atoms = bulk("Al", "fcc", a=lattice_constant, cubic=True).repeat((repeat,) * 3)
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K, rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ASE's note on fixcm=True, which is not used here
        dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K,
                       friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    n_equil = int(round(equilibration_ps * 1000 / timestep_fs))
    n_interval = max(1, int(round(interval_ps * 1000 / timestep_fs)))
    dyn.run(n_equil)
    out = []
    for i in range(count):
        temps = []
        for _ in range(n_interval):
            dyn.run(1)
            temps.append(atoms.get_temperature())
        snap = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
        snap.wrap()
        snap.info.update(tag=tag, snapshot=i, md_time_ps=(n_equil + (i + 1) * n_interval) * timestep_fs / 1000,
                         kinetic_temperature_K=float(temps[-1]), md_mean_temperature_K=float(np.mean(temps)),
                         temperature_K=float(temperature_K), lattice_constant=float(lattice_constant))
        out.append(snap)
    return out


def aluminium_snapshots(n_train: int = 8, n_test: int = 4, n_large: int = 2, seed: int = 0,
                        temperature_K: float = 933.0, lattice_constant: float = AL_LATTICE_CONSTANT_933K,
                        timestep_fs: float = 2.0, friction_per_fs: float = 0.01, equilibration_ps: float = 2.0,
                        interval_ps: float = 1.0, small_repeat: int = 2, large_repeat: int = 3) -> list[Atoms]:
    """Snapshots of FCC aluminium at ``temperature_K`` from EMT Langevin dynamics (deterministic for a seed).

    Parameters
    ----------
    n_train, n_test, n_large : int
        Snapshots tagged ``train``, ``test`` (both ``small_repeat``³ conventional cells: 32 atoms)
        and ``large`` (``large_repeat``³: 108 atoms). Each tag comes from its own trajectory.
    seed : int
        Seeds the three trajectories' random streams (``numpy.random.SeedSequence([seed, tag])``).
    temperature_K : float
        Temperature of the Langevin thermostat and of the initial velocities (K).
    lattice_constant : float
        Cubic FCC lattice constant (Å), fixed (NVT); default the 933 K value (module docstring).
    timestep_fs, friction_per_fs : float
        Time step (fs) and Langevin friction (1/fs).
    equilibration_ps, interval_ps : float
        Time before the first snapshot and between snapshots (ps); 1 ps is several times the
        0.2–0.3 ps over which the displacements decorrelate (module docstring).
    small_repeat, large_repeat : int
        Repeats of the 4-atom conventional cell along each axis.

    Returns
    -------
    list of ase.Atoms
        Periodic cells, positions wrapped into the cell, no calculator. The train and test
        snapshots come interleaved (train 0, test 0, train 1, …, the rest of the longer list),
        the large ones last, so that any prefix of the plan (``--limit``) holds both small tags.
        ``info``: ``tag``, ``snapshot`` (index within its tag), ``md_time_ps``,
        ``kinetic_temperature_K`` (at the snapshot), ``md_mean_temperature_K`` (mean kinetic
        temperature over the interval before it), ``temperature_K``, ``lattice_constant``.
    """
    counts = {tag: check_whole(n, name, 0) for tag, n, name in
              zip(SNAPSHOT_TAGS, (n_train, n_test, n_large), ("n_train", "n_test", "n_large"))}
    if not sum(counts.values()):
        raise InputError("ask for at least one snapshot (n_train + n_test + n_large > 0)", field="n_train")
    seed = check_whole(seed, "seed", 0)
    temperature_K = check_positive(temperature_K, "temperature_K")
    lattice_constant = check_positive(lattice_constant, "lattice_constant")
    timestep_fs = check_positive(timestep_fs, "timestep_fs")
    friction_per_fs = check_positive(friction_per_fs, "friction_per_fs")
    equilibration_ps = check_positive(equilibration_ps, "equilibration_ps", zero=True)
    interval_ps = check_positive(interval_ps, "interval_ps")
    if interval_ps * 1000 < timestep_fs:
        raise InputError(f"interval_ps ({interval_ps} ps) is shorter than one time step ({timestep_fs} fs)",
                         field="interval_ps")
    repeats = {"train": check_whole(small_repeat, "small_repeat", 1),
               "test": check_whole(small_repeat, "small_repeat", 1),
               "large": check_whole(large_repeat, "large_repeat", 1)}
    snaps = {}
    for k, tag in enumerate(SNAPSHOT_TAGS):
        rng = np.random.default_rng(np.random.SeedSequence([seed, k]))
        snaps[tag] = _trajectory(repeats[tag], counts[tag], tag, rng, temperature_K, lattice_constant, timestep_fs,
                                 friction_per_fs, equilibration_ps, interval_ps) if counts[tag] else []
    for tag in SNAPSHOT_TAGS:
        for a in snaps[tag]:
            a.info["seed"] = seed
    interleaved = [a for pair in zip(snaps["train"], snaps["test"]) for a in pair]
    n = min(counts["train"], counts["test"])
    return interleaved + snaps["train"][n:] + snaps["test"][n:] + snaps["large"]


def save_plan(snapshots: Sequence[Atoms], path: str | os.PathLike) -> Path:
    """Freeze a plan to a JSON file (atomically; floats kept exactly).

    Molecular dynamics is chaotic: another numpy or libm build can turn the same seed into other
    snapshots (and other record keys). A generator that writes its plan once and reads it back
    (:func:`load_plan`) resumes on the same geometries wherever it runs.
    """
    path = Path(path)
    items = [{"numbers": a.numbers.tolist(), "positions": a.positions.tolist(), "cell": a.cell.array.tolist(),
              "pbc": a.pbc.tolist(), "info": _plain(a.info)} for a in snapshots]
    with atomic_write(path) as fh:
        json.dump({"format": _PLAN_FORMAT, "snapshots": items}, fh)
    return path


def _read_tagged_json(path: str | os.PathLike, fmt: str, what: str) -> dict:
    """A JSON object whose ``"format"`` is ``fmt``; else an InputError naming the file as ``what``."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"not {what}: {exc.msg}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InputError(f"not {what} of format {fmt!r}", path=path)
    return data


def load_plan(path: str | os.PathLike) -> list[Atoms]:
    """The snapshots of a plan written by :func:`save_plan`."""
    data = _read_tagged_json(path, _PLAN_FORMAT, "a plan file")
    out = []
    for item in data["snapshots"]:
        a = Atoms(numbers=item["numbers"], positions=item["positions"], cell=item["cell"], pbc=item["pbc"])
        a.info.update(item.get("info", {}))
        out.append(a)
    return out


def _plain(info: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in info.items()
            if isinstance(v, (str, int, float, bool, np.generic))}


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LDOSSettings:
    """How the LDOS of a snapshot is computed; saved with every record and hashed into its key.

    :class:`~mlexplore.dft.DFTSettings` does not fit: it has no energy grid, broadening or grid
    spacing, and its spin-polarised, Hirshfeld-charged defaults are not what an LDOS run needs.

    Parameters
    ----------
    xc : str
        Exchange–correlation functional (PBE, as MALA's Al data).
    ecut : float
        Plane-wave cutoff (eV).
    kpts : tuple of 3 int, optional
        Explicit k-point grid; ``None``: from ``kpt_density``.
    kpt_density : float
        k-points per Å⁻¹ along each reciprocal vector (ASE's ``kptdensity2monkhorstpack``, rounded
        up); 3.5 Å gives 3×3×3 on 8.25 Å cells and 2×2×2 on 12.37 Å cells.
    gamma : bool
        Γ-centred grids (then 3×3×3 on 2×2×2 cells and 2×2×2 on 3×3×3 cells sample the same
        k-points of the conventional cell).
    kT : float
        Fermi–Dirac width = electronic temperature (eV); k_B × 933 K by default.
    h : float, optional
        Largest real-space grid spacing (Å) of the wave functions, which is the LDOS grid (GPAW
        rounds the point count up to an FFT-friendly one); 0.23 Å gives a/18 on the Al cells
        (module docstring); ``None``: GPAW's plane-wave default π / √(4 E_cut) (0.250 Å at 300 eV).
    energy_min, energy_max, energy_spacing : float
        The fixed, absolute energy grid (eV, GPAW's zero): ``energy_min + i × energy_spacing`` up
        to ``energy_max``; ``energy_max − energy_min`` must be a whole number of spacings.
    sigma : float
        Standard deviation of the Gaussian broadening of each state (eV).
    nbands : str or int
        GPAW's ``nbands`` (``"160%"``: 1.6 × the occupied bands, 77 on a 32-atom cell, whose top
        band then lies ≈ 3 eV above E_F). Must reach E_F + ``converge_above_fermi`` at every
        k-point (else GPAW's ``TooFewBandsError``: the snapshot fails, recorded); small cells need
        relatively more (a 4-atom cell: 12 bands, not the 10 of 160 %).
    converge_above_fermi : float
        Converge the bands up to E_F + this (eV; GPAW's ``convergence={'bands': 'CBM+x'}``, for a
        metal counted from E_F): above ``energy_max`` − E_F (1.4 eV) plus a few σ.
    maxiter : int
        Most SCF iterations.
    """

    xc: str = "PBE"
    ecut: float = 300.0
    kpts: tuple[int, int, int] | None = None
    kpt_density: float = 3.5
    gamma: bool = True
    kT: float = KT_933K
    h: float | None = 0.23
    energy_min: float = -5.5
    energy_max: float = 8.0
    energy_spacing: float = 0.05
    sigma: float = 0.05
    nbands: str | int = "160%"
    converge_above_fermi: float = 2.0
    maxiter: int = 200

    def __post_init__(self) -> None:
        if not isinstance(self.xc, str) or not self.xc:
            raise InputError(f"xc must be a functional's name, got {self.xc!r}", field="xc")
        for name in ("ecut", "kpt_density", "kT", "energy_spacing", "sigma", "converge_above_fermi"):
            check_positive(getattr(self, name), name)
        if self.h is not None:
            check_positive(self.h, "h")
        if self.kpts is not None:
            if len(self.kpts) != 3:
                raise InputError(f"kpts must be three positive integers, got {self.kpts!r}", field="kpts")
            object.__setattr__(self, "kpts", tuple(check_whole(k, "kpts", 1) for k in self.kpts))
        for name in ("energy_min", "energy_max"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise InputError(f"{name} must be a finite number (eV), got {value!r}", field=name)
        steps = (self.energy_max - self.energy_min) / self.energy_spacing
        if steps < 1 or abs(steps - round(steps)) > 1e-6:
            raise InputError(f"energy_max − energy_min ({self.energy_max - self.energy_min:g} eV) must be a positive "
                             f"whole number of energy_spacing ({self.energy_spacing:g} eV)", field="energy_max")
        if isinstance(self.nbands, bool) or not (
                (isinstance(self.nbands, int) and self.nbands != 0)
                or (isinstance(self.nbands, str) and self.nbands.endswith("%"))):
            raise InputError(f"nbands must be a number of bands or a percentage such as '150%', got {self.nbands!r}",
                             field="nbands")
        check_whole(self.maxiter, "maxiter", 1)

    @property
    def energies(self) -> np.ndarray:
        """The energy grid (eV), the same for every snapshot."""
        n = int(round((self.energy_max - self.energy_min) / self.energy_spacing))
        return self.energy_min + self.energy_spacing * np.arange(n + 1)

    def to_dict(self) -> dict:
        """Plain, JSON-ready form."""
        d = dataclasses.asdict(self)
        d["kpts"] = None if self.kpts is None else list(self.kpts)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LDOSSettings:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"unknown LDOS settings {sorted(unknown)}", field="settings")
        if d.get("kpts") is not None:
            d["kpts"] = tuple(d["kpts"])
        return cls(**d)

    def kpts_for(self, atoms: Atoms) -> tuple[int, int, int]:
        """The k-point grid used for ``atoms``."""
        if self.kpts is not None:
            return self.kpts
        from ase.calculators.calculator import kptdensity2monkhorstpack

        grid = kptdensity2monkhorstpack(atoms, kptdensity=self.kpt_density, even=False)
        return tuple(int(k) if p else 1 for k, p in zip(grid, atoms.pbc))  # type: ignore[return-value]

    def key(self, atoms: Atoms) -> str:
        """Identity of one LDOS calculation: species, geometry and these settings (24 hex digits)."""
        payload = {"numbers": atoms.numbers.tolist(), "positions": np.round(atoms.positions, 10).tolist(),
                   "cell": np.round(atoms.cell.array, 10).tolist(), "pbc": atoms.pbc.tolist(),
                   "ldos_settings": self.to_dict()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


# ----------------------------------------------------------------------------------------------
# One snapshot with GPAW
# ----------------------------------------------------------------------------------------------

def ldos_scf(atoms: Atoms, settings: LDOSSettings, txt: Any = None) -> Atoms:
    """GPAW's self-consistent run of ``atoms`` with ``settings``: a copy of the cell with the converged
    calculator attached (what :func:`gpaw_ldos` takes the LDOS of, and what
    :func:`~mlexplore.dft.total_energy_from_density` needs of the same snapshot).

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic cell.
    settings : LDOSSettings
    txt : str or None
        GPAW's text log (``None``: none).
    """
    try:
        from gpaw import GPAW, PW, FermiDirac
    except ImportError as exc:
        raise ImportError("GPAW is not installed: install the extra mlexplore[dft] with scripts/install_gpaw.sh"
                          ) from exc
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    extra = {} if settings.h is None else {"h": settings.h}
    work.calc = GPAW(mode=PW(settings.ecut), xc=settings.xc,
                     kpts={"size": settings.kpts_for(work), "gamma": settings.gamma},
                     occupations=FermiDirac(settings.kT), nbands=settings.nbands,
                     convergence={"bands": f"CBM+{settings.converge_above_fermi:g}"},
                     maxiter=settings.maxiter, txt=txt, **extra)
    work.get_potential_energy()
    return work


def gpaw_ldos(atoms: Atoms, settings: LDOSSettings, txt: Any = None) -> LDOSResult:
    """Run GPAW on ``atoms`` with ``settings`` (:func:`ldos_scf`) and return its LDOS on the fixed
    energy grid (float32).

    Returns
    -------
    LDOSResult
        Its ``seconds`` is the LDOS step's wall time (:func:`~mlexplore.dft.compute_ldos`), not the SCF's.
    """
    work = ldos_scf(atoms, settings, txt)
    return compute_ldos(work.calc, energies=settings.energies, sigma=settings.sigma, dtype=np.float32)


def ldos_checks(result: LDOSResult, method: str = "cubic") -> dict[str, float]:
    """What the LDOS of ``result`` gives against its DFT references (float64 sums, no full-size copy).

    Returns
    -------
    dict
        ``ldos_n_electrons`` (the LDOS's count at the DFT Fermi level), ``ldos_band_energy``
        (eV, at the DFT Fermi level), ``ldos_e_fermi`` (eV, the level at which the LDOS holds the
        DFT count), ``dos_max_deviation`` (largest |∫LDOS dr − DFT DOS| over the grid, states/eV,
        relative to the DOS's maximum).
    """
    total = result.ldos.reshape(-1, result.ldos.shape[-1]).sum(axis=0, dtype=np.float64) * result.voxel_volume
    scale = float(np.abs(result.dos_reference).max()) or 1.0
    try:
        own = fermi_level(total, result.energies, result.n_electrons, result.kT, method)
    except InputError:
        own = float("nan")
    return {"ldos_n_electrons": float(electron_count(total, result.energies, result.e_fermi, result.kT, method)),
            "ldos_band_energy": float(band_energy(total, result.energies, result.e_fermi, result.kT, method)),
            "ldos_e_fermi": float(own),
            "dos_max_deviation": float(np.abs(total - result.dos_reference).max() / scale)}


# ----------------------------------------------------------------------------------------------
# Resumable labelling
# ----------------------------------------------------------------------------------------------

LDOSCompute = Callable[[Atoms, LDOSSettings, Any], LDOSResult]


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak) / (2 ** 20 if sys.platform == "darwin" else 1024)


def label_ldos(snapshots: Atoms | Iterable[Atoms], out_dir: str | os.PathLike, settings: LDOSSettings | None = None,
               progress: bool = True, reverse: bool = False, compute: LDOSCompute | None = None,
               retry_failed: bool = False, log: bool = False,
               on_record: Callable[[dict], Any] | None = None) -> list[dict]:
    """Compute the LDOS of every snapshot not done yet, resumably; one snapshot in memory at a time.

    For each snapshot whose key (:meth:`LDOSSettings.key`: geometry + settings) has no successful
    record with its file present in ``out_dir``: run ``compute`` (GPAW, :func:`gpaw_ldos`), save the
    :class:`~mlexplore.dft.LDOSResult` to ``out_dir/<key>.npz`` (compressed, atomically), then
    append one record to ``out_dir/records.jsonl`` (:func:`mlexplore.dft.append_record`: one durable
    JSON line). A run killed at any moment loses at most the snapshot it was computing (a file
    without its record is computed again and replaced). A snapshot that raises is recorded as
    failed (error and traceback) and skipped, now and in later runs unless ``retry_failed``.

    Parameters
    ----------
    snapshots : ase.Atoms or iterable of ase.Atoms
        Periodic cells; ``info['tag']`` (``train``/``test``/``large``) and the other ``info``
        entries of :func:`aluminium_snapshots` go into the records.
    out_dir : path
        Folder of the record file and the LDOS files (created).
    settings : LDOSSettings, optional
        Default ``LDOSSettings()``.
    progress : bool
        Show a progress bar.
    reverse : bool
        Work from the last snapshot to the first. Before each snapshot the records that other
        processes appended meanwhile are read and what they finished is skipped, so a forward and
        a ``reverse`` process share a set and meet in the middle (only a snapshot both start at
        once is computed twice; the later file replaces the earlier, the same numbers).
    compute : callable, optional
        ``(atoms, settings, txt) -> LDOSResult``; default :func:`gpaw_ldos` (needs GPAW).
    retry_failed : bool
        Compute failed snapshots again.
    log : bool
        Keep GPAW's text log of each snapshot in ``out_dir/logs/<key>.txt``.
    on_record : callable, optional
        Called with each record right after it is appended.

    Returns
    -------
    list of dict
        The successful records of ``snapshots`` (their latest), in input order. Each has
        ``status``, ``key``, ``index``, ``tag``, ``file``, ``seconds`` (the snapshot's wall time
        with saving and checks, s), ``compute_seconds`` (``compute``'s), ``ldos_seconds`` (the LDOS
        step's: the result's ``seconds``), ``scf_seconds`` (the rest of ``compute``: GPAW's set-up
        and SCF), ``settings``, ``kpts``, the geometry
        (``numbers``, ``positions``, ``cell``, ``pbc``), ``info``, ``references`` (DFT:
        ``e_fermi``, ``n_electrons``, ``band_energy``, ``energy``, ``free_energy``; eV or
        electrons), ``grid_shape``, ``n_energies``, ``ldos_bytes``, ``file_bytes``, ``checks``
        (:func:`ldos_checks`) and ``peak_rss_mb`` (the process's high-water mark so far, MB).
    """
    from tqdm.auto import tqdm

    settings = settings or LDOSSettings()
    if not isinstance(settings, LDOSSettings):
        raise InputError(f"settings must be LDOSSettings, got {type(settings).__name__}", field="settings")
    if compute is None:
        try:
            import gpaw  # noqa: F401  (only whether it imports)
        except ImportError as exc:  # before any record: a missing GPAW is not a failed snapshot
            raise ImportError("GPAW is not installed: install the extra mlexplore[dft] with "
                              "scripts/install_gpaw.sh") from exc
        compute = gpaw_ldos
    images = [snapshots] if isinstance(snapshots, Atoms) else list(snapshots)
    for i, a in enumerate(images):
        if not isinstance(a, Atoms):
            raise InputError(f"expected ase.Atoms, got {type(a).__name__}", structure=i)
        if not a.pbc.all():
            raise InputError("an LDOS snapshot must be periodic in all three directions", structure=i)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path = out_dir / RECORDS_NAME
    keys = [settings.key(a) for a in images]

    def settled(r: dict) -> bool:
        if r["status"] == "ok":
            return (out_dir / r["file"]).exists()
        return not retry_failed

    work = PendingWork(keys, records_path, settled, reverse=reverse)  # shared with a --reverse process
    n_failed = 0
    with tqdm(total=len(images), initial=len(images) - len(work.todo), desc="LDOS", unit="snapshot",
              disable=not progress) as bar:
        for i, run in work:
            if not run:  # another process finished it meanwhile, or it is listed twice
                bar.update(1)
                continue
            atoms = images[i]
            txt = None
            if log:
                (out_dir / "logs").mkdir(exist_ok=True)
                txt = str(out_dir / "logs" / f"{keys[i]}.txt")
            record: dict[str, Any] = {
                "key": keys[i], "index": i, "tag": str(atoms.info.get("tag", "")), "file": f"{keys[i]}.npz",
                "settings": settings.to_dict(), "kpts": list(settings.kpts_for(atoms)),
                "numbers": atoms.numbers, "positions": atoms.positions, "cell": atoms.cell.array, "pbc": atoms.pbc,
                "info": _plain(atoms.info),
            }
            t0 = time.perf_counter()
            result = None
            try:
                result = compute(atoms, settings, txt)
                if not isinstance(result, LDOSResult):
                    raise TypeError(f"compute returned {type(result).__name__}, not an LDOSResult")
                record["compute_seconds"] = time.perf_counter() - t0
                record["ldos_seconds"] = float(result.seconds)
                record["scf_seconds"] = max(0.0, record["compute_seconds"] - record["ldos_seconds"])
                result.save(out_dir / record["file"])
                record["status"] = "ok"
                record["references"] = {name: float(getattr(result, name)) for name in
                                        ("e_fermi", "n_electrons", "band_energy", "energy", "free_energy")}
                record["grid_shape"] = list(result.grid_shape)
                record["n_energies"] = int(result.energies.size)
                record["ldos_bytes"] = result.nbytes
                record["file_bytes"] = (out_dir / record["file"]).stat().st_size
                record["checks"] = ldos_checks(result)
            except Exception as exc:  # one bad snapshot must not stop the run
                n_failed += 1
                record["status"] = "failed"
                record["error"] = _error_text(exc)
                record["traceback"] = traceback.format_exc(limit=5)
                warnings.warn(f"LDOS snapshot {i} failed ({record['error']}); recorded in {records_path}", stacklevel=2)
            record["seconds"] = time.perf_counter() - t0
            record["peak_rss_mb"] = _peak_rss_mb()
            del result
            gc.collect()
            append_record(records_path, record)
            bar.update(1)
            bar.set_postfix(failed=n_failed)
            if on_record is not None:
                on_record(record)
    by_key = latest_records(read_records(records_path))
    return [by_key[k] for k in dict.fromkeys(keys) if k in by_key and by_key[k]["status"] == "ok"]


def _error_text(exc: BaseException) -> str:
    """``"Type: message"``; GPAW's TooFewBandsError has no message, so its docstring and a hint."""
    text = str(exc) or " ".join((type(exc).__doc__ or "").split())
    if "TooFewBands" in type(exc).__name__:
        text += " (raise LDOSSettings.nbands or lower converge_above_fermi)"
    return f"{type(exc).__name__}: {text}"


# ----------------------------------------------------------------------------------------------
# The shipped small version
# ----------------------------------------------------------------------------------------------

def coarsen(result: LDOSResult, factor: int, energy_factor: int = 1) -> LDOSResult:
    """The LDOS on every ``factor``-th grid point along each axis (and every ``energy_factor``-th energy).

    The coarse grid is a uniform grid of the same cell, voxel (i, j, k) at fractional
    ``(i f / nx, j f / ny, k f / nz)``: the LDOS *values* there, not averages, which is what a
    surrogate predicts from a point's neighbourhood. References that depend on the grid are
    recomputed for it: ``density_reference`` is taken at the same points and ``dos_reference`` is
    evaluated on the coarse energy grid from the eigenvalues (exact). The DFT references (E_F,
    electron count, band energy, total and free energy, eigenvalues, occupations) are kept.

    Integrals over the coarse grid (voxel sums × the larger voxel volume) are no longer exact: a
    field sampled below its band limit aliases (:func:`ldos_checks` of the coarse result says by
    how much; the shipped manifest lists it per snapshot).

    Parameters
    ----------
    result : LDOSResult
    factor : int
        Grid stride, ≥ 1, dividing each of the grid's dimensions.
    energy_factor : int
        Energy stride, ≥ 1; keep ``energy_spacing × energy_factor`` ≤ σ so that the Gaussians stay
        resolved.

    Returns
    -------
    LDOSResult
        ``ldos`` of shape ``(nx/f, ny/f, nz/f, ⌈n_E/e⌉)``, same dtype.
    """
    if not isinstance(result, LDOSResult):
        raise InputError(f"result must be an LDOSResult, got {type(result).__name__}", field="result")
    factor = check_whole(factor, "factor", 1)
    energy_factor = check_whole(energy_factor, "energy_factor", 1)
    shape = result.grid_shape
    if any(n % factor for n in shape):
        raise InputError(f"factor {factor} does not divide the grid {shape}: the coarse grid would not be uniform",
                         field="factor")
    if result.energies.size // energy_factor < 2:
        raise InputError(f"energy_factor {energy_factor} leaves fewer than 2 of {result.energies.size} energies",
                         field="energy_factor")
    s = slice(None, None, factor)
    energies = result.energies[::energy_factor]
    return dataclasses.replace(
        result, ldos=np.ascontiguousarray(result.ldos[s, s, s, ::energy_factor]), energies=energies,
        density_reference=np.ascontiguousarray(result.density_reference[s, s, s]),
        dos_reference=gaussian_dos(result.eigenvalues, result.state_weights[:, None], energies, result.sigma),
        seconds=result.seconds)


def broaden(result: LDOSResult, sigma: float, block: int = 1 << 14) -> LDOSResult:
    """The same LDOS with a wider Gaussian: standard deviation ``sigma`` (eV) instead of ``result.sigma``.

    Gaussians compose exactly — a Gaussian of width σ₀ convolved with one of width
    √(σ² − σ₀²) is one of width σ — so the LDOS is convolved along energy with the latter (sampled
    on the energy grid and normalised to the grid's sum, which keeps ∫ d(r, E) dE at every point;
    zero beyond the grid's ends, where the original has no states either). ``dos_reference`` is
    recomputed from the eigenvalues with ``sigma`` (exact); the density and the DFT numbers are kept.

    Why: in a cell of a few dozen atoms sampled with a few k-points the eigenvalues are a
    discrete set, and at σ = 0.05 eV its DOS is a comb of peaks whose positions belong to the
    whole cell, not to a point's neighbourhood; a local surrogate cannot learn them (two 32-atom
    snapshots of Al at 933 K differ by 15 % in ∫|ΔD| at σ = 0.05 eV, 4.9 % at 0.15, 3.2 % at 0.2).
    The price is a bias of the band energy against the DFT code's own Σ f ε (−0.3, −1.2, −2.9,
    −5.4 meV/atom at σ = 0.05, 0.1, 0.15, 0.2 eV on those snapshots, the same to ±0.2 meV/atom on
    both: a constant shift that leaves energy differences alone).

    Parameters
    ----------
    result : LDOSResult
    sigma : float
        The new width (eV), ≥ ``result.sigma``; equal returns the result unchanged.
    block : int
        Grid points convolved at a time (float64 copies of at most this many LDOS rows).
    """
    if not isinstance(result, LDOSResult):
        raise InputError(f"result must be an LDOSResult, got {type(result).__name__}", field="result")
    sigma = check_positive(sigma, "sigma")
    if sigma < result.sigma - 1e-12:
        raise InputError(f"sigma {sigma} eV is narrower than the LDOS's {result.sigma} eV: a broadening cannot be "
                         "undone", field="sigma")
    if sigma <= result.sigma + 1e-12:
        return result
    from scipy.ndimage import gaussian_filter1d

    step = float(result.energies[1] - result.energies[0])
    width = math.sqrt(sigma ** 2 - result.sigma ** 2) / step  # in grid points
    rows = result.ldos.reshape(-1, result.ldos.shape[-1])
    out = np.empty_like(rows)
    for a in range(0, rows.shape[0], int(block)):
        out[a:a + block] = gaussian_filter1d(rows[a:a + block].astype(np.float64), width, axis=-1, mode="constant",
                                             truncate=8.0)
    return dataclasses.replace(
        result, ldos=out.reshape(result.ldos.shape), sigma=float(sigma),
        dos_reference=gaussian_dos(result.eigenvalues, result.state_weights[:, None], result.energies, sigma),
        seconds=result.seconds)


@dataclass
class LDOSSnapshot:
    """One snapshot of an LDOS set: its ``tag`` (``train``/``test``/``large``), record ``key``, the
    :class:`~mlexplore.dft.LDOSResult` and its ``record`` (the JSON record or manifest entry)."""

    tag: str
    key: str
    result: LDOSResult
    record: dict


def _check_tag(tag: str | None) -> None:
    if tag is not None and tag not in SNAPSHOT_TAGS:
        raise InputError(f"tag must be one of {SNAPSHOT_TAGS} or None, got {tag!r}", field="tag")


def load_ldos_set(out_dir: str | os.PathLike, tag: str | None = None,
                  keys: Sequence[str] | None = None) -> list[LDOSSnapshot]:
    """The successful snapshots of a :func:`label_ldos` folder (each loaded whole: mind the memory).

    Parameters
    ----------
    out_dir : path
        The folder holding ``records.jsonl`` and the ``.npz`` files.
    tag : str, optional
        Only this tag.
    keys : sequence of str, optional
        Only these record keys, in this order (e.g. the keys of a plan); default every successful
        record, in the order of the record file.
    """
    _check_tag(tag)
    records = latest_records(read_records(Path(out_dir) / RECORDS_NAME))
    chosen = [records[k] for k in (keys if keys is not None else records) if k in records]
    out = []
    for r in chosen:
        if r["status"] != "ok" or (tag is not None and r.get("tag") != tag):
            continue
        path = Path(out_dir) / r["file"]
        if not path.exists():
            raise InputError(f"{path} (the LDOS of record {r['key']} in {Path(out_dir) / RECORDS_NAME}) is missing: "
                             "pass keys= (e.g. those of the plan with its settings) to load the others", field="keys")
        out.append(LDOSSnapshot(tag=r.get("tag", ""), key=r["key"], result=LDOSResult.load(path), record=r))
    return out


def _package_data() -> Path:
    from ..datasets.dft_data import DATA_DIR

    return DATA_DIR


def aluminium_ldos_card(path: str | os.PathLike | None = None) -> dict:
    """The data card of the shipped small aluminium LDOS set: the JSON manifest as a dict
    (``card``: what it is, settings, how it was coarsened, costs; ``snapshots``: one entry per
    file with its tag, key, DFT references and the coarse LDOS's own integrals)."""
    path = Path(path) if path is not None else _package_data() / SHIPPED_LDOS_MANIFEST
    if not path.exists():
        raise InputError("the shipped LDOS set is missing; write it with scripts/generate_ldos.py --small", path=path)
    return _read_tagged_json(path, _MANIFEST_FORMAT, "an LDOS manifest")


def load_aluminium_ldos(tag: str | None = None, path: str | os.PathLike | None = None) -> list[LDOSSnapshot]:
    """The shipped small aluminium LDOS set (needs no GPAW): coarse copies of a few snapshots.

    Made by ``scripts/generate_ldos.py --small`` from the full set (:func:`aluminium_snapshots`,
    :class:`LDOSSettings`): each snapshot on every ``factor``-th grid point (:func:`coarsen`), float32.
    Its data card is :func:`aluminium_ldos_card` (and the README).

    Parameters
    ----------
    tag : {"train", "test", "large"}, optional
        Only the snapshots of this tag (a tag the small set lacks gives an empty list).
    path : path, optional
        Another manifest (its files beside it); default the package's.

    Returns
    -------
    list of LDOSSnapshot
        In the manifest's order.
    """
    _check_tag(tag)
    data = aluminium_ldos_card(path)
    folder = (Path(path) if path is not None else _package_data() / SHIPPED_LDOS_MANIFEST).parent
    return [LDOSSnapshot(tag=e["tag"], key=e["key"], result=LDOSResult.load(folder / e["file"]), record=e)
            for e in data["snapshots"] if tag is None or e["tag"] == tag]


def write_small_set(snapshots: Sequence[LDOSSnapshot], folder: str | os.PathLike, factor: int,
                    energy_factor: int = 1, card: dict | None = None, prefix: str = "al933_ldos_small") -> Path:
    """Write coarse copies of ``snapshots`` and their manifest into ``folder`` (the shipped format).

    Each snapshot is :func:`coarsen`-ed with the smallest stride ≥ ``factor`` that divides its grid
    (a 36³ grid with 4, a 54³ one with 6: the cells of different sizes keep about the same number of
    points), saved as ``<prefix>_<tag><n>.npz`` (float32, compressed, atomically), and listed in
    ``<prefix>.json`` with its tag, key, stride, DFT references, the full grid's checks and the coarse
    grid's own (:func:`ldos_checks`). ``card`` (a dict) is stored as the manifest's ``card`` with the
    sizes added. Returns the manifest's path.
    """
    folder = Path(folder)
    factor = check_whole(factor, "factor", 1)
    entries, counters, total = [], {t: 0 for t in SNAPSHOT_TAGS}, 0
    for snap in snapshots:
        shape = snap.result.grid_shape
        stride = next((k for k in range(factor, max(shape) + 1) if all(n % k == 0 for n in shape)), None)
        if stride is None:
            raise InputError(f"no stride ≥ {factor} divides the grid {shape} of snapshot {snap.key}", field="factor")
        coarse = coarsen(snap.result, stride, energy_factor)
        coarse.ldos = coarse.ldos.astype(np.float32, copy=False)
        name = f"{prefix}_{snap.tag}{counters.get(snap.tag, 0)}.npz"
        counters[snap.tag] = counters.get(snap.tag, 0) + 1
        coarse.save(folder / name)
        size = (folder / name).stat().st_size
        total += size
        rec = snap.record
        entries.append({
            "tag": snap.tag, "key": snap.key, "file": name, "file_bytes": size, "n_atoms": int(len(coarse.numbers)),
            "factor": stride,
            "grid_shape": list(coarse.grid_shape), "full_grid_shape": list(snap.result.grid_shape),
            "n_energies": int(coarse.energies.size),
            "references": {n: float(getattr(coarse, n)) for n in
                           ("e_fermi", "n_electrons", "band_energy", "energy", "free_energy")},
            "full_grid_checks": rec.get("checks") or ldos_checks(snap.result),
            "coarse_grid_checks": ldos_checks(coarse),
            "seconds": rec.get("seconds"), "info": rec.get("info", {}),
        })
    meta = dict(card or {})
    meta.update(factor=factor, energy_factor=energy_factor, total_bytes=total, n_snapshots=len(entries),
                counts={t: sum(e["tag"] == t for e in entries) for t in SNAPSHOT_TAGS})
    path = folder / f"{prefix}.json"
    with atomic_write(path) as fh:
        json.dump({"format": _MANIFEST_FORMAT, "card": meta, "snapshots": entries}, fh, indent=1, sort_keys=True)
    return path

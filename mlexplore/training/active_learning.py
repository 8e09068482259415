"""Active learning of a committee potential: label only the structures the committee disagrees on.

    from mlexplore.descriptors import G2, SymmetryFunctions
    from mlexplore.training import MD, ActiveLearning, Rattle

    sf = SymmetryFunctions([G2(1.0, 2.5), G2(0.5, 3.5)], cutoff=4.5, elements=["Au"])
    learner = ActiveLearning(sf, labeller="emt", explorers=[MD(temperatures=(300, 900)), Rattle()],
                             iterations=5, per_iteration=10, record_dir="al-run")
    learner.fit(labelled, test=test)         # a rerun with the same record_dir resumes
    learner.history_                          # one dict per iteration: labels, RMSEs, uncertainty
    learner.potential_.as_ase_calculator()   # the last committee

**Shape.** scikit-learn's: :class:`ActiveLearning` keeps its parameters as given in ``__init__``
(:meth:`~ActiveLearning.get_params` / :meth:`~ActiveLearning.set_params` read the signature);
:meth:`~ActiveLearning.fit` checks them, runs the loop and returns ``self``; what it learnt ends in
``_`` (``committee_``, ``potential_``, ``labelled_``, ``history_``, ``start_iteration_``).

**The loop.** Iteration 0 trains a :class:`~mlexplore.models.Committee` on the starting set and
scores it. Each iteration ``i = 1 … iterations`` then

1. *explores* with the committee of iteration ``i − 1``: every explorer proposes candidates —
   :class:`Pool` (a fixed set of structures), :class:`Rattle` (labelled structures displaced and
   strained at random), :class:`MD` (ASE Langevin dynamics at given temperatures driven by the
   committee's calculator, snapshots taken every few steps). Candidates already labelled (same
   geometry) are left out;
2. *selects* ``per_iteration`` of them (:func:`select`): the most uncertain by the committee's
   force spread (its largest over the atoms by default; :func:`structure_uncertainty`), kept
   diverse by farthest-point sampling, or at random;
3. *labels* them (``labeller``: ``"emt"``, ``"gpaw"``, an ASE calculator, a function, or
   ``"stored"``: the labels a labelled pool already carries);
4. *retrains* the committee on everything labelled — from scratch (the same initial weights every
   iteration; default) or, with ``warm_start``, from the previous weights (keeping iteration 0's
   feature and energy normalisation);
5. *scores* it on ``test``: energy RMSE (meV/atom) and force RMSE (eV/Å, per component) with the
   number of labels.

**Records and resuming** (``record_dir``): ``labels.jsonl`` gets one line per labelled structure as
it is labelled (geometry, energy, forces, iteration, source; or a failure, never retried),
``iterations.jsonl`` one line per finished iteration (its scores), ``models/iteration_NNN.pt``
that iteration's committee (:func:`~mlexplore.training.load_model`), ``labelled.xyz`` the whole
training set so far (rewritten atomically) and ``run.json`` the settings and a fingerprint of the
data. Lines are appended with :func:`mlexplore.io.append_line` (durable; a torn last line is
dropped). A rerun with the same directory loads the last finished iteration's committee and goes
on after it; structures labelled by an iteration that did not finish are kept and count towards
its ``per_iteration``, so nothing is labelled twice. A directory of another run (other data or
settings, ``iterations`` and ``device`` aside) is refused.

The selection follows query-by-committee (Seung, Opper & Sompolinsky 1992) as used for
neural-network potentials by Artrith & Behler, *PRB* 85, 045439 (2012) and Smith et al.,
*J. Chem. Phys.* 148, 241733 (2018); the diversity step is farthest-point sampling
(Gonzalez 1985; Imbalzano et al., *J. Chem. Phys.* 148, 241730 (2018)).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from ..data.dataset import StructureDataset, Structures
from ..data.splits import check_seed
from ..descriptors.config import descriptor_to_config
from ..descriptors.presets import resolve_basis
from ..descriptors.symmetry import SymmetryFunctions
from ..errors import InputError, check_positive, check_whole
from ..io.extxyz import write_extxyz
from ..io.files import append_line, atomic_write
from ..models.committee import Committee
from .checkpoint import load_model, save_model
from .committee import RESAMPLING, fit_committee
from .engine import DEFAULTS, resolve_device
from .potential import Potential

__all__ = ["ActiveLearning", "Pool", "Rattle", "MD", "DFTLabeller", "select", "structure_uncertainty", "structure_keys",
           "format_iteration", "STRATEGIES", "REDUCTIONS", "DIVERSITY", "LABELLERS", "EXPLORERS"]

#: selection strategies of :func:`select`
STRATEGIES = ("uncertainty", "random")
#: the uncertainty of a structure (:func:`structure_uncertainty`): its atoms' largest or mean force spread, or
#: its energy spread per atom
REDUCTIONS = ("max", "mean", "energy")
#: what the farthest-point step of the selection counts distances from (:class:`ActiveLearning`)
DIVERSITY = ("labelled", "picked")
#: labellers by name (see :class:`ActiveLearning`)
LABELLERS = ("emt", "gpaw", "stored")
_RECORD_FORMAT = "mlexplore-active-learning"


# --------------------------------------------------------------------------------------- helpers
def _bare(numbers: np.ndarray, positions: np.ndarray, cells: np.ndarray, pbc: np.ndarray, n_atoms: np.ndarray,
          sources: Sequence[str]) -> StructureDataset:
    """Unlabelled structures (what the explorers return), each with its ``meta["source"]``."""
    return StructureDataset(numbers, positions, cells, pbc, n_atoms, meta=[{"source": s} for s in sources],
                            name="candidates")


def _geometry_of(ds: StructureDataset, sources: Sequence[str] | None = None) -> StructureDataset:
    return _bare(ds.numbers, ds.positions, ds.cells, ds.pbc, ds.n_atoms,
                 sources if sources is not None else [m.get("source", "") for m in ds.meta])


def structure_keys(structures: Structures) -> list[str]:
    """The identity of each structure (24 hex digits of a SHA-256 of its atomic numbers, positions
    rounded to 10⁻⁸ Å, cell and periodicity): the same geometry gives the same key."""
    ds = StructureDataset.coerce(structures, "structures")
    pos = np.round(ds.positions, 8) + 0.0  # (+0.0: no -0.0)
    cells = np.round(ds.cells, 8) + 0.0
    keys = []
    for i in range(len(ds)):  # one hash per structure (the rounding above is vectorised)
        sl = ds.atom_slice(i)
        h = hashlib.sha256(ds.numbers[sl].tobytes())
        h.update(pos[sl].tobytes())
        h.update(cells[i].tobytes())
        h.update(ds.pbc[i].tobytes())
        keys.append(h.hexdigest()[:24])
    return keys


def _fingerprint(ds: StructureDataset | None) -> str | None:
    if ds is None:
        return None
    h = hashlib.sha256()
    for arr in (ds.numbers, ds.positions, ds.cells, ds.pbc, ds.n_atoms):
        h.update(np.ascontiguousarray(arr).tobytes())
    for name in ("energy", "forces"):
        if name in ds:
            h.update(np.ascontiguousarray(ds.label(name), dtype=np.float64).tobytes())
    return h.hexdigest()[:24]


def _core(ds: StructureDataset, targets: Sequence[str]) -> StructureDataset:
    """``ds`` with only the training labels (so that sets from different labellers join)."""
    return StructureDataset(ds.numbers, ds.positions, ds.cells, ds.pbc, ds.n_atoms,
                            structure_labels={"energy": ds.label("energy")},
                            atom_labels={"forces": ds.label("forces")} if "forces" in targets else {},
                            tags=ds.tags, meta=ds.meta, name=ds.name)


# ------------------------------------------------------------------------------------- explorers
class Pool:
    """Candidates from a fixed set of structures (a dataset, an ``Atoms`` or a list of them).

    Its structures are offered every iteration until they are labelled; with
    ``labeller="stored"`` the labels they carry (``energy``, ``forces``) are used.
    """

    def __init__(self, structures: Structures) -> None:
        self.structures = structures

    def _data(self) -> StructureDataset:
        ds = StructureDataset.coerce(self.structures, "pool")
        if len(ds) == 0:
            raise InputError("the pool is empty", field="pool")
        return ds

    def explore(self, labelled: StructureDataset, potential: Potential, rng: np.random.Generator) -> StructureDataset:
        ds = self._data()
        out = ds.select(slice(None))
        out.meta = [{**m, "source": f"pool {i}"} for i, m in enumerate(ds.meta)]
        return out

    def describe(self) -> dict:
        return {"kind": "pool", "structures": _fingerprint(self._data())}


class Rattle:
    """Labelled structures with random displacements and strains.

    ``n_candidates`` structures are drawn from the labelled set (with replacement); every atom is
    displaced by a Gaussian of standard deviation ``stdev`` (Å, per component) and each structure
    deformed by ``I + ε`` with ``ε`` a random symmetric matrix of entries uniform in
    ``±strain`` (cell and positions; a cluster is scaled about the origin). Vectorised over atoms.
    """

    def __init__(self, n_candidates: int = 32, stdev: float = 0.05, strain: float = 0.02) -> None:
        self.n_candidates, self.stdev, self.strain = n_candidates, stdev, strain

    def explore(self, labelled: StructureDataset, potential: Potential, rng: np.random.Generator) -> StructureDataset:
        n = check_whole(self.n_candidates, "n_candidates", 1)
        stdev, strain = check_positive(self.stdev, "stdev", zero=True), check_positive(self.strain, "strain", zero=True)
        start = rng.integers(0, len(labelled), n)
        base = labelled.select(start)
        eps = rng.uniform(-strain, strain, (n, 3, 3))
        deform = np.eye(3) + (eps + eps.transpose(0, 2, 1)) / 2  # (n, 3, 3)
        pos = base.positions + rng.normal(0.0, stdev, base.positions.shape)
        pos = np.einsum("ai,aij->aj", pos, deform[base.structure_index])
        keys = structure_keys(base)
        return _bare(base.numbers, pos, base.cells @ deform, base.pbc, base.n_atoms,
                     [f"rattle of {k}" for k in keys])

    def describe(self) -> dict:
        return {"kind": "rattle", "n_candidates": self.n_candidates, "stdev": self.stdev, "strain": self.strain}


class MD:
    """Langevin dynamics (ASE) driven by the committee's calculator, from labelled structures.

    For each temperature (K), ``n_starts`` labelled structures are drawn; each gets Maxwell-Boltzmann
    momenta at that temperature and runs ``steps`` steps of ``timestep`` fs with friction
    ``friction`` (1/fs); a snapshot is taken every ``interval`` steps (the first, step 0, is the
    labelled structure itself and is dropped as already labelled). A run that drives atoms onto
    each other (the calculator's structure check) stops there and keeps its snapshots so far.
    Steps are sequential (ASE), the forces of each step one batched committee pass.
    """

    def __init__(self, temperatures: Sequence[float] = (300.0, 1000.0), n_starts: int = 2, steps: int = 40,
                 interval: int = 10, timestep: float = 2.0, friction: float = 0.02) -> None:
        self.temperatures, self.n_starts, self.steps = temperatures, n_starts, steps
        self.interval, self.timestep, self.friction = interval, timestep, friction

    def explore(self, labelled: StructureDataset, potential: Potential, rng: np.random.Generator) -> StructureDataset:
        from ase.md.langevin import Langevin

        temps = np.atleast_1d(np.asarray(self.temperatures, dtype=float))
        if temps.size == 0 or not np.all(np.isfinite(temps) & (temps > 0)):
            raise InputError(f"temperatures must be positive numbers (K), got {self.temperatures!r}",
                             field="temperatures")
        n_starts, steps = check_whole(self.n_starts, "n_starts", 1), check_whole(self.steps, "steps", 1)
        interval = check_whole(self.interval, "interval", 1)
        dt, friction = check_positive(self.timestep, "timestep"), check_positive(self.friction, "friction")
        calc = potential.as_ase_calculator()
        frames, sources = [], []
        for T in temps:
            for i in rng.integers(0, len(labelled), n_starts):
                atoms = Atoms(labelled.numbers[labelled.atom_slice(i)], labelled.positions[labelled.atom_slice(i)],
                              cell=labelled.cells[i], pbc=labelled.pbc[i])
                atoms.calc = calc
                kT = units.kB * T  # Maxwell-Boltzmann momenta, sqrt(m kT) per component (vectorised)
                atoms.set_momenta(rng.standard_normal((len(atoms), 3)) * np.sqrt(atoms.get_masses() * kT)[:, None])
                dyn = Langevin(atoms, dt * units.fs, temperature_K=T, friction=friction / units.fs, fixcm=False,
                               rng=rng)
                origin = f"md {T:g} K from structure {int(labelled.ids[i])}"

                def snapshot(atoms=atoms, origin=origin, dyn=dyn):
                    frames.append(atoms.copy())
                    sources.append(f"{origin}, step {dyn.nsteps}")

                dyn.attach(snapshot, interval=interval)
                try:
                    dyn.run(steps)
                except InputError:  # atoms driven onto each other: keep the snapshots so far
                    pass
        if not frames:
            return _bare(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0), [])
        return _bare(np.concatenate([f.numbers for f in frames]), np.concatenate([f.positions for f in frames]),
                     np.array([f.cell.array for f in frames]), np.array([f.pbc for f in frames]),
                     np.array([len(f) for f in frames]), sources)

    def describe(self) -> dict:
        return {"kind": "md", "temperatures": [float(t) for t in np.atleast_1d(self.temperatures)],
                "n_starts": self.n_starts, "steps": self.steps, "interval": self.interval,
                "timestep": self.timestep, "friction": self.friction}


#: explorers by name (their default settings), for ``explorers="md,rattle"``
EXPLORERS: dict[str, type] = {"md": MD, "rattle": Rattle}


def _explorers(spec: Any) -> list:
    """``explorers`` as a list of explorer objects: names (``"md,rattle"``), explorer objects,
    structures (a pool) or a list of these."""
    if isinstance(spec, (str, StructureDataset, Atoms)) or hasattr(spec, "explore"):
        items = [spec]
    else:
        items = list(spec or [])
        if items and all(isinstance(a, Atoms) for a in items):  # a list of structures: one pool
            items = [items]
    items = [name.strip() for item in items if isinstance(item, str) for name in item.split(",") if name.strip()] + \
        [item for item in items if not isinstance(item, str)]
    out = []
    for item in items:
        if isinstance(item, str):
            name = item.strip()
            if name == "pool":
                raise InputError("a pool is given as structures (explorers=[dataset] or Pool(dataset); --pool FILE)",
                                 field="explorers")
            if name not in EXPLORERS:
                raise InputError(f"unknown explorer {name!r}; choose from {', '.join(EXPLORERS)}, a Pool of "
                                 "structures, or an object with explore(labelled, potential, rng)", field="explorers")
            out.append(EXPLORERS[name]())
        elif hasattr(item, "explore"):
            out.append(item)
        else:
            out.append(Pool(item))
    if not out:
        raise InputError("no explorer: give a pool of structures and/or 'md', 'rattle'", field="explorers")
    return out


# ------------------------------------------------------------------------------------- selection
def structure_uncertainty(candidates: Structures, predictions: dict[str, np.ndarray],
                          reduce: str = "max") -> np.ndarray:
    """The committee's uncertainty of each structure, ``(n,)``.

    Per atom, the force spread ``σ_a = √(⅓ Σ_c σ²_{a,c})`` (eV/Å; the RMS over the three
    components of ``predictions["forces_std"]``); per structure its maximum over the atoms
    (``reduce="max"``, default: one badly described atom is enough to want the structure) or its
    mean (``"mean"``). ``reduce="energy"``, or predictions without ``forces_std``: the committee's
    energy spread per atom, ``energy_std / n_atoms`` (eV/atom).
    """
    if reduce not in REDUCTIONS:
        raise InputError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}", field="uncertainty")
    ds = StructureDataset.coerce(candidates, "candidates")
    if reduce == "energy" or "forces_std" not in predictions:
        if "energy_std" not in predictions:
            raise InputError("the predictions have no committee spread (forces_std or energy_std): predict with "
                             "a Committee", field="predictions")
        return np.asarray(predictions["energy_std"], dtype=float) / ds.n_atoms
    std = np.asarray(predictions["forces_std"], dtype=float).reshape(-1, 3)
    if len(std) != ds.n_total_atoms:
        raise InputError(f"forces_std has {len(std)} atoms, the candidates {ds.n_total_atoms}", field="predictions")
    per_atom = np.sqrt(np.mean(std ** 2, axis=1))
    starts = ds.offsets[:-1]
    if reduce == "max":
        return np.maximum.reduceat(per_atom, starts) if len(per_atom) else np.zeros(len(ds))
    return np.add.reduceat(per_atom, starts) / ds.n_atoms


def _structure_features(ds: StructureDataset, features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=float)
    if f.ndim != 2 or len(f) not in (len(ds), ds.n_total_atoms):
        raise InputError(f"features must have one row per structure ({len(ds)}) or per atom ({ds.n_total_atoms}), "
                         f"got shape {f.shape}", field="features")
    if len(f) == ds.n_total_atoms and len(f) != len(ds):
        f = np.add.reduceat(f, ds.offsets[:-1], axis=0) / ds.n_atoms[:, None]
    return f


def select(candidates: Structures, predictions: dict[str, np.ndarray], k: int, strategy: str = "uncertainty", *,
           features: np.ndarray | None = None, top: int | None = None, reduce: str = "max",
           seed: int = 0, labelled_features: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` candidates to label, in the order they were picked.

    ``strategy="uncertainty"``: the ``top`` candidates with the largest
    :func:`structure_uncertainty` (default ``min(n, 4k)``) are the shortlist; the most uncertain
    is picked first, then repeatedly the one farthest from everything picked (farthest-point
    sampling) in the space of the structures' mean features, each feature standardised over the
    candidates. So a cluster of near-duplicates of one uncertain structure yields one pick, not
    ``k``. ``features``: ``(N_atoms, F)`` per atom (averaged per structure) or ``(n, F)``; None:
    ``predictions["features"]`` when present, else no diversity step (the ``k`` most uncertain).
    ``labelled_features``: the mean features of the structures labelled already, ``(n_l, F)``:
    then the distances count from them too (greedy k-centre, the core-set rule of Sener & Savarese,
    ICLR 2018): the first pick is the shortlisted candidate farthest from everything labelled, and
    an uncertain candidate next to a labelled structure comes last.
    ``strategy="random"``: ``k`` distinct candidates drawn with ``seed``.

    Fewer than ``k`` candidates: all of them.
    """
    ds = StructureDataset.coerce(candidates, "candidates")
    k = check_whole(k, "k", 1)
    seed = check_seed(seed)
    if strategy not in STRATEGIES:
        raise InputError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}", field="strategy")
    n = len(ds)
    if strategy == "random":
        return np.random.default_rng(seed).choice(n, size=min(k, n), replace=False)
    u = structure_uncertainty(ds, predictions, reduce)
    order = np.argsort(-u, kind="stable")
    m = min(n, 4 * k) if top is None else min(n, check_whole(top, "top", 1))
    if m < min(k, n):
        raise InputError(f"top ({top}) must be at least k ({k})", field="top")
    short = order[:m]
    if features is None:
        features = predictions.get("features")
    if features is None or k >= m:
        return short[:k]
    f = _structure_features(ds, features)
    known = None
    if labelled_features is not None:
        known = np.asarray(labelled_features, dtype=float)
        if known.ndim != 2 or known.shape[1] != f.shape[1]:
            raise InputError(f"labelled_features must have shape (n, {f.shape[1]}), got {known.shape}",
                             field="labelled_features")
    both = f if known is None or not len(known) else np.concatenate([f, known])
    shift, scale = both.mean(axis=0), both.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    x = (f[short] - shift) / scale  # (m, F), the most uncertain first
    if known is not None and len(known):
        z = (known - shift) / scale
        nearest = np.sqrt(np.maximum(((x ** 2).sum(1)[:, None] - 2 * x @ z.T + (z ** 2).sum(1)[None]), 0)).min(1)
        first = int(np.argmax(nearest))
    else:
        nearest, first = np.full(len(x), np.inf), 0
    picked = [first]
    nearest = np.minimum(nearest, np.linalg.norm(x - x[first], axis=1))
    nearest[picked] = -1.0
    for _ in range(min(k, m) - 1):  # k steps, each vectorised over the shortlist
        nxt = int(np.argmax(nearest))
        picked.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[nxt], axis=1))
        nearest[picked] = -1.0
    return short[np.array(picked)]


# -------------------------------------------------------------------------------------- labellers
def _emt_label(images: list[Atoms]) -> list[Atoms]:
    from ..datasets.emt import FastEMT

    return _calculator_label(images, FastEMT())


def _calculator_label(images: list[Atoms], calc: Any) -> list[Atoms]:
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for atoms in images:
        work = atoms.copy()
        work.calc = calc
        energy, forces = float(work.get_potential_energy()), work.get_forces().copy()
        work.calc = SinglePointCalculator(work, energy=energy, forces=forces)
        out.append(work)
    return out


class DFTLabeller:
    """A labeller that runs DFT through :func:`mlexplore.dft.label`, resumably.

    ``out``: its record file (``labeller="gpaw"`` uses ``record_dir/dft.jsonl``): a configuration
    computed before, by this run or an interrupted one, is read back instead of computed again.
    ``settings``: :class:`~mlexplore.dft.DFTSettings` (default PBE, 350 eV); ``calculator``: the
    factory ``(settings, atoms, kpts, txt) -> ASE calculator`` (default GPAW, which needs
    ``mlexplore[dft]``). A configuration whose SCF fails is ``None`` (recorded, never retried).
    """

    def __init__(self, out: str | os.PathLike, settings: Any = None, calculator: Callable | None = None) -> None:
        self.out, self.settings, self.calculator = Path(out), settings, calculator

    def check(self) -> None:
        """Refuse, before any work, a GPAW run without GPAW."""
        import importlib.util

        if self.calculator is None and importlib.util.find_spec("gpaw") is None:
            raise ImportError("GPAW is not installed: install the extra mlexplore[dft] with scripts/install_gpaw.sh "
                              "(or label with 'emt', an ASE calculator or a function)")

    def __call__(self, images: list[Atoms]) -> list[Atoms | None]:
        from ase.calculators.singlepoint import SinglePointCalculator

        from ..dft import DFTSettings, label

        settings = self.settings or DFTSettings()
        try:
            ds = label(images, self.out, settings=settings, calculator=self.calculator, progress=False)
        except InputError:  # no configuration succeeded
            return [None] * len(images)
        done = {m["key"]: i for i, m in enumerate(ds.meta)}
        out: list[Atoms | None] = []
        for atoms in images:
            j = done.get(settings.key(atoms))
            if j is None:
                out.append(None)
                continue
            a = atoms.copy()
            a.calc = SinglePointCalculator(a, energy=float(ds.label("energy")[j]),
                                           forces=ds.label("forces")[ds.atom_slice(j)])
            out.append(a)
        return out


def _labeller(labeller: Any, record_dir: Path | None) -> Callable[[list[Atoms]], list[Atoms | None]] | None:
    """The labeller as ``f(list[Atoms]) -> list[Atoms | None]``; None for ``"stored"``."""
    from ase.calculators.calculator import BaseCalculator

    if isinstance(labeller, str):
        if labeller == "emt":
            return _emt_label
        if labeller == "stored":
            return None
        if labeller == "gpaw":
            if record_dir is None:
                raise InputError("labeller='gpaw' keeps its DFT records in record_dir/dft.jsonl: give a record_dir",
                                 field="record_dir")
            labeller = DFTLabeller(record_dir / "dft.jsonl")
            labeller.check()
            return labeller
        raise InputError(f"unknown labeller {labeller!r}; choose from {', '.join(LABELLERS)}, an ASE calculator or "
                         "a function(list of Atoms) -> list of labelled Atoms", field="labeller")
    if isinstance(labeller, DFTLabeller):
        labeller.check()
        return labeller
    if isinstance(labeller, BaseCalculator):
        return lambda images: _calculator_label(images, labeller)
    if callable(labeller):
        return labeller
    raise InputError(f"labeller must be a name ({', '.join(LABELLERS)}), an ASE calculator or a function, got "
                     f"{type(labeller).__name__}", field="labeller")


def _labels_of(atoms: Any, reference: StructureDataset, j: int, need_forces: bool) -> tuple[float, np.ndarray | None]:
    """Energy and forces a labeller returned for candidate ``j`` (checked against its geometry)."""
    if not isinstance(atoms, Atoms):
        raise InputError(f"the labeller returned a {type(atoms).__name__} for candidate {j}, not an ase.Atoms",
                         field="labeller")
    n = int(reference.n_atoms[j])
    if len(atoms) != n or not np.array_equal(atoms.numbers, reference.numbers[reference.atom_slice(j)]):
        raise InputError(f"the labeller returned other atoms for candidate {j} ({len(atoms)} atoms, expected {n})",
                         field="labeller")
    if atoms.calc is None:
        raise InputError(f"the labeller returned candidate {j} without a calculator holding its energy",
                         field="labeller")
    energy = float(atoms.get_potential_energy())
    forces = np.asarray(atoms.get_forces(), dtype=float).reshape(n, 3) if need_forces else None
    if not np.isfinite(energy) or (forces is not None and not np.all(np.isfinite(forces))):
        raise InputError(f"the labeller returned non-finite labels for candidate {j}", field="labeller")
    return energy, forces


# -------------------------------------------------------------------------------------- the loop
def format_iteration(record: dict) -> str:
    """One line for an iteration's record: labels, test RMSEs, the selected structures' spread."""
    parts = [f"iteration {record['iteration']}: {record['n_labels']} labels (+{record['n_added']})"]
    if record.get("energy_rmse") is not None:
        parts.append(f"energy RMSE {record['energy_rmse']:.2f} meV/atom")
    if record.get("forces_rmse") is not None:
        parts.append(f"force RMSE {record['forces_rmse']:.3f} eV/Å")
    if record.get("selected_uncertainty") is not None:
        parts.append(f"σ of the selected {record['selected_uncertainty']:.3f} (of {record['n_candidates']} "
                     "candidates)")
    return ", ".join(parts) + f" [{record['seconds']:.1f} s]"


class ActiveLearning:
    """Active learning of a committee of BP potentials (see the module's docstring for the loop).

    Parameters
    ----------
    descriptor:
        The members' :class:`~mlexplore.descriptors.SymmetryFunctions`, or a preset name.
    labeller:
        ``"emt"`` (ASE's EMT, for the built-in sets and tests), ``"gpaw"`` (DFT with
        :func:`mlexplore.dft.label`, default :class:`~mlexplore.dft.DFTSettings`; records in
        ``record_dir/dft.jsonl``; needs GPAW), ``"stored"`` (the labels the candidates carry: a
        labelled pool, retrospective active learning), a :class:`DFTLabeller`, an ASE calculator
        (e.g. ``EMT()``), or a function ``f(list[Atoms]) -> list[Atoms]`` returning the structures
        with their energy (and forces) in a calculator (a ``SinglePointCalculator``), ``None`` for
        one it could not label (recorded as failed, never asked for again).
    explorers:
        Where candidates come from: names (``"md,rattle"``; default settings), :class:`Pool`,
        :class:`Rattle`, :class:`MD` objects, structures (taken as a :class:`Pool`), or a list of
        these. Anything with ``explore(labelled, potential, rng) -> StructureDataset`` works.
    iterations:
        Rounds of explore → select → label → retrain after iteration 0 (which trains on the
        starting set only).
    per_iteration:
        Structures labelled per round (``k``).
    strategy, uncertainty, top:
        The selection (:func:`select`): ``"uncertainty"`` or ``"random"``; the reduction over atoms
        (``"max"`` or ``"mean"`` force spread, or ``"energy"``: the energy spread per atom;
        :func:`structure_uncertainty`); the shortlist size for the
        farthest-point step (None: ``4 · per_iteration``).
    diversity:
        What the farthest-point step measures distances from (:func:`select`): ``"labelled"``
        (default) everything labelled so far and the picks — the shortlist's candidates least like
        the training set come first —; ``"picked"``: the picks of this round only.
    n_members, hidden, resample:
        The :class:`~mlexplore.models.Committee` (members, hidden layers) and
        :func:`~mlexplore.training.fit_committee`'s resampling (``"bootstrap"`` or ``"none"``).
    epochs, lr, batch_size, force_weight:
        Training of every member each iteration (:func:`~mlexplore.training.fit`; no validation
        split: a fixed number of epochs, the weights of the lowest training loss kept).
    warm_start:
        Retrain from the previous iteration's weights (and normalisation) instead of from scratch.
    record_dir:
        The record directory (see the module's docstring); None: nothing is written, no resuming.
    device:
        Where training, prediction and MD run (``"auto"``: CUDA when present).
    seed:
        Seeds the members' initial weights and batch orders, the explorers and the random strategy
        (iteration ``i`` explores with ``numpy.random.default_rng([seed, i])``).
    progress:
        A progress bar over the iterations.
    callback:
        Called with each finished iteration's record (after it is written); returning ``False``
        stops the loop.

    Attributes
    ----------
    committee_ : Committee
        The last iteration's committee.
    potential_ : Potential
        A :class:`~mlexplore.training.Potential` over it.
    labelled_ : StructureDataset
        The starting set and everything labelled since (``energy``, ``forces``); ``meta["source"]``
        says where each labelled structure came from.
    history_ : list of dict
        One record per finished iteration (this call's and those resumed from the records):
        ``iteration``, ``n_labels``, ``n_added``, ``n_candidates``, ``energy_rmse`` (meV/atom),
        ``forces_rmse`` (eV/Å), ``selected_uncertainty`` and ``max_uncertainty`` (eV/Å, the mean
        and largest :func:`structure_uncertainty` of the selected), ``seconds``, ``keys``.
    start_iteration_ : int
        The first iteration this call ran (0 for a new run; after a resume, the one after the
        last recorded).
    n_labelled_ : int
        Structures this call sent to the labeller.
    """

    def __init__(self, descriptor: SymmetryFunctions | str, labeller: Any = "emt", explorers: Any = "rattle",
                 iterations: int = 5, per_iteration: int = 10, strategy: str = "uncertainty",
                 uncertainty: str = "max", top: int | None = None, diversity: str = "labelled", n_members: int = 4,
                 hidden: Sequence[int] = (16, 16), resample: str = "bootstrap", epochs: int = 100,
                 lr: float = 3e-3, batch_size: int = DEFAULTS["potential"].batch_size, force_weight: float = 1.0,
                 warm_start: bool = False, record_dir: str | os.PathLike | None = None, device: Any = "auto",
                 seed: int = 0, progress: bool = True, callback: Callable[[dict], Any] | None = None) -> None:
        self.descriptor, self.labeller, self.explorers = descriptor, labeller, explorers
        self.iterations, self.per_iteration, self.strategy = iterations, per_iteration, strategy
        self.uncertainty, self.top, self.n_members, self.hidden = uncertainty, top, n_members, hidden
        self.diversity = diversity
        self.resample, self.epochs, self.lr, self.batch_size = resample, epochs, lr, batch_size
        self.force_weight, self.warm_start, self.record_dir = force_weight, warm_start, record_dir
        self.device, self.seed, self.progress, self.callback = device, seed, progress, callback

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """The parameters, as given (names from the ``__init__`` signature)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "ActiveLearning":
        """Change parameters by name; an unknown name is an :class:`InputError`."""
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise InputError(f"unknown parameter(s) {', '.join(unknown)}; ActiveLearning takes "
                             f"{', '.join(self._param_names())}", field=unknown[0])
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def _check(self) -> None:
        check_whole(self.iterations, "iterations", 0)
        check_whole(self.per_iteration, "per_iteration", 1)
        check_whole(self.n_members, "n_members", 1)
        check_whole(self.epochs, "epochs", 1)
        check_whole(self.batch_size, "batch_size", 1)
        check_seed(self.seed)
        check_positive(self.lr, "lr")
        check_positive(self.force_weight, "force_weight", zero=True)
        if self.strategy not in STRATEGIES:
            raise InputError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}",
                             field="strategy")
        if self.diversity not in DIVERSITY:
            raise InputError(f"diversity must be one of {', '.join(DIVERSITY)}, got {self.diversity!r}",
                             field="diversity")
        if self.uncertainty not in REDUCTIONS:
            raise InputError(f"uncertainty must be one of {', '.join(REDUCTIONS)}, got {self.uncertainty!r}",
                             field="uncertainty")
        if self.strategy == "uncertainty" and self.n_members < 2:
            raise InputError("selection by uncertainty needs a committee of ≥ 2 members (one member has no "
                             "spread)", field="n_members")
        if self.top is not None and check_whole(self.top, "top", 1) < self.per_iteration:
            raise InputError(f"top ({self.top}) must be at least per_iteration ({self.per_iteration})", field="top")
        if self.resample not in RESAMPLING:
            raise InputError(f"resample must be one of {', '.join(RESAMPLING)}, got {self.resample!r}",
                             field="resample")
        hidden = [self.hidden] if isinstance(self.hidden, (int, np.integer)) else list(self.hidden)
        for h in hidden:
            check_whole(h, "hidden", 1)

    def _settings(self, explorers: list) -> dict:
        """What defines a run (the record directory's identity): not iterations, device, progress."""
        labeller = self.labeller if isinstance(self.labeller, str) else type(self.labeller).__name__
        return {"descriptor": descriptor_to_config(self.descriptor_), "labeller": labeller,
                "explorers": [e.describe() if hasattr(e, "describe") else type(e).__name__ for e in explorers],
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()
                   if k in ("per_iteration", "strategy", "uncertainty", "top", "diversity", "n_members", "hidden",
                            "resample",
                            "epochs", "lr", "batch_size", "force_weight", "warm_start", "seed")}}

    # ------------------------------------------------------------------ training
    def _train(self, labelled: StructureDataset, previous: Committee | None) -> Committee:
        hidden = (self.hidden,) if isinstance(self.hidden, (int, np.integer)) else tuple(self.hidden)
        warm = self.warm_start and previous is not None
        committee = previous if warm else Committee(self.descriptor_, n_members=self.n_members, seed=self.seed,
                                                    hidden=hidden)
        fit_committee(committee, labelled, None, resample=self.resample, seed=self.seed, targets=self.targets_,
                      loss_weights={"forces": self.force_weight} if "forces" in self.targets_ else None,
                      epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, patience=None,
                      device=self.device_, normalise=not warm)
        return committee

    def _potential(self, committee: Committee) -> Potential:
        return Potential(committee, device=self.device_, extrapolation="ignore")

    def _score(self, committee: Committee, test: StructureDataset | None) -> dict:
        if test is None:
            return {"energy_rmse": None, "forces_rmse": None}
        forces = "forces" in test and "forces" in self.targets_
        pred = self._potential(committee).predict(test, forces=forces)
        e = (pred["energy"] - test.label("energy")) / test.n_atoms
        out = {"energy_rmse": float(np.sqrt(np.mean(e ** 2))) * 1000.0, "forces_rmse": None}
        if forces:
            out["forces_rmse"] = float(np.sqrt(np.mean((pred["forces"] - test.label("forces")) ** 2)))
        return out

    # ------------------------------------------------------------------ records
    def _start_records(self, settings: dict, data: StructureDataset, test: StructureDataset | None) -> None:
        d = self.record_dir_
        if d is None:
            return
        if d.exists() and not d.is_dir():
            raise InputError("is a file; record_dir wants a directory", path=d)
        run = {"format": _RECORD_FORMAT, "version": 1, "settings": settings, "data": _fingerprint(data),
               "test": _fingerprint(test)}
        path = d / "run.json"
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError("is not an active-learning run record (damaged JSON)", path=path) from None
            old = json.loads(json.dumps(old))
            new = json.loads(json.dumps(run))
            if old != new:
                what = [k for k in ("data", "test") if old.get(k) != new[k]] + sorted(
                    k for k in set(old.get("settings", {})) | set(new["settings"])
                    if old.get("settings", {}).get(k) != new["settings"].get(k))
                raise InputError(f"holds a run with other {', '.join(what) or 'records'}; give a new record_dir "
                                 "(or the same data and settings to resume)", path=d)
            return
        with atomic_write(path) as fh:
            fh.write(json.dumps(run, indent=1, sort_keys=True) + "\n")

    def _append(self, name: str, record: dict) -> None:
        if self.record_dir_ is not None:
            from ..dft.records import append_record

            append_record(self.record_dir_ / name, record)

    def _read(self, name: str) -> list[dict]:
        if self.record_dir_ is None:
            return []
        from ..dft.records import read_records

        return read_records(self.record_dir_ / name)

    def _labelled_from(self, records: list[dict]) -> StructureDataset | None:
        ok = [r for r in records if r["status"] == "ok"]
        if not ok:
            return None
        n = len(ok)
        forces = "forces" in self.targets_
        return StructureDataset(
            numbers=np.concatenate([r["numbers"] for r in ok]),
            positions=np.concatenate([np.asarray(r["positions"], float).reshape(-1, 3) for r in ok]),
            cells=np.array([r["cell"] for r in ok], float).reshape(n, 3, 3),
            pbc=np.array([r["pbc"] for r in ok], bool).reshape(n, 3), n_atoms=[len(r["numbers"]) for r in ok],
            structure_labels={"energy": np.array([r["energy"] for r in ok], float)},
            atom_labels={"forces": np.concatenate([np.asarray(r["forces"], float).reshape(-1, 3) for r in ok])}
            if forces else {},
            tags=[("active-learning",)] * n,
            meta=[{"source": r["source"], "key": r["key"], "iteration": r["iteration"]} for r in ok])

    def _model_path(self, i: int) -> Path | None:
        return None if self.record_dir_ is None else self.record_dir_ / "models" / f"iteration_{i:03d}.pt"

    def _finish(self, i: int, record: dict) -> bool:
        """Write iteration ``i``'s model, training set and record; call the callback. False: stop."""
        if self.record_dir_ is not None:
            save_model(self.committee_, self._model_path(i), extra={"active_learning": record})
            write_extxyz(self.labelled_, self.record_dir_ / "labelled.xyz")
            append_line(self.record_dir_ / "iterations.jsonl", json.dumps(record, sort_keys=True))
        self.history_.append(record)
        return not (self.callback is not None and self.callback(record) is False)

    # ------------------------------------------------------------------ fit
    def fit(self, data: Structures, test: Structures | None = None) -> "ActiveLearning":
        """Run (or resume) the loop from the labelled structures ``data`` (``energy``; ``forces``
        when the potential is to be trained on them), scoring every iteration on ``test``."""
        from tqdm.auto import tqdm

        self._check()
        data = StructureDataset.coerce(data, "data")
        test = None if test is None else StructureDataset.coerce(test, "test")
        if "energy" not in data.structure_labels:
            raise InputError("the starting set has no per-structure 'energy' label", field="data")
        if test is not None and "energy" not in test.structure_labels:
            raise InputError("the test set has no per-structure 'energy' label", field="test")
        self.targets_ = ("energy", "forces") if "forces" in data.atom_labels else ("energy",)
        self.device_ = resolve_device(self.device)
        self.descriptor_ = resolve_basis(self.descriptor, data.elements)
        if self.descriptor_.spin:
            raise InputError("the descriptor has spin terms; active learning drives MD and labellers without "
                             "moments: choose a basis without them", field="descriptor")
        explorers = _explorers(self.explorers)
        self.record_dir_ = None if self.record_dir is None else Path(self.record_dir)
        label_fn = _labeller(self.labeller, self.record_dir_)
        settings = self._settings(explorers)  # (checks the explorers can describe themselves)
        self._start_records(settings, data, test)

        # what the records hold: finished iterations 0 … last, and the labels
        done = {}
        for r in self._read("iterations.jsonl"):
            done[int(r["iteration"])] = r
        last = -1
        while last + 1 in done:
            last += 1
        labels = self._read("labels.jsonl")
        kept = [r for r in labels if r["iteration"] <= last]
        pending = [r for r in labels if r["iteration"] == last + 1 and r["iteration"] >= 1]
        self.history_ = [done[i] for i in range(last + 1)]
        self.n_labelled_ = 0
        start = self._core_start(data)
        added = self._labelled_from(kept)
        self.labelled_ = start if added is None else StructureDataset.concatenate([start, added], name=start.name)
        self.committee_ = None
        if last >= 0:
            path = self._model_path(last)
            if not path.exists():
                raise InputError(f"iteration {last} is recorded but its committee is missing; the run cannot be "
                                 "resumed from this directory", path=path)
            self.committee_ = load_model(path, map_location=self.device_)
        self.start_iteration_ = last + 1
        known = set(structure_keys(self.labelled_)) | {r["key"] for r in labels}
        end = check_whole(self.iterations, "iterations", 0)
        bar = tqdm(total=end + 1, initial=last + 1, desc="active learning", unit="iteration",
                   disable=not self.progress)
        try:
            for i in range(last + 1, end + 1):
                t0 = time.perf_counter()
                extra: dict[str, Any] = {"n_added": 0, "n_candidates": 0, "selected_uncertainty": None,
                                         "max_uncertainty": None, "keys": []}
                new = None
                if i > 0:
                    mine = pending if i == last + 1 else []
                    new, extra = self._grow(i, explorers, label_fn, known, mine)
                    if new is None and extra["n_candidates"] == 0:
                        warnings.warn(f"iteration {i}: no new candidates to label; the loop stops", stacklevel=2)
                        break
                if new is not None:
                    self.labelled_ = StructureDataset.concatenate([self.labelled_, new], name=self.labelled_.name)
                if i == 0 or new is not None:  # (every label failed: the same set, the same committee)
                    self.committee_ = self._train(self.labelled_, self.committee_)
                record = {"iteration": i, "n_labels": len(self.labelled_), **extra,
                          **self._score(self.committee_, test), "seconds": time.perf_counter() - t0}
                bar.update(1)
                bar.set_postfix({k: f"{record[k]:.3g}" for k in ("n_labels", "energy_rmse", "forces_rmse")
                                 if record[k] is not None})
                if not self._finish(i, record):
                    break
        finally:
            bar.close()
        self.potential_ = self._potential(self.committee_)
        return self

    def _core_start(self, data: StructureDataset) -> StructureDataset:
        for name in self.targets_:
            if name not in data:
                raise InputError(f"the starting set has no {name!r}", field="data")
        start = _core(data, self.targets_)
        start.meta = [{**m, "source": m.get("source", "starting set")} for m in start.meta]
        return start

    def _grow(self, i: int, explorers: list, label_fn: Callable | None, known: set[str],
              pending: list[dict]) -> tuple[StructureDataset | None, dict]:
        """Explore, select and label the structures of iteration ``i`` (``pending``: those an
        interrupted run of this iteration already labelled, which count towards ``per_iteration``)."""
        rng = np.random.default_rng([int(self.seed), i])
        potential = self._potential(self.committee_)
        found = [e.explore(self.labelled_, potential, rng) for e in explorers]
        found = [f for f in found if len(f)]
        have = len([r for r in pending if r["status"] == "ok"])
        k = self.per_iteration - have
        picked_u: np.ndarray = np.zeros(0)
        new_records: list[dict] = []
        n_candidates = 0
        if found and k > 0:
            # (several explorers: their geometries joined; one: its structures, a pool's labels kept)
            cand = StructureDataset.concatenate([_geometry_of(f) for f in found], name="candidates") \
                if len(found) > 1 else found[0]
            keys = structure_keys(cand)
            _, first = np.unique(keys, return_index=True)  # each geometry once, new ones only
            fresh = np.array(sorted(j for j in first if keys[j] not in known), dtype=np.int64)
            n_candidates = len(fresh)
            if n_candidates:
                cand, keys = cand.select(fresh), [keys[j] for j in fresh]
                if self.strategy == "uncertainty":
                    pred = potential.predict(_geometry_of(cand))
                    u = structure_uncertainty(cand, pred, self.uncertainty)
                    feats = self.committee_.descriptor.compute(cand, device=self.device_).cpu().numpy()
                    have_f = None
                    if self.diversity == "labelled":
                        lab = self.committee_.descriptor.compute(self.labelled_, device=self.device_).cpu().numpy()
                        have_f = _structure_features(self.labelled_, lab)
                    pick = select(cand, pred, k, "uncertainty", features=feats, top=self.top,
                                  reduce=self.uncertainty, labelled_features=have_f)
                    picked_u = u[pick]
                else:
                    pick = select(cand, {}, k, "random", seed=int(rng.integers(2 ** 31)))
                new_records = self._label(i, cand.select(pick), [keys[j] for j in pick], label_fn,
                                          picked_u if len(picked_u) else None)
                known.update(keys[j] for j in pick)
        records = [r for r in pending if r["status"] == "ok"] + [r for r in new_records if r["status"] == "ok"]
        new = self._labelled_from(records)
        extra = {"n_added": len(records), "n_candidates": n_candidates,
                 "selected_uncertainty": float(np.mean(picked_u)) if len(picked_u) else None,
                 "max_uncertainty": float(np.max(picked_u)) if len(picked_u) else None,
                 "keys": [r["key"] for r in records]}
        return new, extra

    def _label(self, i: int, chosen: StructureDataset, keys: list[str], label_fn: Callable | None,
               u: np.ndarray | None) -> list[dict]:
        """Label ``chosen`` and append one record per structure (``labels.jsonl``)."""
        need_forces = "forces" in self.targets_
        if label_fn is None:  # "stored": the pool's own labels
            missing = [t for t in self.targets_ if t not in chosen]
            if missing:
                raise InputError(f"labeller='stored' but the candidates have no {', '.join(missing)} (only a "
                                 "labelled Pool carries labels)", field="labeller")
            labelled = list(chosen)
        else:
            images = [Atoms(chosen.numbers[chosen.atom_slice(j)], chosen.positions[chosen.atom_slice(j)],
                            cell=chosen.cells[j], pbc=chosen.pbc[j]) for j in range(len(chosen))]
            labelled = list(label_fn(images))
            self.n_labelled_ += len(images)
            if len(labelled) != len(images):
                raise InputError(f"the labeller returned {len(labelled)} structures for {len(images)}",
                                 field="labeller")
        records = []
        for j, atoms in enumerate(labelled):
            sl = chosen.atom_slice(j)
            record = {"key": keys[j], "iteration": i, "source": chosen.meta[j].get("source", ""),
                      "numbers": chosen.numbers[sl], "positions": chosen.positions[sl], "cell": chosen.cells[j],
                      "pbc": chosen.pbc[j], "uncertainty": None if u is None else float(u[j])}
            if atoms is None:
                record["status"] = "failed"
            else:
                energy, forces = _labels_of(atoms, chosen, j, need_forces)
                record.update({"status": "ok", "energy": energy, **({"forces": forces} if need_forces else {})})
            self._append("labels.jsonl", record)
            records.append(record)
        return records

"""Many MD replicas advanced together: one forward and one backward pass of the potential per step
for all of them.

    from mlexplore.training import Potential
    from mlexplore.simulation import ReplicaMD

    md = ReplicaMD(Potential(model), [atoms] * 16, temperature_K=[300, 600, 900, 1200] * 4,
                   timestep_fs=2.0, friction=0.02, seed=0)
    md.run(500)
    md.temperatures_          # (steps, replicas) K
    frames = md.to_atoms()    # the replicas now, as ase.Atoms with momenta

ASE's MD drivers move one ``Atoms`` at a time, so 16 replicas of a small cell cost 16 calls of the
potential per step, each dominated by the fixed cost of a call (Python, neighbour search, dozens of
small tensor operations). Here the replicas are one batch (:func:`~mlexplore.descriptors.structure_tensors`
layout, replicas of any sizes and elements): the neighbour list is kept with a skin for the whole
batch (:class:`~mlexplore.descriptors.VerletList`), the forces of all replicas come from one
backward pass (a committee's mean forces and their spread, as in the ASE calculator), and the
integrator runs in torch on the potential's device.

Integrators (ASE units inside: Å, eV, amu, ``ase.units.fs``):

- ``friction=None``: velocity Verlet (NVE) — the same trajectory as ASE's ``VelocityVerlet`` on each
  replica alone (tested to 1e-10 Å);
- ``friction=γ`` (1/fs): Langevin dynamics at ``temperature_K`` (one value or one per replica) by
  the BAOAB splitting of Leimkuhler & Matthews (Appl. Math. Res. Express 2013, 34–56; J. Chem.
  Phys. 138, 174102 (2013)): half kick, half drift, the exact Ornstein-Uhlenbeck step
  ``v ← e^{−γΔt} v + √((1 − e^{−2γΔt}) k_B T / m) ξ``, half drift, forces, half kick; seeded.

Every step checks the positions (non-finite → :class:`~mlexplore.errors.InputError` naming the
replica) and, through the kept list, overlapping atoms; every ``check_every`` steps the atoms are
graded against the potential's training domain and counted in :attr:`ReplicaMD.extrapolation`
(one warning at the first step that extrapolates, as the ASE calculator does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms, units

from ..data.dataset import StructureDataset
from ..data.validate import check_limit, check_structures
from ..descriptors.symmetry import structure_tensors
from ..descriptors.verlet import DEFAULT_SKIN, VerletList
from ..errors import InputError
from ..training.extrapolation import ExtrapolationLog
from ..training.potential import Potential

__all__ = ["ReplicaMD"]


class ReplicaMD:
    """Molecular dynamics of many replicas in one batch (see the module docstring).

    Parameters
    ----------
    potential:
        A :class:`Potential` over a BPNN or a committee (its device and precision are used).
    replicas:
        The starting structures (``ase.Atoms``, any sizes; momenta are taken from them when set,
        else drawn from Maxwell-Boltzmann at ``temperature_K`` when one is given, else zero).
    timestep_fs:
        Time step in fs.
    temperature_K:
        Target temperature (K): one value or one per replica; needed with ``friction``.
    friction:
        Langevin friction γ in 1/fs (e.g. 0.01–0.05), or None for velocity Verlet (NVE).
    seed:
        Seed of the initial velocities and the Langevin noise (a ``torch.Generator`` of its own).
    skin:
        Skin of the kept neighbour list (Å).
    check_every:
        Grade the atoms against the training domain every this many steps (0: never).
    min_distance:
        The overlap limit (Å; None: half the covalent radii; 0: off), as in :class:`Potential`.

    Attributes (after :meth:`run`)
    ------------------------------
    energies_, kinetic_, temperatures_:
        ``(steps, replicas)`` arrays: potential and kinetic energy (eV) and temperature (K) after
        every step of all calls to :meth:`run`.
    extrapolation:
        :class:`~mlexplore.training.extrapolation.ExtrapolationLog` of the graded steps.
    neighbors:
        The kept :class:`~mlexplore.descriptors.VerletList` (``builds`` / ``calls``).
    """

    def __init__(self, potential: Potential, replicas: Sequence[Atoms], timestep_fs: float = 1.0,
                 temperature_K: float | Sequence[float] | None = None, friction: float | None = None,
                 seed: int = 0, skin: float = DEFAULT_SKIN, check_every: int = 10,
                 min_distance: float | None | str = "default") -> None:
        if not isinstance(potential, Potential) or not potential.is_potential:
            raise InputError("ReplicaMD needs a Potential over a BPNN or a Committee", field="potential")
        replicas = [a if isinstance(a, Atoms) else None for a in replicas]
        if not replicas or any(a is None for a in replicas):
            raise InputError("replicas must be a non-empty sequence of ase.Atoms", field="replicas")
        if not (isinstance(timestep_fs, (int, float)) and timestep_fs > 0 and np.isfinite(timestep_fs)):
            raise InputError(f"timestep_fs must be a positive number, got {timestep_fs!r}", field="timestep_fs")
        if friction is not None and not (isinstance(friction, (int, float)) and friction > 0):
            raise InputError(f"friction must be a positive rate in 1/fs or None, got {friction!r}", field="friction")
        if friction is not None and temperature_K is None:
            raise InputError("Langevin dynamics (friction=…) needs temperature_K", field="temperature_K")
        if int(check_every) < 0:
            raise InputError(f"check_every must be ≥ 0, got {check_every}", field="check_every")
        self.potential = potential
        self.timestep_fs = float(timestep_fs)
        self.friction = None if friction is None else float(friction)
        self.seed = int(seed)
        self.check_every = int(check_every)
        self.min_distance = potential.min_distance if min_distance == "default" else min_distance
        check_limit(self.min_distance)
        self.neighbors = VerletList(skin)
        self.extrapolation = ExtrapolationLog()
        self._model = potential.ready()
        device, dtype = potential.device, potential.dtype
        ds = StructureDataset.from_atoms([a.copy() for a in replicas])
        check_structures(ds, self.min_distance, overlaps=False)
        self._batch = structure_tensors(ds, device, dtype, moments="required" if self._model.descriptor.spin else "none")
        self._n_atoms = ds.n_atoms.copy()
        self._replica = torch.repeat_interleave(torch.arange(len(replicas), device=device),
                                                self._batch["n_atoms"])
        self._symbols = [a.get_chemical_symbols() for a in replicas]
        masses = np.concatenate([a.get_masses() for a in replicas])
        self._mass = torch.as_tensor(masses, dtype=dtype, device=device)[:, None]
        S = len(replicas)
        temps = (np.zeros(S) if temperature_K is None else np.full(S, float(temperature_K))
                 if np.ndim(temperature_K) == 0 else np.asarray(temperature_K, float))
        if temps.shape != (S,) or (temps < 0).any() or not np.isfinite(temps).all():
            raise InputError(f"temperature_K must be one value or one per replica ({S}), each ≥ 0", field="temperature_K")
        self.temperature_K = temps
        self._kT = torch.as_tensor(units.kB * temps, dtype=dtype, device=device)[self._replica][:, None]
        self._gen = torch.Generator(device=device).manual_seed(self.seed)
        momenta = [a.get_momenta() if a.has("momenta") else None for a in replicas]
        v = torch.zeros_like(self._batch["positions"])
        for s, p in enumerate(momenta):
            sl = slice(int(self._n_atoms[:s].sum()), int(self._n_atoms[:s + 1].sum()))
            if p is not None:
                v[sl] = torch.as_tensor(p, dtype=dtype, device=device) / self._mass[sl]
            elif temperature_K is not None:
                v[sl] = torch.sqrt(self._kT[sl] / self._mass[sl]) * self._noise(v[sl].shape)
        self._velocities = v
        self._forces, self._energy = self._evaluate(step=0)
        self._records: list[tuple[np.ndarray, np.ndarray]] = []

    # ----------------------------------------------------------------- pieces
    def _noise(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self._gen, dtype=self._batch["positions"].dtype,
                           device=self._batch["positions"].device)

    def _evaluate(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Forces (eV/Å) and per-replica energies (eV) of the current positions: one forward and one
        backward pass for the whole batch."""
        batch = self._batch
        if not bool(torch.isfinite(batch["positions"]).all()):
            bad = int(self._replica[~torch.isfinite(batch["positions"]).all(dim=1)][0])
            raise InputError("non-finite positions (the dynamics blew up: a time step too large, or forces "
                             "from far outside the training domain)", structure=bad, field="positions")
        nb = self.neighbors.neighbors(self._model.descriptor, batch, self.min_distance)
        grade = self.check_every and step % self.check_every == 0
        out = self._model.energy_and_forces({**batch, "neighbors": nb}, return_features=bool(grade))
        if grade:
            self.potential.grade(out["features"], batch["numbers"], what=f"replica MD step {step} (atoms counted "
                                 "over all replicas): ", log=self.extrapolation)
        return out["forces"].detach(), out["energy"].detach()

    def _kinetic(self) -> torch.Tensor:
        per_atom = 0.5 * (self._mass * self._velocities ** 2).sum(dim=1)
        return torch.zeros(len(self._n_atoms), dtype=per_atom.dtype, device=per_atom.device).index_add(
            0, self._replica, per_atom)

    # ------------------------------------------------------------------- run
    def run(self, steps: int) -> "ReplicaMD":
        """Advance every replica by ``steps`` steps; appends to :attr:`energies_`, :attr:`kinetic_`
        and :attr:`temperatures_`."""
        if int(steps) != steps or steps < 0:
            raise InputError(f"steps must be a whole number ≥ 0, got {steps!r}", field="steps")
        dt = self.timestep_fs * units.fs
        x, v, m = self._batch["positions"], self._velocities, self._mass
        if self.friction is not None:
            c1 = float(np.exp(-self.friction * self.timestep_fs))
            c2 = torch.sqrt((1 - c1 * c1) * self._kT / m)
        done = len(self._records)
        for k in range(int(steps)):
            v = v + 0.5 * dt * self._forces / m
            if self.friction is None:
                x = x + dt * v
            else:
                x = x + 0.5 * dt * v
                v = c1 * v + c2 * self._noise(v.shape)
                x = x + 0.5 * dt * v
            self._batch["positions"] = x
            self._forces, self._energy = self._evaluate(step=done + k + 1)
            v = v + 0.5 * dt * self._forces / m
            self._velocities = v
            self._records.append((self._energy.cpu().numpy(), self._kinetic().cpu().numpy()))
        return self

    # --------------------------------------------------------------- results
    @property
    def energies_(self) -> np.ndarray:
        return np.array([r[0] for r in self._records]).reshape(-1, len(self._n_atoms))

    @property
    def kinetic_(self) -> np.ndarray:
        return np.array([r[1] for r in self._records]).reshape(-1, len(self._n_atoms))

    @property
    def temperatures_(self) -> np.ndarray:
        """Instantaneous temperature ``2 K / (3 N k_B)`` per step and replica (K)."""
        return 2 * self.kinetic_ / (3 * self._n_atoms[None, :] * units.kB)

    def to_atoms(self) -> list[Atoms]:
        """The replicas now: ``ase.Atoms`` with positions, cell, pbc and momenta."""
        x = self._batch["positions"].detach().cpu().double().numpy()
        p = (self._mass * self._velocities).detach().cpu().double().numpy()
        cells = self._batch["cells"].cpu().double().numpy()
        pbc = self._batch["pbc"].cpu().numpy()
        out, start = [], 0
        for s, n in enumerate(self._n_atoms):
            a = Atoms(self._symbols[s], positions=x[start:start + n], cell=cells[s], pbc=pbc[s])
            a.set_momenta(p[start:start + n])
            out.append(a)
            start += n
        return out

    def __repr__(self) -> str:
        kind = "velocity Verlet" if self.friction is None else f"Langevin γ={self.friction}/fs"
        return (f"ReplicaMD({len(self._n_atoms)} replicas, {int(self._n_atoms.sum())} atoms, {kind}, "
                f"Δt={self.timestep_fs} fs; {len(self._records)} steps run; {self.neighbors})")

    def summary(self) -> dict[str, Any]:
        """Steps run, lists built, and the extrapolation record in words."""
        return {"steps": len(self._records), "lists": self.neighbors.builds,
                "extrapolation": self.extrapolation.summary(self._model.descriptor.feature_names)}

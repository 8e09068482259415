"""Metropolis Monte Carlo of atomic spins on a fixed lattice, energies from a spin-aware potential
(002 §4.3.1, SPEC §9).

    from mlexplore.simulation import SpinMonteCarlo

    mc = SpinMonteCarlo(Potential(model), [cell] * 12, temperature_K=[300] * 4 + [900] * 4 + [1200] * 4,
                        initial="FM", move="cone", max_angle=0.3, seed=0)
    mc.run(200)                     # sweeps: one attempted move per atom and replica each
    mc.net_spin_ratio_              # (sweeps, replicas): |Σ s| / Σ |s| after every sweep
    mc.statistics(burn_in=50)       # means with errors from the integrated autocorrelation time

The geometry never moves, so the geometric columns of the descriptor (G2, G4, …) are computed once;
a move of atom k changes only the spin columns of k and its neighbours (every spin term of atom i
depends on S_i and its neighbours' S_j), so a step sums only their pairs
(:meth:`SymmetryFunctions.spin_features` with ``pairs``, on the kept neighbour list and pair
vectors) and runs only their networks; the energies are recomputed in full once a sweep, so the
summed changes cannot drift. All replicas — copies of one lattice at their
own temperatures and initial states, or different cells of the same size — make one move each per
step, evaluated in one batched pass: one replica per structure of the batch.

Moves (one atom per replica and step, chosen uniformly):

- ``"cone"``: the spin's direction turned by a uniform draw in a cone of half-angle ``max_angle``
  about its present direction (the thesis' "first-order" move; small angles keep the states near
  the training data, 002 §4.3.1);
- ``"sphere"``: a fresh direction uniform on the sphere (the thesis' "zero-th order" move);
- ``"flip"``: ``s → −s`` (collinear spins, e.g. a model trained on ``fe_spin_dft``);
- ``magnitude_step`` (μB, optional, any move): the length changes by a uniform draw in
  ``[−δ, δ]``, reflected at 0.

Every proposal is symmetric, so the acceptance ``min(1, exp(−ΔE / k_B T))`` samples
``exp(−E / k_B T)`` with directions uniform on the sphere (and lengths uniform, with magnitude
moves). Each replica draws from its own ``torch.Generator`` (``seed + replica``), so a batch of
replicas gives exactly what each replica gives alone with its seed.

Recorded after every sweep: the energy (eV), the net-spin ratio ``|Σ s| / Σ |s|`` and the
polar-angle variance about the net spin (SPEC §3: FM 0, PM π²/4 − 2, collinear AFM π²/4), and the
acceptance rate. :meth:`statistics` gives means and standard errors from the integrated
autocorrelation time (Sokal's windowing); :meth:`save` / :meth:`load` keep a long sweep resumable
(spins, generators and records, written atomically). Every sweep grades the atoms against the
potential's training domain (:attr:`SpinMonteCarlo.extrapolation`: one warning at the first sweep
with spins the model never saw, the rest counted), since large or unseen moves leave it
(002 §4.3.1 limits the move sizes for that reason).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms, units

from ..analysis.magnetism import net_spin_ratio, polar_angle_variance
from ..data.dataset import StructureDataset
from ..datasets.spin_sampling import spin_directions
from ..descriptors.symmetry import structure_tensors
from ..errors import InputError
from ..io.files import atomic_write
from ..training.extrapolation import ExtrapolationLog
from ..training.potential import Potential

__all__ = ["SpinMonteCarlo", "initial_spins", "integrated_autocorrelation_time", "equilibration_sweep", "MOVES"]

MOVES = ("cone", "sphere", "flip")


def _unit_vectors(cos_theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    sin_theta = torch.sqrt((1 - cos_theta * cos_theta).clamp(min=0))
    return torch.stack([sin_theta * torch.cos(phi), sin_theta * torch.sin(phi), cos_theta], dim=-1)


def initial_spins(kind: str, n_atoms: int, magnitude: float, positions: np.ndarray | None = None,
                  cell: np.ndarray | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Spins ``(n_atoms, 3)`` μB of an initial state (SPEC §9): ``"FM"`` (all +z), ``"AFM"`` (the B2
    order of BCC iron: +z on the cube corners, −z on the body centres, every nearest neighbour
    antiparallel; the cube edge from the nearest-neighbour distance, ``a = 2 d_nn / √3``; needs
    ``positions`` and ``cell``; other orders: give the spins as ``initial_magmoms``) or ``"PM"``
    (polar angle ``arccos(1 − U[0, 2))``, azimuth ``U[0, 2π)``: uniform on the sphere)."""
    if kind == "FM":
        s = np.zeros((n_atoms, 3))
        s[:, 2] = 1.0
    elif kind == "AFM":
        if positions is None or cell is None:
            raise InputError("an AFM initial state needs the positions and the cell", field="initial")
        probe = Atoms(numbers=np.ones(n_atoms, int), positions=positions, cell=cell, pbc=True)
        d = probe.get_all_distances(mic=True)
        d[np.diag_indices_from(d)] = np.inf
        half_edge = d.min() / math.sqrt(3)  # a / 2 with d_nn = a √3 / 2
        rel = np.asarray(positions) - np.asarray(positions)[0]
        parity = np.round(rel[:, 0] / half_edge).astype(int) % 2
        s = np.zeros((n_atoms, 3))
        s[:, 2] = np.where(parity == 0, 1.0, -1.0)
    elif kind == "PM":
        s = spin_directions("PM", n_atoms, rng)
    else:
        raise InputError(f"initial state must be 'FM', 'AFM' or 'PM' (or an array of spins), got {kind!r}",
                         field="initial")
    return magnitude * s


def integrated_autocorrelation_time(x: np.ndarray, c: float = 5.0) -> float:
    """Integrated autocorrelation time τ (in samples, ≥ 0.5) of a series, with Sokal's automatic window
    (the smallest M with M ≥ c τ(M)). The standard error of the mean is ``σ √(2τ / n)``."""
    x = np.asarray(x, float)
    n = len(x)
    if n < 4 or np.var(x) == 0:
        return 0.5
    f = np.fft.rfft(x - x.mean(), n=2 * n)
    acf = np.fft.irfft(f * np.conjugate(f))[:n]
    acf /= acf[0]
    tau = 0.5
    for m in range(1, n):
        tau += acf[m]
        if m >= c * tau:
            break
    return float(max(tau, 0.5))


def equilibration_sweep(x: np.ndarray) -> int:
    """The burn-in that maximises the number of effectively independent samples left,
    ``(n − t₀) / (2 τ(t₀))`` (Chodera, J. Chem. Theory Comput. 12, 1799 (2016)), tried at 20
    evenly spaced t₀ over the first half of the series ``x``."""
    x = np.asarray(x, float)
    n = len(x)
    if n < 8:
        return 0
    best, best_n = 0, -1.0
    for t0 in np.unique(np.linspace(0, n // 2, 20).astype(int)):
        tail = x[t0:]
        n_eff = len(tail) / (2 * integrated_autocorrelation_time(tail))
        if n_eff > best_n:
            best, best_n = int(t0), n_eff
    return best


class SpinMonteCarlo:
    """Metropolis spin Monte Carlo of many replicas at once (see the module docstring).

    Parameters
    ----------
    potential:
        A :class:`~mlexplore.training.Potential` over a spin-aware BPNN or committee (a descriptor
        with spin terms).
    replicas:
        The fixed lattices (``ase.Atoms``), one per replica, all with the same number of atoms.
    temperature_K:
        One temperature or one per replica (K); 0 accepts only moves that do not raise the energy.
    initial:
        ``"FM"``, ``"AFM"``, ``"PM"`` (one for all, or one per replica), or ``"atoms"`` to start from
        each replica's ``initial_magmoms`` (3-vectors, or scalars along z).
    magnitude:
        Length of the initial spins (μB) for ``"FM"``/``"AFM"``/``"PM"``; default: the mean length of
        the replicas' ``initial_magmoms`` where set, else 2.2.
    move, max_angle, magnitude_step:
        The moves (module docstring); ``max_angle`` in rad (cone moves), ``magnitude_step`` in μB.
    collinear:
        Evaluate the model on scalar moments (their z components): for models trained on collinear
        data, with ``move="flip"``.
    seed:
        Replica r draws from ``torch.Generator().manual_seed(seed + r)`` (and ``"PM"`` starts from
        ``numpy.random.default_rng(seed + r)``).

    Attributes
    ----------
    local_moves:
        True when a step evaluates only the moved atoms and their neighbours (cells with atoms
        beyond the descriptor's reach of each other), False when every step is evaluated in full.
    sweeps_done:
        Sweeps run so far (restored by :meth:`load`).
    """

    def __init__(self, potential: Potential, replicas: Sequence[Atoms], temperature_K: float | Sequence[float] = 300.0,
                 initial: str | Sequence[str] = "FM", magnitude: float | None = None, move: str = "cone",
                 max_angle: float = 0.3, magnitude_step: float | None = None, collinear: bool = False,
                 seed: int = 0) -> None:
        if not isinstance(potential, Potential) or not potential.is_potential:
            raise InputError("SpinMonteCarlo needs a Potential over a BPNN or a Committee", field="potential")
        model = potential.ready()
        if not model.descriptor.spin:
            raise InputError("the potential's descriptor has no spin terms: its energy does not depend on the spins",
                             field="potential")
        replicas = list(replicas)
        if not replicas or not all(isinstance(a, Atoms) for a in replicas):
            raise InputError("replicas must be a non-empty sequence of ase.Atoms", field="replicas")
        n = len(replicas[0])
        if any(len(a) != n for a in replicas):
            raise InputError(f"every replica needs the same number of atoms (a sweep is one move per atom); got "
                             f"{sorted({len(a) for a in replicas})}", field="replicas")
        if move not in MOVES:
            raise InputError(f"move must be one of {', '.join(MOVES)}, got {move!r}", field="move")
        if collinear and move != "flip":
            raise InputError("collinear spins move by flips (move='flip')", field="move")
        if not (0 < max_angle <= math.pi):
            raise InputError(f"max_angle must be in (0, π] rad, got {max_angle!r}", field="max_angle")
        if magnitude_step is not None and not magnitude_step > 0:
            raise InputError(f"magnitude_step must be positive (μB) or None, got {magnitude_step!r}",
                             field="magnitude_step")
        R = len(replicas)
        temps = np.broadcast_to(np.asarray(temperature_K, float), (R,)).copy() if np.ndim(temperature_K) == 0 \
            else np.asarray(temperature_K, float)
        if temps.shape != (R,) or not np.isfinite(temps).all() or (temps < 0).any():
            raise InputError(f"temperature_K must be one value or one per replica ({R}), each ≥ 0", field="temperature_K")
        self.potential, self.model = potential, model
        self.temperature_K = temps
        self.move, self.max_angle, self.magnitude_step = move, float(max_angle), magnitude_step
        self.collinear, self.seed = bool(collinear), int(seed)
        self.n_atoms, self.n_replicas = n, R
        device, dtype = potential.device, potential.dtype
        ds = StructureDataset.from_atoms([a.copy() for a in replicas])
        self._batch = structure_tensors(ds, device, dtype)
        kinds = [initial] * R if isinstance(initial, str) else list(initial)
        if len(kinds) != R:
            raise InputError(f"initial: one state for all or one per replica ({R}), got {len(kinds)}", field="initial")
        self.initial = kinds
        start = self._initial(replicas, kinds, magnitude)
        self._spins = torch.as_tensor(start, dtype=dtype, device=device)  # (R·n, 3)
        self._gens = [torch.Generator(device=device).manual_seed(self.seed + r) for r in range(R)]
        self._kT = torch.as_tensor(units.kB * temps, dtype=dtype, device=device)
        self._offsets = torch.arange(R, device=device) * n
        with torch.no_grad():
            self._nb = model.descriptor.neighbor_list(self._batch, potential.min_distance)
            geo = model.descriptor(**self._batch, magmoms=self._moments(self._spins), neighbors=self._nb)
            self._geometric = geo[:, : model.descriptor.n_features - len(model.descriptor.spin)]
            self._energy, self._atom_energy = self._energies(self._spins)
        # the pair list as ranges per centre (pairs are sorted by centre): what a move touches
        counts = torch.bincount(self._nb.centers, minlength=len(self._spins))
        self._pair_start, self._pair_count = torch.cumsum(counts, 0) - counts, counts
        # in a cell smaller than the descriptor's reach a move touches (nearly) every atom: then the
        # bookkeeping of a local update costs more than it saves, and every step is evaluated in full
        distinct = torch.unique(self._nb.centers * len(self._spins) + self._nb.neighbors) // len(self._spins)
        reach = int(torch.bincount(distinct, minlength=len(self._spins)).max()) + 1 if len(distinct) else 1
        self.local_moves = reach < 0.8 * n
        self.sweeps_done = 0
        #: the training-domain record of the sweeps (:class:`~mlexplore.training.extrapolation.ExtrapolationLog`)
        self.extrapolation = ExtrapolationLog()
        self._records: dict[str, list[np.ndarray]] = {"energy": [], "net_spin_ratio": [], "polar_angle_variance": [],
                                                      "acceptance": []}

    # ---------------------------------------------------------------- set-up
    def _initial(self, replicas: list[Atoms], kinds: list[str], magnitude: float | None) -> np.ndarray:
        given = [a.get_initial_magnetic_moments() if a.has("initial_magmoms") else None for a in replicas]
        if magnitude is None:
            lengths = [np.linalg.norm(np.atleast_2d(m.T).T.reshape(len(m), -1), axis=1).mean() for m in given
                       if m is not None]
            magnitude = float(np.mean(lengths)) if lengths else 2.2
        out = []
        for r, (a, kind) in enumerate(zip(replicas, kinds)):
            if kind == "atoms":
                m = given[r]
                if m is None:
                    raise InputError("initial='atoms' but the replica has no initial_magmoms", structure=r,
                                     field="initial")
                m = np.asarray(m, float)
                out.append(np.stack([np.zeros_like(m), np.zeros_like(m), m], 1) if m.ndim == 1 else m)
            elif kind == "PM" and self.collinear:  # up or down at random
                signs = np.random.default_rng(self.seed + r).choice([-1.0, 1.0], len(a))
                out.append(np.stack([np.zeros(len(a)), np.zeros(len(a)), magnitude * signs], 1))
            else:
                out.append(initial_spins(kind, len(a), magnitude, a.positions, np.asarray(a.cell),
                                         np.random.default_rng(self.seed + r)))
        s = np.concatenate(out)
        if self.collinear and np.abs(s[:, :2]).max() > 1e-12:
            raise InputError("collinear Monte Carlo needs spins along z", field="initial")
        return s

    def _moments(self, spins: torch.Tensor) -> torch.Tensor:
        return spins[:, 2] if self.collinear else spins

    def _energies(self, spins: torch.Tensor, grade: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy of every replica and of every atom (eV) for these spins: the spin columns
        recomputed, the geometric ones kept. ``grade``: also grade the atoms against the training
        domain and count them in :attr:`extrapolation`."""
        d = self.model.descriptor
        b = self._batch
        g = torch.cat([self._geometric, d.spin_features(b["positions"], b["cells"], b["n_atoms"],
                                                        self._moments(spins), self._nb)], dim=1)
        out = self.model({"features": g, "numbers": b["numbers"], "n_atoms": b["n_atoms"]})
        if grade:  # spins the model never saw (a collinear model's canted states, moves larger than the data's)
            self.potential.grade(g, b["numbers"], what=f"spin Monte Carlo sweep {self.sweeps_done + 1} (atoms of all "
                                 "replicas): ", log=self.extrapolation)
        return out["energy"], out["energies"]

    def _local_change(self, spins: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                              torch.Tensor]:
        """The energy change of every replica when atoms ``rows`` (one per replica) take their spins
        in ``spins``: only the moved atoms and their neighbours change their spin columns (every
        spin term of atom i depends on S_i and the S_j of its neighbours), so only their pairs are
        summed and only their networks run. Returns (ΔE per replica, the affected atoms, their new
        per-atom energies)."""
        touched = torch.zeros(len(spins), dtype=torch.bool, device=spins.device)
        touched[rows] = True
        start, count = self._pair_start[rows], self._pair_count[rows]
        mine = torch.repeat_interleave(start - torch.cumsum(count, 0) + count, count) + torch.arange(
            int(count.sum()), device=spins.device)
        touched[self._nb.neighbors[mine]] = True
        atoms = torch.nonzero(touched).squeeze(1)
        pairs = torch.nonzero(touched[self._nb.centers]).squeeze(1)
        d, b = self.model.descriptor, self._batch
        spin_cols = d.spin_features(b["positions"], b["cells"], b["n_atoms"], self._moments(spins), self._nb,
                                    pairs=pairs)[atoms]
        g = torch.cat([self._geometric[atoms], spin_cols], dim=1)
        replica = atoms // self.n_atoms
        counts = torch.bincount(replica, minlength=self.n_replicas)
        e_new = self.model({"features": g, "numbers": b["numbers"][atoms], "n_atoms": counts})["energies"]
        delta = torch.zeros(self.n_replicas, dtype=e_new.dtype, device=e_new.device).index_add(
            0, replica, e_new - self._atom_energy[atoms])
        return delta, atoms, e_new

    # ------------------------------------------------------------------ moves
    def _draws(self, steps: int) -> torch.Tensor:
        """``(steps, R, 5)`` uniforms: atom, two for the direction, magnitude, acceptance — each
        replica from its own generator."""
        return torch.stack([torch.rand((steps, 5), generator=g, dtype=self._spins.dtype, device=self._spins.device)
                            for g in self._gens], dim=1)

    def _propose(self, old: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """New spins ``(R, 3)`` from the old ``(R, 3)`` and uniforms ``u (R, 5)``."""
        length = old.norm(dim=1, keepdim=True)
        if self.move == "flip":
            new = -old
        else:
            cos_max = -1.0 if self.move == "sphere" else math.cos(self.max_angle)
            cos_t = 1 - u[:, 1] * (1 - cos_max)  # uniform in the cone (or on the sphere)
            local = _unit_vectors(cos_t, 2 * math.pi * u[:, 2])
            if self.move == "sphere":
                direction = local
            else:  # rotate the cone's axis from z onto the old direction
                axis = old / length.clamp(min=1e-12)
                helper = torch.where(axis[:, 2:3].abs() < 0.9, torch.tensor([0.0, 0.0, 1.0], dtype=old.dtype,
                                                                            device=old.device),
                                     torch.tensor([1.0, 0.0, 0.0], dtype=old.dtype, device=old.device))
                e1 = torch.linalg.cross(helper.expand_as(axis), axis)
                e1 = e1 / e1.norm(dim=1, keepdim=True)
                e2 = torch.linalg.cross(axis, e1)
                direction = local[:, :1] * e1 + local[:, 1:2] * e2 + local[:, 2:3] * axis
            new = direction * length
        if self.magnitude_step is not None:
            new_length = (length + (2 * u[:, 3:4] - 1) * self.magnitude_step).abs()  # reflected at 0
            new = new / length.clamp(min=1e-12) * new_length
        return new

    @torch.no_grad()
    def run(self, sweeps: int, progress: bool = False) -> "SpinMonteCarlo":
        """``sweeps`` sweeps (one attempted move per atom and replica each, all replicas together);
        records every sweep's measures."""
        if int(sweeps) != sweeps or sweeps < 0:
            raise InputError(f"sweeps must be a whole number ≥ 0, got {sweeps!r}", field="sweeps")
        from tqdm.auto import tqdm

        n, R = self.n_atoms, self.n_replicas
        for _ in tqdm(range(int(sweeps)), desc="spin MC sweeps", disable=not progress):
            draws = self._draws(n)
            accepted = torch.zeros(R, dtype=torch.long, device=self._spins.device)
            for step in range(n):
                u = draws[step]
                rows = self._offsets + (u[:, 0] * n).long().clamp(max=n - 1)
                old = self._spins[rows]
                new = self._propose(old, u)
                trial = self._spins.index_copy(0, rows, new)
                if self.local_moves:
                    delta, atoms, e_atoms = self._local_change(trial, rows)
                else:
                    e_new, e_atoms = self._energies(trial)
                    delta, atoms = e_new - self._energy, torch.arange(len(trial), device=trial.device)
                accept = (delta <= 0) | (u[:, 4] < torch.exp(-delta / self._kT.clamp(min=1e-300)))
                accept &= torch.isfinite(delta)
                self._spins = torch.where(accept.repeat_interleave(n)[:, None], trial, self._spins)
                keep = accept[atoms // n]
                self._atom_energy[atoms[keep]] = e_atoms[keep]
                self._energy = self._energy + torch.where(accept, delta, torch.zeros_like(delta))
                accepted += accept.long()
            # once a sweep, the energies from scratch (no rounding drift from summed changes), and the
            # training-domain check
            self._energy, self._atom_energy = self._energies(self._spins, grade=True)
            self._record(accepted.double() / n)
            self.sweeps_done += 1
        return self

    def _record(self, acceptance: torch.Tensor) -> None:
        """The sweep's measures per replica, by the analysis layer's definitions (SPEC §3)."""
        spins = self.spins
        for key, value in (("energy", self._energy.cpu().numpy()),
                           ("net_spin_ratio", np.array([net_spin_ratio(s) for s in spins])),
                           ("polar_angle_variance", np.array([polar_angle_variance(s) for s in spins])),
                           ("acceptance", acceptance.cpu().numpy())):
            self._records[key].append(np.array(value, dtype=float))

    # --------------------------------------------------------------- results
    def _series(self, key: str) -> np.ndarray:
        rec = self._records[key]
        return np.array(rec).reshape(len(rec), self.n_replicas)

    energies_ = property(lambda self: self._series("energy"), doc="(sweeps, replicas) energy after each sweep, eV")
    net_spin_ratio_ = property(lambda self: self._series("net_spin_ratio"), doc="(sweeps, replicas) |Σ s| / Σ |s|")
    polar_angle_variance_ = property(lambda self: self._series("polar_angle_variance"),
                                     doc="(sweeps, replicas) variance of the polar angles about the net spin, rad²")
    acceptance_ = property(lambda self: self._series("acceptance"), doc="(sweeps, replicas) accepted fraction")

    @property
    def spins(self) -> np.ndarray:
        """The spins now, ``(replicas, atoms, 3)`` μB."""
        return self._spins.view(self.n_replicas, self.n_atoms, 3).cpu().numpy().copy()

    def energy(self) -> np.ndarray:
        """The energy of every replica now (eV), as the model gives it for the present spins."""
        with torch.no_grad():
            return self._energies(self._spins)[0].cpu().numpy()

    def statistics(self, burn_in: int | str = "auto") -> dict[str, dict[str, np.ndarray]]:
        """Per replica, for every recorded measure after ``burn_in`` sweeps: ``mean``, ``error`` (standard
        error of the mean from the integrated autocorrelation time) and ``tau`` (sweeps).
        ``burn_in="auto"``: the largest over the replicas of :func:`equilibration_sweep` of the energy
        (also returned, as ``out["burn_in"]``)."""
        if burn_in == "auto":
            e = self._series("energy")
            burn_in = max((equilibration_sweep(e[:, r]) for r in range(self.n_replicas)), default=0)
        if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)) or burn_in < 0:
            raise InputError(f"burn_in must be a whole number of sweeps ≥ 0 or 'auto', got {burn_in!r}",
                             field="burn_in")
        out: dict[str, Any] = {"burn_in": int(burn_in)}
        for key in ("energy", "net_spin_ratio", "polar_angle_variance", "acceptance"):
            x = self._series(key)[burn_in:]
            if len(x) == 0:
                raise InputError(f"no sweeps after burn_in={burn_in} ({self.sweeps_done} run)", field="burn_in")
            tau = np.array([integrated_autocorrelation_time(x[:, r]) for r in range(self.n_replicas)])
            err = x.std(axis=0) * np.sqrt(2 * tau / len(x))
            out[key] = {"mean": x.mean(axis=0), "error": err, "tau": tau}
        return out

    # ----------------------------------------------------------- resumable
    def save(self, path: str | os.PathLike) -> Path:
        """Write the state (spins, energies, generators, records, sweeps done) atomically; :meth:`load`
        continues from it exactly."""
        state = {"spins": self._spins.cpu(), "energy": self._energy.cpu(), "sweeps_done": self.sweeps_done,
                 "generators": [g.get_state() for g in self._gens],
                 "records": {k: torch.as_tensor(self._series(k)) for k in self._records},
                 "settings": self._settings()}
        path = Path(path)
        with atomic_write(path, text=False) as tmp:
            torch.save(state, tmp)
        return path

    def _settings(self) -> dict[str, Any]:
        return {"n_atoms": self.n_atoms, "n_replicas": self.n_replicas, "temperature_K": self.temperature_K.tolist(),
                "move": self.move, "max_angle": self.max_angle, "magnitude_step": self.magnitude_step,
                "collinear": self.collinear, "seed": self.seed}

    def load(self, path: str | os.PathLike) -> "SpinMonteCarlo":
        """Continue from a state written by :meth:`save` with the same settings (an
        :class:`~mlexplore.errors.InputError` names what differs)."""
        path = Path(path)
        try:  # tensors, numbers and text only: a crafted pickle is refused unread
            state = torch.load(path, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
            raise InputError(f"not a spin Monte Carlo state: {type(exc).__name__}", path=str(path)) from None
        if state.get("settings") != self._settings():
            raise InputError(f"the state was written with other settings: {state.get('settings')} against "
                             f"{self._settings()}", path=str(path), field="settings")
        self._spins = state["spins"].to(self._spins)
        with torch.no_grad():
            self._energy, self._atom_energy = self._energies(self._spins)
        for g, s in zip(self._gens, state["generators"]):
            g.set_state(s)
        self._records = {k: [row for row in v.numpy()] for k, v in state["records"].items()}
        self.sweeps_done = int(state["sweeps_done"])
        return self

    def __repr__(self) -> str:
        return (f"SpinMonteCarlo({self.n_replicas} replicas × {self.n_atoms} atoms, move={self.move!r}, "
                f"T = {sorted(set(self.temperature_K.tolist()))} K; {self.sweeps_done} sweeps)")

"""The thesis' two spin Monte Carlo studies of iron (002 §4.3.1, figs 4.20 and 4.22), as functions.

``relax_from_states(potential, lattice, ("FM", "PM", "AFM"), temperature_K=300)`` — does the relaxed
state remember where it started? Every initial state gets ``replicas`` replicas, all advanced in one
:class:`~mlexplore.simulation.SpinMonteCarlo`; the final |M| (the net-spin ratio ``|Σ s| / Σ |s|``
of SPEC §3, averaged over each replica's equilibrated sweeps) is compared across states with its
spread over replicas (fig 4.20: FM-initialised cells end higher than PM and AFM ones, which end alike).

``temperature_sweep(potential, lattice, temperatures)`` — |M|(T) from FM starts, every temperature and
replica in one batch (fig 4.22); :func:`drop_temperature` finds where |M| falls below a level, with a
bootstrap over replicas for its uncertainty.

Both take ``checkpoint=`` (a file): the run is saved every ``save_every`` sweeps and a second call
continues from it, so a long study survives an interrupted kernel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..errors import InputError
from ..training.potential import Potential
from .spin_monte_carlo import SpinMonteCarlo

__all__ = ["relax_from_states", "temperature_sweep", "drop_temperature", "StateRelaxation", "TemperatureSweep"]


@dataclass
class StateRelaxation:
    """Result of :func:`relax_from_states`: per initial state, each replica's equilibrated mean |M|."""

    states: list[str]
    temperature_K: float
    final: dict[str, np.ndarray]  # state -> (replicas,) mean net-spin ratio after the burn-in
    burn_in: int
    sweeps: int
    mc: SpinMonteCarlo = field(repr=False)

    def mean(self, state: str) -> float:
        return float(self.final[state].mean())

    def error(self, state: str) -> float:
        """Standard error of the mean over replicas."""
        x = self.final[state]
        return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")

    def table(self) -> list[dict[str, Any]]:
        return [{"initial state": s, "|M|": self.mean(s), "± (s.e.m.)": self.error(s),
                 "replicas": len(self.final[s])} for s in self.states]


@dataclass
class TemperatureSweep:
    """Result of :func:`temperature_sweep`: per temperature, each replica's equilibrated mean |M|."""

    temperatures: np.ndarray  # (T,) K
    final: np.ndarray  # (T, replicas) mean net-spin ratio after the burn-in
    burn_in: int
    sweeps: int
    mc: SpinMonteCarlo = field(repr=False)

    @property
    def mean(self) -> np.ndarray:
        return self.final.mean(axis=1)

    @property
    def error(self) -> np.ndarray:
        """Standard error of the mean over replicas, per temperature."""
        r = self.final.shape[1]
        return self.final.std(axis=1, ddof=1) / np.sqrt(r) if r > 1 else np.full(len(self.temperatures), np.nan)

    def drop(self, level: float = 0.5, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
        """:func:`drop_temperature` of this sweep."""
        return drop_temperature(self.temperatures, self.final, level=level, n_boot=n_boot, seed=seed)


def _advance(mc: SpinMonteCarlo, sweeps: int, checkpoint: str | os.PathLike | None, save_every: int,
             progress: bool) -> None:
    """Run ``mc`` to ``sweeps`` sweeps in all, resuming from and saving to ``checkpoint``."""
    if checkpoint is not None and Path(checkpoint).exists():
        mc.load(checkpoint)
    while mc.sweeps_done < sweeps:
        mc.run(min(save_every, sweeps - mc.sweeps_done), progress=progress)
        if checkpoint is not None:
            mc.save(checkpoint)


def _check_common(replicas: int, sweeps: int, save_every: int) -> None:
    for name, value in (("replicas", replicas), ("sweeps", sweeps), ("save_every", save_every)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise InputError(f"{name} must be a whole number ≥ 1, got {value!r}", field=name)


def _equilibrated_means(mc: SpinMonteCarlo, burn_in: int | str) -> tuple[np.ndarray, int]:
    stats = mc.statistics(burn_in=burn_in)
    return stats["net_spin_ratio"]["mean"], stats["burn_in"]


def relax_from_states(potential: Potential, lattice: Atoms, states: Sequence[str] = ("FM", "PM", "AFM"),
                      temperature_K: float = 300.0, replicas: int = 8, sweeps: int = 200, seed: int = 0,
                      burn_in: int | str = "auto", checkpoint: str | os.PathLike | None = None,
                      save_every: int = 50, progress: bool = False, **mc_options: Any) -> StateRelaxation:
    """Relax ``replicas`` copies of ``lattice`` from each initial state in ``states`` at one temperature.

    ``mc_options`` go to :class:`SpinMonteCarlo` (``move``, ``max_angle``, ``magnitude``, …).
    ``burn_in``: sweeps left out of each replica's mean (``"auto"``: the equilibration estimate of
    :meth:`SpinMonteCarlo.statistics`, the largest over all replicas).
    """
    _check_common(replicas, sweeps, save_every)
    states = list(states)
    if not states:
        raise InputError("give at least one initial state", field="states")
    kinds = [s for s in states for _ in range(int(replicas))]
    mc = SpinMonteCarlo(potential, [lattice] * len(kinds), temperature_K=temperature_K, initial=kinds, seed=seed,
                        **mc_options)
    _advance(mc, int(sweeps), checkpoint, int(save_every), progress)
    means, used = _equilibrated_means(mc, burn_in)
    final = {s: means[i * replicas:(i + 1) * replicas] for i, s in enumerate(states)}
    return StateRelaxation(states, float(temperature_K), final, used, mc.sweeps_done, mc)


def temperature_sweep(potential: Potential, lattice: Atoms, temperatures: Sequence[float], replicas: int = 4,
                      sweeps: int = 200, initial: str = "FM", seed: int = 0, burn_in: int | str = "auto",
                      checkpoint: str | os.PathLike | None = None, save_every: int = 50, progress: bool = False,
                      **mc_options: Any) -> TemperatureSweep:
    """|M|(T): ``replicas`` copies of ``lattice`` from ``initial`` at every temperature (K), all in one batch."""
    _check_common(replicas, sweeps, save_every)
    temperatures = np.asarray(temperatures, dtype=float).ravel()
    if len(temperatures) == 0 or not np.all(np.isfinite(temperatures)) or temperatures.min() < 0:
        raise InputError(f"temperatures must be finite and ≥ 0 K, got {temperatures.tolist()}", field="temperatures")
    per_replica = np.repeat(temperatures, int(replicas))
    mc = SpinMonteCarlo(potential, [lattice] * len(per_replica), temperature_K=per_replica, initial=initial,
                        seed=seed, **mc_options)
    _advance(mc, int(sweeps), checkpoint, int(save_every), progress)
    means, used = _equilibrated_means(mc, burn_in)
    return TemperatureSweep(temperatures, means.reshape(len(temperatures), int(replicas)), used, mc.sweeps_done, mc)


def _crossing(temperatures: np.ndarray, m: np.ndarray, level: float) -> float:
    """The lowest temperature where ``m`` (ordered by T) falls below ``level``, linearly interpolated;
    NaN when it never does, the first temperature when it starts below."""
    below = np.flatnonzero(m < level)
    if len(below) == 0:
        return float("nan")
    k = int(below[0])
    if k == 0:
        return float(temperatures[0])
    t0, t1, m0, m1 = temperatures[k - 1], temperatures[k], m[k - 1], m[k]
    return float(t0 + (m0 - level) / (m0 - m1) * (t1 - t0))


def drop_temperature(temperatures: Sequence[float], final: np.ndarray, level: float = 0.5, n_boot: int = 1000,
                     seed: int = 0) -> tuple[float, float]:
    """Where the mean |M| first falls below ``level`` (K, linear between grid temperatures), and its
    uncertainty (K): the standard deviation over ``n_boot`` bootstrap resamplings of the replicas at
    each temperature, combined with the grid's resolution (spacing / √12 where it drops).

    ``final``: ``(temperatures, replicas)`` equilibrated |M| per replica. NaN when |M| never drops
    below ``level`` in the range (the model stays ordered up to the highest temperature).
    """
    t = np.asarray(temperatures, float)
    final = np.asarray(final, float)
    if final.ndim != 2 or final.shape[0] != len(t):
        raise InputError(f"final must be (temperatures, replicas) = ({len(t)}, R), got {final.shape}", field="final")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}", field="level")
    order = np.argsort(t)
    t, final = t[order], final[order]
    best = _crossing(t, final.mean(axis=1), level)
    if np.isnan(best):
        return best, float("nan")
    rng = np.random.default_rng(seed)
    r = final.shape[1]
    picks = rng.integers(0, r, size=(n_boot, len(t), r))
    boot = np.take_along_axis(final[None], picks, axis=2).mean(axis=2)
    draws = np.array([_crossing(t, b, level) for b in boot])
    draws = draws[np.isfinite(draws)]
    k = int(np.searchsorted(t, best))
    spacing = float(t[min(k, len(t) - 1)] - t[max(k - 1, 0)]) if len(t) > 1 else 0.0
    spread = float(draws.std()) if len(draws) > 1 else 0.0
    return best, float(np.hypot(spread, spacing / np.sqrt(12)))

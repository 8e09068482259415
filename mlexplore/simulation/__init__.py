"""Simulations with a fitted potential: what a model is *used* for.

- :class:`ReplicaMD` (:mod:`.replica_md`): many MD replicas advanced in one batch — velocity Verlet
  or Langevin (BAOAB), one forward and backward pass of the potential per step.
- :class:`SpinMonteCarlo` (:mod:`.spin_monte_carlo`): Metropolis Monte Carlo of the atomic spins of
  a fixed lattice with a spin-aware potential (002 §4.3.1), many replicas and temperatures at once;
  :func:`initial_spins` (FM, AFM, PM), :func:`integrated_autocorrelation_time`, :func:`equilibration_sweep`.
- The thesis' two studies with it (:mod:`.spin_studies`): :func:`relax_from_states` (does the relaxed
  |M| remember the initial state? fig 4.20) and :func:`temperature_sweep` / :func:`drop_temperature`
  (|M|(T) and where it drops, fig 4.22).

The layer after ``training`` (it uses :class:`~mlexplore.training.Potential`), before ``viz``.
"""

from .replica_md import ReplicaMD
from .spin_monte_carlo import MOVES, SpinMonteCarlo, equilibration_sweep, initial_spins, integrated_autocorrelation_time
from .spin_studies import StateRelaxation, TemperatureSweep, drop_temperature, relax_from_states, temperature_sweep

__all__ = ["ReplicaMD", "SpinMonteCarlo", "initial_spins", "integrated_autocorrelation_time", "equilibration_sweep",
           "MOVES", "relax_from_states", "temperature_sweep", "drop_temperature", "StateRelaxation",
           "TemperatureSweep"]

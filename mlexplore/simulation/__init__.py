"""Simulations with a fitted potential: what a model is *used* for.

- :class:`ReplicaMD` (:mod:`.replica_md`): many MD replicas advanced in one batch — velocity Verlet
  or Langevin (BAOAB), one forward and backward pass of the potential per step.
- :class:`SpinMonteCarlo` (:mod:`.spin_monte_carlo`): Metropolis Monte Carlo of the atomic spins of
  a fixed lattice with a spin-aware potential (002 §4.3.1), many replicas and temperatures at once;
  :func:`initial_spins` (FM, AFM, PM), :func:`integrated_autocorrelation_time`, :func:`equilibration_sweep`.

The layer after ``training`` (it uses :class:`~mlexplore.training.Potential`), before ``viz``.
"""

from .replica_md import ReplicaMD
from .spin_monte_carlo import MOVES, SpinMonteCarlo, equilibration_sweep, initial_spins, integrated_autocorrelation_time

__all__ = ["ReplicaMD", "SpinMonteCarlo", "initial_spins", "integrated_autocorrelation_time", "equilibration_sweep",
           "MOVES"]

"""Random spin directions of the thesis' iron training states (seed 002 §3.3.3, eq 3.29–3.32).

``spin_directions("PM", n, rng)`` — unit vectors uniform on the sphere: polar angle
``θ = arccos(1 − U[0, 2))``, azimuth ``φ ~ U[0, 2π)`` (eq 3.32).

``spin_directions("perturbed-FM", n, rng, sigma=0.1)`` — small tilts from +z. The thesis writes
the polar angle as ``arccos(|N(0, σ)|)`` (eq 3.29); read literally that is ≈ 90° for the small σ it
uses (σ = 0.015 gives θ ≈ 89.3° on average: a state in the xy plane, not a perturbed FM one, and
σ = 0 would put every spin in the plane). Here, as the name and the thesis' figures of these states
say, ``cos θ = 1 − |N(0, σ)|``: σ = 0.015, 0.05, 0.1, 0.2 give mean tilts of about 8°, 15°, 21°, 30°,
with ``φ ~ U[0, 2π)``. σ = 0 is the perfect ferromagnet.

``spin_directions("FM", n)`` — all +z.

Used by :func:`mlexplore.dft.configs.fe_noncollinear_configurations` (the training states) and
:func:`mlexplore.simulation.initial_spins` (the Monte Carlo starting states), so both draw the
same distributions.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["spin_directions", "unit_vectors", "SPIN_STATES", "PERTURBED_FM_SIGMAS"]

SPIN_STATES = ("FM", "perturbed-FM", "PM")
#: The thesis' perturbation widths σ of the perturbed-FM states (002 §3.3.3).
PERTURBED_FM_SIGMAS = (0.015, 0.05, 0.1, 0.2)


def unit_vectors(cos_theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit vectors ``(n, 3)`` from polar cosines and azimuths (rad)."""
    sin_theta = np.sqrt(np.clip(1.0 - cos_theta ** 2, 0.0, None))
    return np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=1)


def spin_directions(state: str, n: int, rng: np.random.Generator | None = None,
                    sigma: float = 0.0) -> np.ndarray:
    """``n`` unit spin directions ``(n, 3)`` of a ``state`` in :data:`SPIN_STATES` (see the module
    docstring); ``sigma`` is the perturbed-FM width (dimensionless, on ``cos θ``)."""
    if state not in SPIN_STATES:
        raise InputError(f"spin state must be one of {', '.join(SPIN_STATES)}, got {state!r}", field="state")
    if n < 0:
        raise InputError(f"the number of spins must be ≥ 0, got {n}", field="n")
    if state == "FM" or (state == "perturbed-FM" and sigma == 0):
        return unit_vectors(np.ones(n), np.zeros(n))
    if sigma < 0:
        raise InputError(f"sigma must be ≥ 0, got {sigma}", field="sigma")
    rng = np.random.default_rng() if rng is None else rng
    if state == "PM":
        cos_theta = 1.0 - rng.uniform(0.0, 2.0, n)
    else:
        cos_theta = np.clip(1.0 - np.abs(rng.normal(0.0, sigma, n)), -1.0, 1.0)
    return unit_vectors(cos_theta, rng.uniform(0.0, 2 * np.pi, n))

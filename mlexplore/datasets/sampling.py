"""Sampling binary site occupations per composition (seed 000 §3.1).

For each composition (number ``k`` of B atoms on ``n_sites`` sites): when
``C(n_sites, k)`` configurations or fewer than ``n_per_composition`` exist,
all of them are taken; otherwise ``n_per_composition`` distinct ones are drawn
at random. Symmetry-equivalent configurations count as distinct, as in the
paper. For 32 sites and 1000 per composition that gives 28 058 configurations.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from math import comb

import numpy as np

from ..errors import InputError

__all__ = ["sample_occupations"]


def _all_combinations(n_sites: int, k: int) -> np.ndarray:
    occ = np.zeros((comb(n_sites, k), n_sites), dtype=bool)
    for row, sites in enumerate(itertools.combinations(range(n_sites), k)):
        occ[row, list(sites)] = True
    return occ


def _random_distinct(n_sites: int, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    chosen: dict[bytes, np.ndarray] = {}
    while len(chosen) < n:
        batch = max(2 * (n - len(chosen)), 16)
        picks = np.argsort(rng.random((batch, n_sites)), axis=1)[:, :k]
        occ = np.zeros((batch, n_sites), dtype=bool)
        np.put_along_axis(occ, picks, True, axis=1)
        for row in occ:
            key = np.packbits(row).tobytes()
            if key not in chosen:
                chosen[key] = row
                if len(chosen) == n:
                    break
    return np.array(list(chosen.values()))


def sample_occupations(
    n_sites: int,
    n_per_composition: int,
    compositions: Sequence[int] | None = None,
    seed: int | np.random.Generator = 0,
) -> list[tuple[int, np.ndarray]]:
    """Binary occupations per composition.

    Parameters
    ----------
    n_sites:
        Number of lattice sites.
    n_per_composition:
        Most configurations per composition.
    compositions:
        Numbers of B atoms to sample (default: every ``k`` in ``0 … n_sites``).
    seed:
        Seed or generator; the same seed gives the same configurations.

    Returns
    -------
    ``[(k, occupations), …]`` with ``occupations`` a boolean array of shape
    ``(m, n_sites)``, True where a site holds element B.
    """
    if n_sites < 1 or n_per_composition < 1:
        raise InputError(f"need n_sites ≥ 1 and n_per_composition ≥ 1, got {n_sites}, {n_per_composition}")
    ks = range(n_sites + 1) if compositions is None else compositions
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = []
    for k in ks:
        if not 0 <= k <= n_sites:
            raise InputError(f"composition {k} is outside 0…{n_sites}", field="compositions")
        total = comb(n_sites, k)
        if total <= n_per_composition:
            out.append((k, _all_combinations(n_sites, k)))
        else:
            out.append((k, _random_distinct(n_sites, k, n_per_composition, rng)))
    return out

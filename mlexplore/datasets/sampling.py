"""Sampling binary site occupations per composition (seed 000 §3.1).

For each composition (number ``k`` of B atoms on ``n_sites`` sites): when
``C(n_sites, k)`` configurations or fewer than ``n_per_composition`` exist,
all of them are taken; otherwise ``n_per_composition`` distinct ones are drawn
at random. Symmetry-equivalent configurations count as distinct, as in the
paper. For 32 sites and 1000 per composition that gives 28 058 configurations.

On a small cell most of those are copies of one another under the cell's
symmetry (a single B atom on 16 BCC sites: 16 occupations, one structure).
Give ``permutations=lattice_permutations(template)`` to count and sample
symmetry classes instead: every sampled occupation is then a different
structure, and a structure never sits in both the training and the test set
under two names. :func:`distinct_occupations` and :func:`count_classes` work
with the same permutations.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from math import comb

import numpy as np

from ..errors import InputError

#: Enumerate every configuration of a composition (to find its symmetry classes) up to this many.
ENUMERATE_UP_TO = 200_000

__all__ = ["sample_occupations", "lattice_permutations", "canonical_keys", "distinct_occupations",
           "count_classes"]


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


def _cubic_rotations() -> np.ndarray:
    """The 48 operations of the cubic point group (signed permutation matrices)."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            r = np.zeros((3, 3))
            r[range(3), perm] = signs
            out.append(r)
    return np.array(out)


def lattice_permutations(atoms, tol: float = 1e-3) -> np.ndarray:
    """Site permutations of a periodic cell under its symmetry operations with a cubic rotation part.

    Each operation ``x → R x + t`` (R one of the 48 cubic point operations in Cartesian
    coordinates, t taking site 0 to any site) that maps every site onto a site (within
    ``tol`` Å, through the periodic boundaries) gives one permutation ``p``: site ``i`` goes to
    site ``p[i]``. For a cubic supercell of a cubic Bravais lattice that is the whole space
    group of the cell: 768 permutations for 16 BCC sites (2×2×2 conventional), 1536 for 32 FCC
    sites. The identity is always among them. Returns an int array ``(n_ops, n_sites)``.
    """
    positions = np.asarray(atoms.positions, dtype=float)
    cell = np.asarray(atoms.cell.array, dtype=float)
    n = len(positions)
    if n == 0:
        raise InputError("the cell has no sites", field="atoms")
    inverse = np.linalg.inv(cell)
    frac = positions @ inverse
    found = {}
    for r in _cubic_rotations():
        rotated = positions @ r.T
        for j in range(n):
            moved = (rotated + (positions[j] - rotated[0])) @ inverse
            d = moved[:, None, :] - frac[None, :, :]
            d -= np.round(d)
            dist = np.linalg.norm(d @ cell, axis=2)
            target = np.argmin(dist, axis=1)
            if (dist[np.arange(n), target] < tol).all() and len(set(target.tolist())) == n:
                found[target.tobytes()] = target
    return np.array(list(found.values()))


def canonical_keys(occupations: np.ndarray, permutations: np.ndarray) -> np.ndarray:
    """One key per occupation (rows of ``occupations``, True/1 where a site holds element B)
    that is equal for two occupations exactly when a permutation maps one onto the other:
    the smallest code of all images. Integer codes (≤ 64 sites) or byte strings."""
    occ = np.asarray(occupations).astype(bool)
    if occ.ndim == 1:
        occ = occ[None]
    perms = np.asarray(permutations)
    if perms.ndim != 2 or perms.shape[1] != occ.shape[1]:
        raise InputError(f"permutations of shape {perms.shape} do not fit occupations of {occ.shape[1]} sites",
                         field="permutations")
    inverse = np.argsort(perms, axis=1)  # image[p[i]] = occ[i]  ⇔  image = occ[inverse]
    n = occ.shape[1]
    keys = []
    chunk = max(1, 2 ** 22 // (len(perms) * n))  # ~4 MB of images at a time
    for start in range(0, len(occ), chunk):
        packed = np.packbits(occ[start:start + chunk][:, inverse], axis=2)  # (m, n_ops, ⌈n/8⌉) bytes
        if n <= 64:  # each image as one unsigned 64-bit code
            padded = np.zeros(packed.shape[:2] + (8,), dtype=np.uint8)
            padded[..., :packed.shape[2]] = packed
            keys.append(padded.view(np.uint64)[..., 0].min(axis=1))
        else:
            keys.append(np.array([min(bytes(row) for row in m) for m in packed], dtype=object))
    return np.concatenate(keys)


def distinct_occupations(occupations: np.ndarray, permutations: np.ndarray) -> np.ndarray:
    """Indices of the first occupation of each symmetry class, in their order."""
    keys = canonical_keys(occupations, permutations)
    first = {}
    for i, key in enumerate(keys.tolist()):
        first.setdefault(key, i)
    return np.array(sorted(first.values()), dtype=np.int64)


def count_classes(n_sites: int, k: int, permutations: np.ndarray) -> int:
    """Number of symmetry-distinct ways to put ``k`` B atoms on the sites (Burnside's lemma:
    the mean over the permutations of the occupations each leaves unchanged)."""
    perms = np.ascontiguousarray(permutations, dtype=np.int64)
    if perms.ndim != 2 or perms.shape[1] != n_sites:
        raise InputError(f"permutations of shape {perms.shape} do not fit {n_sites} sites", field="permutations")
    if not 0 <= k <= n_sites:
        raise InputError(f"composition {k} is outside 0…{n_sites}", field="k")
    return _class_counts(perms.tobytes(), perms.shape)[k]


@functools.lru_cache(maxsize=16)
def _class_counts(perms_bytes: bytes, shape: tuple[int, int]) -> tuple[int, ...]:
    perms = np.frombuffer(perms_bytes, dtype=np.int64).reshape(shape)
    n_sites = shape[1]
    total = np.zeros(n_sites + 1, dtype=object)
    for p in perms:
        # an unchanged occupation fills whole cycles of p: the coefficients of Π (1 + x^length)
        seen, poly = np.zeros(n_sites, bool), np.zeros(n_sites + 1, dtype=object)
        poly[0] = 1
        for start in range(n_sites):
            if seen[start]:
                continue
            length, i = 0, start
            while not seen[i]:
                seen[i] = True
                i = int(p[i])
                length += 1
            shifted = np.zeros_like(poly)
            shifted[length:] = poly[:n_sites + 1 - length]
            poly = poly + shifted
        total += poly
    return tuple(int(t // len(perms)) for t in total)


def _class_sample(n_sites: int, k: int, n: int, permutations: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """``n`` symmetry-distinct occupations with ``k`` B atoms (all classes if fewer exist), at random."""
    available = count_classes(n_sites, k, permutations)
    want = min(n, available)
    if comb(n_sites, k) <= ENUMERATE_UP_TO:
        # walk all occupations in random order; each new one claims its whole orbit
        occ = _all_combinations(n_sites, k)[rng.permutation(comb(n_sites, k))]
        inverse = np.argsort(np.asarray(permutations), axis=1)
        codes = [bytes(row) for row in np.packbits(occ, axis=1)]
        seen: set[bytes] = set()
        picked = []
        for i, code in enumerate(codes):
            if code in seen:
                continue
            picked.append(i)
            if len(picked) == want:
                break
            seen.update(bytes(row) for row in np.packbits(occ[i][inverse], axis=1))
        return occ[picked]
    chosen: dict = {}
    for _ in range(1000):
        batch = _random_distinct(n_sites, k, min(4 * want, comb(n_sites, k)), rng)
        for key, row in zip(canonical_keys(batch, permutations).tolist(), batch):
            if key not in chosen:
                chosen[key] = row
                if len(chosen) == want:
                    return np.array(list(chosen.values()))
    raise InputError(f"found only {len(chosen)} of {want} symmetry classes with {k} B atoms by random draws; "
                     "ask for fewer per composition", field="n_per_composition")


def sample_occupations(
    n_sites: int,
    n_per_composition: int,
    compositions: Sequence[int] | None = None,
    seed: int | np.random.Generator = 0,
    permutations: np.ndarray | None = None,
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
    permutations:
        Site permutations of the cell's symmetry (:func:`lattice_permutations`): sample
        symmetry classes instead of occupations (all when ≤ ``n_per_composition`` exist),
        one occupation each.

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
        if permutations is not None:
            out.append((k, _class_sample(n_sites, k, n_per_composition, permutations, rng)))
        elif total <= n_per_composition:
            out.append((k, _all_combinations(n_sites, k)))
        else:
            out.append((k, _random_distinct(n_sites, k, n_per_composition, rng)))
    return out

"""Radial distribution functions: total and partial (element-pair), averaged over a dataset.

For a periodic structure with N atoms in volume V (density ρ = N/V),

    g(r) = n(r) / (N ρ 4π r² Δr),

where n(r) counts ordered pairs (i, j ≠ i, periodic images included) with
distance in [r, r + Δr). The partial ``g_ab`` counts pairs with i of element a
and j of element b and normalises with ``N_a ρ_b``, so every g → 1 at large r
in a homogeneous system, and the coordination number up to R is
``∫₀^R 4π r² ρ_b g_ab(r) dr``. Over a dataset the per-structure g are averaged
with weights N (resp. N_a), i.e. as one large sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.dataset import StructureDataset
from ..errors import InputError

__all__ = ["RDF", "rdf", "PairDensity", "pair_density"]


@dataclass
class RDF:
    """Result of :func:`rdf`. ``r``: bin centres (Å); ``g``: ``{"total" or "A-B": g(r)}``;
    ``density``: number density per element pair's second element (Å⁻³) used for coordination."""

    r: np.ndarray
    edges: np.ndarray
    g: dict[str, np.ndarray]
    density: dict[str, float]

    def coordination(self, r_max: float, pair: str = "total") -> float:
        """Mean number of neighbours (of the pair's second element) within ``r_max`` Å."""
        sel = self.edges[1:] <= r_max + 1e-12
        shell = 4 * np.pi * self.r ** 2 * np.diff(self.edges)
        return float(np.sum(self.density[pair] * self.g[pair][sel] * shell[sel]))

    def peaks(self, pair: str = "total", min_height: float = 1.0) -> np.ndarray:
        """Positions (Å) of the local maxima of g above ``min_height``
        (:func:`mlexplore.descriptors.density_peaks`, the package's one peak finder)."""
        from ..descriptors.environment import density_peaks

        if pair not in self.g:
            raise InputError(f"no pair {pair!r} in this g(r) (it has {list(self.g)})", field="pair")
        return density_peaks(self.r, self.g[pair], min_height=min_height)


@dataclass
class PairDensity:
    """A pair-distance density to draw beside a basis: ``r`` bin centres (Å), ``g`` values, ``name``
    what it is (``"g(r)"``, ``"g(r), periodic structures"`` or ``"pair density (scaled)"``)."""

    r: np.ndarray
    g: np.ndarray
    name: str


def pair_density(dataset: StructureDataset, r_max: float = 9.0, bin_width: float = 0.02) -> PairDensity:
    """The total g(r) of the dataset's periodic structures (:func:`rdf`) or, when none is periodic
    (clusters, molecules: no volume), the pair-distance density h(r)/r²
    (:func:`mlexplore.descriptors.distance_histogram`) scaled to a maximum of 1. ``r_max``,
    ``bin_width`` in Å."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    from ..descriptors.environment import distance_histogram

    if len(dataset) == 0:
        raise InputError("no structures", field="dataset")
    periodic = np.flatnonzero(dataset.pbc.all(axis=1))
    if len(periodic):
        res = rdf(dataset[periodic], r_max=r_max, bin_width=bin_width, partial=False)
        name = "g(r)" if len(periodic) == len(dataset) else "g(r), periodic structures"
        return PairDensity(res.r, res.g["total"], name)
    r, h = distance_histogram(dataset, r_max=r_max, bin_width=bin_width)
    return PairDensity(r, h / max(float(h.max()), 1e-300), "pair density (scaled)")


def rdf(dataset: StructureDataset, r_max: float = 6.0, bin_width: float = 0.02, partial: bool = True) -> RDF:
    """Total (and partial) g(r) of the periodic structures of ``dataset`` (see module docstring)."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    import vesin

    if r_max <= 0 or bin_width <= 0:
        raise InputError("r_max and bin_width must be positive", field="r_max" if r_max <= 0 else "bin_width")
    if len(dataset) == 0:
        raise InputError("no structures", field="dataset")
    if not dataset.pbc.all():
        s = int(np.flatnonzero(~dataset.pbc.all(axis=1))[0])
        raise InputError("g(r) needs a volume: structure is not periodic in all directions (take the "
                         "bulk structures, e.g. dataset.filter(tag=...))", structure=s, field="pbc")
    edges = np.arange(0.0, r_max + bin_width / 2, bin_width)
    centres = 0.5 * (edges[1:] + edges[:-1])
    shell = 4 * np.pi * centres ** 2 * np.diff(edges)
    symbols, counts = dataset.element_counts()
    pairs = ["total"] + ([f"{a}-{b}" for a in symbols for b in symbols] if partial and len(symbols) > 1 else [])
    hist = {p: np.zeros(len(centres)) for p in pairs}
    norm = {p: 0.0 for p in pairs}  # Σ over structures of N_a ρ_b
    dens_num = {p: 0.0 for p in pairs}
    volume_total = 0.0
    species_index = {s: k for k, s in enumerate(symbols)}
    from ase.data import chemical_symbols

    el = np.array([species_index[chemical_symbols[z]] for z in dataset.numbers])
    nl = vesin.NeighborList(cutoff=float(r_max), full_list=True)
    for s in range(len(dataset)):  # loop over structures; all pairs of a structure at once
        sl = dataset.atom_slice(s)
        vol = abs(np.linalg.det(dataset.cells[s]))
        n = sl.stop - sl.start
        i, j, d = nl.compute(points=dataset.positions[sl], box=dataset.cells[s], periodic=True, quantities="ijd")
        hist["total"] += np.histogram(d, bins=edges)[0]
        norm["total"] += n * n / vol
        dens_num["total"] += n
        volume_total += vol
        if len(pairs) > 1:
            e = el[sl]
            for a, sa in enumerate(symbols):
                for b, sb in enumerate(symbols):
                    key = f"{sa}-{sb}"
                    mask = (e[i] == a) & (e[j] == b)
                    hist[key] += np.histogram(d[mask], bins=edges)[0]
                    norm[key] += counts[s, a] * counts[s, b] / vol
                    dens_num[key] += counts[s, b]
    g = {p: hist[p] / (norm[p] * shell) if norm[p] > 0 else np.zeros_like(centres) for p in pairs}
    density = {p: dens_num[p] / volume_total for p in pairs}
    return RDF(r=centres, edges=edges, g=g, density=density)

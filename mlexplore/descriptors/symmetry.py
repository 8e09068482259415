"""`SymmetryFunctions`: per-atom descriptors as a differentiable torch module.

    sf = SymmetryFunctions([G2(1.5, 2.0), G4(0.03, 1, -1)], cutoff=6.0, elements=["Cu", "Au"])
    G = sf.compute(dataset)                      # (N_atoms, n_features) tensor
    sf.feature_names                             # one readable name per column

    batch = sf.prepare(dataset[:10])             # tensors; positions may require grad
    batch["positions"].requires_grad_(True)
    E = model(sf(**batch)).sum()
    F = -torch.autograd.grad(E, batch["positions"])[0]   # forces, eV/Å

Columns: radial terms first, then angular, then spin; each family in the order
the terms were given. Element-resolved (``elements`` given): the radial block
repeats per neighbour element (in the order of ``elements``), the angular block
per unordered neighbour-element pair (e1, e2), e1 ≤ e2 in that order — the
same featurisation for every central element (002 §3.2.1). Spin terms are not
element-resolved. With ``elements=None`` every block is element-agnostic.

Everything is vectorised over all pairs and triplets of a batch of structures;
``compute`` works through large datasets in chunks of structures so memory
stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from torch import nn

from ..data.dataset import StructureDataset
from ..data.validate import (OVERLAP_HINT, check_limit, check_pair_distances, check_structures,
                             pair_limits)
from ..errors import InputError
from .angular_blocks import FAMILY_CODES, angular_moments, moment_weights, neighbor_blocks, safe_sqrt
from .angular_tensors import MAX_TENSOR_POWER, tensor_moments
from .compiled import compiled_or_eager
from .cutoffs import cutoff_function as _cutoff_by_name
from .neighbors import Neighbors, neighbor_pairs, pair_vectors, triplets
from .terms import (G2, G4, G5, G9, GaussFourierAngular001, GaussFourierAngular002, GaussFourierBiRadial,
                    GaussFourierRadial, SpinGaussPair, SpinGaussSelf, SpinLocal, SpinPair, SpinSelf, Term)
from .triplet_kernel import triplet_bins, triplet_geometry

__all__ = ["SymmetryFunctions", "chunk_bounds", "neighbor_reach", "structure_tensors"]

_RADIAL = (G2, GaussFourierRadial)
_ANGULAR = (G4, G5, G9, GaussFourierBiRadial, GaussFourierAngular001, GaussFourierAngular002)
_SPIN = (SpinSelf, SpinPair, SpinGaussSelf, SpinGaussPair, SpinLocal)


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """|v| along the last axis, with gradient 0 (not NaN) at v = 0."""
    return safe_sqrt((v * v).sum(-1))


def _safe_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b, 0 where b == 0 (gradients stay finite)."""
    nz = b != 0
    return torch.where(nz, a / torch.where(nz, b, torch.ones_like(b)), torch.zeros_like(a))


def _g2_values(d: torch.Tensor, eta: torch.Tensor, rs: torch.Tensor, rc: torch.Tensor, fc) -> torch.Tensor:
    """G2 of every pair and term, ``exp(−η (R_ij − r_s)²) f_c(R_ij)``, shape ``(P, n_terms)``
    (one fused loop under ``torch.compile``)."""
    return torch.exp(-eta * (d[:, None] - rs) ** 2) * fc(d, rc)[:, None]


def _window(d: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Fourier-spline windows for distances ``d (M, 1)`` and term parameters ``(T,)`` → ``(M, T)``."""
    lo = p["rs"] - p["eps_down"]
    hi = p["rs"] + p["eps_up"]
    u_down = (math.pi * (d - lo) / (2 * p["eps_down"])).clamp(0, math.pi / 2)
    u_up = (math.pi * (d - hi) / (2 * p["eps_up"])).clamp(-math.pi / 2, 0)
    down = 1 - torch.cos(u_down) ** p["xi_down"]
    up = 1 - torch.cos(u_up) ** p["xi_up"]
    zero = torch.zeros_like(down)
    return torch.where((d >= lo) & (d < p["rs"]), down, torch.where((d >= p["rs"]) & (d < hi), up, zero))


def _gf_radial(d: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Gauss-Fourier radial parts ``exp(−η (d − R_sr)²) f_B(d)`` → ``(M, T)``."""
    d = d[:, None]
    return torch.exp(-p["eta"] * (d - p["centre"]) ** 2) * _window(d, p)


class SymmetryFunctions(nn.Module):
    """Atom-centred symmetry functions (BP, Gauss-Fourier, spin) as an ``nn.Module``.

    Parameters
    ----------
    terms:
        Term specifications (:mod:`mlexplore.descriptors.terms`), in column order
        within each family.
    cutoff:
        R_c in Å for the BP terms and the spin terms (the Gauss-Fourier terms
        carry their own window; the neighbour list covers the larger of the two).
    cutoff_function:
        ``"cosine"`` (BP), ``"polynomial"`` (n2p2) or ``"tanh3"``.
    elements:
        Chemical symbols for element-resolved features, or None for
        element-agnostic ones.
    neighbor_method:
        ``"auto"`` (torch on CUDA, vesin on CPU), ``"vesin"`` or ``"torch"``.
    compile:
        Fuse the BP angular sums (the expensive part) with ``torch.compile``:
        the same numbers, several times faster on large batches, but the first
        call of a process compiles for ~10–60 s (cached on disk afterwards).
        Falls back to eager, with a warning, where compilation is not available.
    """

    def __init__(
        self,
        terms: Sequence[Term],
        cutoff: float = 6.0,
        cutoff_function: str = "cosine",
        elements: Sequence[str] | None = None,
        neighbor_method: str = "auto",
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not terms:
            raise InputError("a descriptor needs at least one term", field="terms")
        if not (cutoff > 0 and math.isfinite(cutoff)):
            raise InputError(f"the cutoff R_c must be positive, got {cutoff}", field="cutoff")
        for t in terms:
            if not isinstance(t, _RADIAL + _ANGULAR + _SPIN):
                raise InputError(f"not a descriptor term: {t!r}", field="terms")
        self.cutoff = float(cutoff)
        self.cutoff_name = cutoff_function
        self._fc = _cutoff_by_name(cutoff_function)
        if elements is not None:
            elements = list(elements)
            unknown = [e for e in elements if e not in atomic_numbers]
            if unknown:
                raise InputError(f"unknown element(s) {unknown}", field="elements")
            if len(set(elements)) != len(elements):
                raise InputError(f"elements listed twice: {elements}", field="elements")
        self.elements = elements
        self.neighbor_method = neighbor_method
        self.compile = bool(compile)
        self.radial = [t for t in terms if isinstance(t, _RADIAL)]
        self.angular = [t for t in terms if isinstance(t, _ANGULAR)]
        self.spin = [t for t in terms if isinstance(t, _SPIN)]
        self.neighbor_cutoff = neighbor_reach(terms, self.cutoff)
        # element lookup: atomic number -> column block (−1 = not listed)
        lookup = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
        if elements is not None:
            for k, e in enumerate(elements):
                lookup[atomic_numbers[e]] = k
        self.register_buffer("_element_index", lookup, persistent=False)
        n_el = len(elements) if elements is not None else 1
        pair_index = torch.zeros((n_el, n_el), dtype=torch.long)
        k = 0
        for a in range(n_el):
            for b in range(a, n_el):
                pair_index[a, b] = pair_index[b, a] = k
                k += 1
        self.register_buffer("_pair_index", pair_index, persistent=False)
        self._params: dict[str, dict[str, torch.Tensor]] = {}
        self._build_params()

    # ------------------------------------------------------------------ setup
    def _family_params(self, cls, attrs: Sequence[str], source: list) -> None:
        chosen = [t for t in source if type(t) is cls]
        if chosen:
            self._params[cls.__name__] = {
                a: torch.tensor([float(getattr(t, a)) for t in chosen], dtype=torch.float64) for a in attrs}

    def _gf_params(self, terms: list[GaussFourierRadial]) -> dict[str, torch.Tensor]:
        return {
            "eta": torch.tensor([t.eta for t in terms], dtype=torch.float64),
            "centre": torch.tensor([t.centre for t in terms], dtype=torch.float64),
            "rs": torch.tensor([t.rs for t in terms], dtype=torch.float64),
            "eps_down": torch.tensor([t.eps_down for t in terms], dtype=torch.float64),
            "eps_up": torch.tensor([t.eps_up for t in terms], dtype=torch.float64),
            "xi_down": torch.tensor([float(t.xi_down) for t in terms], dtype=torch.float64),
            "xi_up": torch.tensor([float(t.xi_up) for t in terms], dtype=torch.float64),
        }

    def _build_params(self) -> None:
        self._family_params(G2, ("eta", "rs"), self.radial)
        self._family_params(G4, ("eta", "zeta", "lam"), self.angular)
        self._family_params(G5, ("eta", "zeta", "lam"), self.angular)
        self._family_params(G9, ("eta", "zeta", "lam", "rs"), self.angular)
        gfr = [t for t in self.radial if isinstance(t, GaussFourierRadial)]
        if gfr:
            self._params["GaussFourierRadial"] = self._gf_params(gfr)
        for cls in (GaussFourierBiRadial, GaussFourierAngular001, GaussFourierAngular002):
            chosen = [t for t in self.angular if type(t) is cls]
            if chosen:
                p = {"ij": self._gf_params([t.ij for t in chosen]), "ik": self._gf_params([t.ik for t in chosen])}
                if cls is not GaussFourierBiRadial:
                    p["eta_theta"] = torch.tensor([t.eta_theta for t in chosen], dtype=torch.float64)
                    p["cos_s"] = torch.cos(torch.tensor([t.theta_s for t in chosen], dtype=torch.float64))
                    p["sin_s"] = torch.sin(torch.tensor([t.theta_s for t in chosen], dtype=torch.float64))
                self._params[cls.__name__] = p

    def _p(self, name: str, like: torch.Tensor) -> Any:
        def move(x):
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            return x.to(device=like.device, dtype=like.dtype)

        return move(self._params[name])

    # ------------------------------------------------------------- metadata
    @property
    def n_element_blocks(self) -> int:
        return 1 if self.elements is None else len(self.elements)

    @property
    def element_pairs(self) -> list[tuple[str, str]]:
        """Neighbour-element pairs of the angular blocks, in column order."""
        if self.elements is None:
            return [("*", "*")]
        e = self.elements
        return [(e[a], e[b]) for a in range(len(e)) for b in range(a, len(e))]

    @property
    def n_features(self) -> int:
        return (len(self.radial) * self.n_element_blocks + len(self.angular) * len(self.element_pairs)
                + len(self.spin))

    @property
    def feature_names(self) -> list[str]:
        """One readable name per column, e.g. ``G2(eta=1.5, rs=2)[Fe]``."""
        names = []
        blocks = [None] if self.elements is None else self.elements
        for e in blocks:
            names += [t.label() + ("" if e is None else f"[{e}]") for t in self.radial]
        for a, b in self.element_pairs:
            names += [t.label() + ("" if self.elements is None else f"[{a}-{b}]") for t in self.angular]
        names += [t.label() for t in self.spin]
        return names

    @property
    def feature_families(self) -> list[str]:
        """``"radial"``, ``"angular"`` or ``"spin"`` for every column."""
        return (["radial"] * (len(self.radial) * self.n_element_blocks)
                + ["angular"] * (len(self.angular) * len(self.element_pairs)) + ["spin"] * len(self.spin))

    @property
    def terms(self) -> list[Term]:
        return self.radial + self.angular + self.spin

    def extra_repr(self) -> str:
        return (f"{len(self.radial)} radial, {len(self.angular)} angular, {len(self.spin)} spin terms; "
                f"R_c={self.cutoff} Å ({self.cutoff_name}); elements={self.elements}; "
                f"{self.n_features} features")

    # ---------------------------------------------------------------- input
    def prepare(self, data: StructureDataset | Atoms | Sequence[Atoms], device: Any = "cpu",
                dtype: torch.dtype = torch.float64, min_distance: float | None = None,
                check: bool = True) -> dict[str, torch.Tensor]:
        """Tensors for :meth:`forward`: positions, numbers, cells, pbc, n_atoms (+ magmoms).

        The structures are checked first (:func:`~mlexplore.data.check_structures`): non-finite
        positions or cells, a singular periodic cell and overlapping atoms — two atoms, periodic
        images included, closer than ``min_distance`` Å — are an
        :class:`~mlexplore.errors.InputError` naming the structure and the atoms. ``min_distance``:
        None (default) for half the sum of the two elements' covalent radii
        (:data:`~mlexplore.data.COVALENT_FRACTION`), a distance in Å, or 0 for no overlap check;
        ``check=False`` skips all of it (structures checked already).
        """
        ds = StructureDataset.coerce(data, "data")
        if check:
            check_structures(ds, min_distance, hint=OVERLAP_HINT)
        return structure_tensors(ds, device, dtype, moments="required" if self.spin else "none")

    def neighbor_list(self, batch: dict[str, torch.Tensor], min_distance: float | None = None,
                      first_structure: int = 0, skin: float = 0.0) -> Neighbors:
        """The neighbour list :meth:`forward` would build for ``batch`` (a :meth:`prepare` dict),
        armed with the overlap check of :func:`~mlexplore.data.check_structures`: pass it on as
        ``neighbors`` (in ``batch`` for :class:`~mlexplore.models.BPNN`) and the first
        :meth:`forward` that uses it checks the pair distances it computes anyway, before any
        feature: an :class:`~mlexplore.errors.InputError` names the structure and the atoms of
        a pair closer than the limit. No second neighbour search, no second distance computation
        (a comparison of the distances with the largest limit is all it adds).

        ``min_distance``: as in :meth:`prepare` (None: covalent radii, a distance in Å, 0: no
        check); ``first_structure``: index of the batch's first structure, for the message. A
        limit beyond the descriptor's reach is checked here, with a search of its own.
        Non-finite positions and singular cells are refused by the neighbour search itself;
        :meth:`prepare` (or :func:`~mlexplore.data.check_structures`) names them better.

        ``skin`` (Å): build the list for the reach plus a skin, to be kept over the steps of a
        trajectory while no atom moves more than half of it (:class:`~.verlet.VerletList`).
        """
        check_limit(min_distance)
        if not (isinstance(skin, (int, float)) and 0 <= skin < math.inf):
            raise InputError(f"skin must be a distance ≥ 0 Å, got {skin!r}", field="skin")
        positions, cells, n_atoms = batch["positions"], batch["cells"], batch["n_atoms"]
        nb = neighbor_pairs(positions, cells, batch["pbc"], n_atoms, self.neighbor_cutoff + skin,
                            method=self.neighbor_method)
        nb.skin = float(skin)
        if min_distance is not None and float(min_distance) == 0:
            return nb
        numbers = batch["numbers"].detach().cpu().numpy()
        reach = float(pair_limits(numbers, numbers, min_distance).max()) if len(numbers) else 0.0
        if reach >= nb.cutoff - nb.skin:  # the list does not reach the limit: a search of its own
            ds = StructureDataset(numbers, positions.detach().cpu().double().numpy(),
                                  cells.detach().cpu().double().numpy(), batch["pbc"].detach().cpu().numpy(),
                                  n_atoms.detach().cpu().numpy())
            try:
                check_structures(ds, min_distance, hint=OVERLAP_HINT)
            except InputError as exc:
                raise InputError(exc.problem, structure=None if exc.structure is None
                                 else exc.structure + first_structure, field=exc.field) from None
            return nb
        offsets = np.concatenate([[0], np.cumsum(n_atoms.detach().cpu().numpy())])
        nb.cache["overlap_check"] = (reach, numbers, offsets, min_distance, int(first_structure))
        return nb

    # --------------------------------------------------------------- forward
    def forward(self, positions: torch.Tensor, numbers: torch.Tensor, cells: torch.Tensor, pbc: torch.Tensor,
                n_atoms: torch.Tensor, magmoms: torch.Tensor | None = None,
                neighbors: Neighbors | None = None) -> torch.Tensor:
        """Features ``(N, n_features)`` for a batch (see module docstring for the layout).

        ``positions`` (Å) and ``magmoms`` (μ_B; shape ``(N,)`` collinear or
        ``(N, 3)``) may require grad. ``neighbors`` can be passed to reuse a list.
        """
        N = positions.shape[0]
        if numbers.shape[0] != N:
            raise InputError(f"{numbers.shape[0]} atomic numbers for {N} positions", field="numbers")
        if self.spin and magmoms is None:
            raise InputError("spin terms need per-atom magnetic moments (magmoms)", field="magmoms")
        batch = torch.repeat_interleave(torch.arange(len(n_atoms), device=positions.device), n_atoms)
        if self.elements is not None:
            el = self._element_index.to(positions.device)[numbers]
            if (el < 0).any():
                z = int(numbers[el < 0][0])
                raise InputError(f"element {chemical_symbols[z]} is not among the descriptor's elements "
                                 f"{self.elements}", field="elements")
        else:
            el = torch.zeros_like(numbers)
        if neighbors is None:
            neighbors = neighbor_pairs(positions, cells, pbc, n_atoms, self.neighbor_cutoff,
                                       method=self.neighbor_method)
        vec, d = _pair_geometry(positions, cells, batch, neighbors)
        pending = neighbors.cache.pop("overlap_check", None)  # armed by neighbor_list(): once per list
        if pending is not None:
            _check_overlaps(neighbors, d, *pending)
        blocks = []
        if self.radial:
            blocks.append(self._radial(N, neighbors, el, d))
        if self.angular:
            blocks.append(self._angular(N, neighbors, el, vec, d))
        if self.spin:
            blocks.append(self._spin(N, neighbors, vec, d, magmoms.to(positions.dtype)))
        return torch.cat(blocks, dim=1)

    def _radial(self, N, nb, el, d):
        n_el = self.n_element_blocks
        values = {}
        if "G2" in self._params:
            p = self._p("G2", d)
            rc = torch.tensor(self.cutoff, dtype=d.dtype, device=d.device)
            g2 = compiled_or_eager(_g2_values, _g2_values, self.compile, d.device.type)
            values[G2] = g2(d, p["eta"], p["rs"], rc, self._fc)
        if "GaussFourierRadial" in self._params:
            values[GaussFourierRadial] = _gf_radial(d, self._p("GaussFourierRadial", d))
        v = _in_order(self.radial, values)
        key = nb.centers * n_el + el[nb.neighbors]
        out = torch.zeros((N * n_el, v.shape[1]), dtype=d.dtype, device=d.device).index_add(0, key, v)
        return out.view(N, n_el * v.shape[1])

    def _angular(self, N, nb, el, vec, d):
        n_pairs = len(self.element_pairs)
        pair_element = el[nb.neighbors]
        pair_index = self._pair_index.to(d.device)
        outs = {}
        bp = [cls for cls in (G4, G5, G9) if cls.__name__ in self._params]
        integer = {cls: bool((self._params[cls.__name__]["zeta"] == torch.round(self._params[cls.__name__]["zeta"]))
                             .all()) for cls in bp}
        if any(integer.values()):
            layout = self._blocks(N, nb, el, d)
            for cls in bp:
                if integer[cls]:
                    outs[cls] = self._bp_blocks(cls, self._p(cls.__name__, d), layout, vec, d)
        gf = [c for c in (GaussFourierBiRadial, GaussFourierAngular001, GaussFourierAngular002)
              if c.__name__ in self._params]
        if gf or not all(integer.values()):
            # explicit triplets: each unordered neighbour pair (j, k) of every centre, legs
            # no longer than the longest leg any of these terms uses
            gf_reach = max([max(t.ij.reach, t.ik.reach) for t in self.angular if hasattr(t, "ij")], default=0.0)
            reach = max(self.cutoff if not all(integer.values()) else 0.0, gf_reach)
            mask = None if reach >= self.neighbor_cutoff else d < reach
            if mask is None:  # the triplets depend on the pair list alone: keep them with it
                if "triplets" not in nb.cache:
                    nb.cache["triplets"] = triplets(nb, N)
                p_idx, q_idx = nb.cache["triplets"]
            else:
                p_idx, q_idx = triplets(nb, N, pair_mask=mask)
            key = triplet_bins(p_idx, q_idx, nb.centers, pair_element, pair_index)

            def scatter(v):
                return torch.zeros((N * n_pairs, v.shape[1]), dtype=d.dtype, device=d.device).index_add(0, key, v)

            # component-wise 1-D tensors: much cheaper to gather than (P, 3) rows
            vx, vy, vz = vec.T.contiguous().unbind(0)
            for cls in bp:
                if not integer[cls]:
                    p = self._p(cls.__name__, d)
                    rs = p.get("rs", torch.zeros_like(p["eta"]))
                    rc = torch.tensor(self.cutoff, dtype=d.dtype, device=d.device)
                    cos, rad = triplet_geometry(vx, vy, vz, d, p_idx, q_idx, rc, p["eta"], rs,
                                                FAMILY_CODES[cls.__name__], self._fc)
                    # clamped: 1 + λ cos θ rounds below 0 for opposite neighbours (λ = 1), and a
                    # non-integer power of a negative number is NaN
                    base = (1 + p["lam"] * cos[:, None]).clamp(min=0)
                    outs[cls] = scatter(2.0 ** (1 - p["zeta"]) * base ** p["zeta"] * torch.stack(rad, dim=1))
            if gf:
                rij, rik = vec[p_idx], vec[q_idx]
                dij, dik = d[p_idx], d[q_idx]
                cos = _safe_div((rij * rik).sum(-1), dij * dik)
                sin = _safe_div(_safe_norm(torch.linalg.cross(rij, rik)), dij * dik)
            for cls in gf:
                p = self._p(cls.__name__, d)
                # ordered double sum over j ≠ k: both (j, k) and (k, j) of each unordered pair
                rad = (_gf_radial(dij, p["ij"]) * _gf_radial(dik, p["ik"])
                       + _gf_radial(dik, p["ij"]) * _gf_radial(dij, p["ik"]))
                if cls is GaussFourierBiRadial:
                    outs[cls] = scatter(rad)
                else:
                    cos_diff = cos[:, None] * p["cos_s"] + sin[:, None] * p["sin_s"]
                    outs[cls] = scatter(torch.exp(-p["eta_theta"] * (1 - cos_diff)) * rad)
        v = _in_order(self.angular, outs)
        return v.view(N, n_pairs * v.shape[1])

    def _blocks(self, N, nb, el, d):
        """The dense per-element neighbour layout of the pairs inside R_c (kept with the
        list when that is all of them, i.e. it depends on the pair list alone)."""
        n_el = self.n_element_blocks
        if nb.cutoff - nb.skin <= self.cutoff:  # pairs in a skin beyond R_c add exactly zero
            key = ("blocks", tuple(self.elements or ()))
            if key not in nb.cache:
                nb.cache[key] = neighbor_blocks(nb.centers, el[nb.neighbors], N, n_el)
            return nb.cache[key]
        return neighbor_blocks(nb.centers, el[nb.neighbors], N, n_el, keep=d.detach() < self.cutoff)

    def _bp_blocks(self, cls, p, layout, vec, d):
        """One BP angular family (G4/G5/G9) with integer ζ, per (centre, element pair) bin:
        the moments of :mod:`.angular_blocks` — one exp per distinct radial channel
        (η, r_s) instead of a power and an exp per term, then a fixed linear map to the
        terms; fused by ``torch.compile`` when ``compile=True``."""
        zeta, lam, eta = p["zeta"], p["lam"], p["eta"]
        rs = p.get("rs", torch.zeros_like(eta))
        channels = sorted({(float(e), float(r)) for e, r in zip(eta, rs)})
        index = {c: n for n, c in enumerate(channels)}
        n_powers = int(zeta.max()) + 1
        etas = torch.tensor([c[0] for c in channels], dtype=d.dtype, device=d.device)
        rss = torch.tensor([c[1] for c in channels], dtype=d.dtype, device=d.device)
        rc = torch.tensor(self.cutoff, dtype=d.dtype, device=d.device)
        family = FAMILY_CODES[cls.__name__]
        if cls is not G4 and n_powers - 1 <= MAX_TENSOR_POWER:
            moments = tensor_moments(layout, vec, d, rc, etas, rss, family, n_powers, self._fc)
        else:
            moments = angular_moments(layout, vec, d, rc, etas, rss, family, n_powers, self._fc,
                                      compile=self.compile)
        W = moment_weights(zeta.tolist(), lam.tolist(), [index[(float(e), float(r))] for e, r in zip(eta, rs)],
                           len(channels), n_powers, d.dtype, d.device)
        return moments.reshape(-1, moments.shape[-1]) @ W

    def spin_features(self, positions: torch.Tensor, cells: torch.Tensor, n_atoms: torch.Tensor,
                      magmoms: torch.Tensor, neighbors: Neighbors, pairs: torch.Tensor | None = None) -> torch.Tensor:
        """The spin columns alone, ``(N, len(self.spin))`` — the last columns of :meth:`forward` —
        for fixed positions and these moments (μ_B, ``(N,)`` collinear or ``(N, 3)``): what a spin
        Monte Carlo move changes, the geometric columns staying as they are. ``neighbors``: the
        list :meth:`forward` used (its pair vectors are kept with it for constant positions, so
        repeated calls recompute only the spin sums). ``pairs``: indices into the list — every pair
        of the centres wanted (e.g. those a move affects: the moved atom and its neighbours); the
        rows of those centres are exact, the others are not to be used."""
        if not self.spin:
            raise InputError("this descriptor has no spin terms", field="terms")
        batch = torch.repeat_interleave(torch.arange(len(n_atoms), device=positions.device), n_atoms)
        vec, d = _pair_geometry(positions, cells, batch, neighbors)
        if pairs is not None:
            neighbors = Neighbors(neighbors.centers[pairs], neighbors.neighbors[pairs], neighbors.shifts[pairs],
                                  neighbors.cutoff)
            vec, d = vec[pairs], d[pairs]
        return self._spin(positions.shape[0], neighbors, vec, d, magmoms.to(positions.dtype))

    def _spin(self, N, nb, vec, d, magmoms):
        if magmoms.dim() == 1:
            S = torch.zeros((N, 3), dtype=magmoms.dtype, device=magmoms.device)
            S = S.index_put((torch.arange(N, device=S.device), torch.full((N,), 2, device=S.device)), magmoms)
        elif magmoms.shape == (N, 3):
            S = magmoms
        else:
            raise InputError(f"magmoms must have shape ({N},) or ({N}, 3), got {tuple(magmoms.shape)}",
                             field="magmoms")
        i, j = nb.centers, nb.neighbors
        within = d < self.cutoff
        fc = self._fc(d, self.cutoff) * within
        Si, Sj = S[i], S[j]
        kinds = {t.kind for t in self.spin if isinstance(t, (SpinPair, SpinGaussPair))}
        q = {}  # the pair quantities the terms use, and only those (a Monte Carlo move recomputes them)
        if kinds & {"dot", "cross"}:
            q["dot"] = (Si * Sj).sum(-1)
        if kinds - {"dot"}:
            rhat = vec * _safe_div(torch.ones_like(d), d)[:, None]
            if "dm" in kinds:
                q["dm"] = (torch.linalg.cross(Si, Sj) * rhat).sum(-1)
            if kinds & {"dipole", "cross"}:
                dipole = (Si * rhat).sum(-1) * (Sj * rhat).sum(-1)
                q["dipole"] = dipole
                if "cross" in kinds:
                    q["cross"] = q["dot"] - dipole

        def to_atoms(v):
            return torch.zeros((N,) + v.shape[1:], dtype=v.dtype, device=v.device).index_add(0, i, v)

        # the Gaussian pair terms of one kind as one (P, T) block and one sum over the pairs
        gauss_pair = {}
        for kind in sorted({t.kind for t in self.spin if isinstance(t, SpinGaussPair)}):
            chosen = [k for k, t in enumerate(self.spin) if isinstance(t, SpinGaussPair) and t.kind == kind]
            eta = torch.tensor([self.spin[k].eta for k in chosen], dtype=d.dtype, device=d.device)
            alpha = torch.tensor([self.spin[k].alpha for k in chosen], dtype=d.dtype, device=d.device)
            block = to_atoms(torch.exp(-eta * (q[kind][:, None] - alpha) ** 2) * fc[:, None])
            gauss_pair.update({k: block[:, c] for c, k in enumerate(chosen)})

        s2 = (S * S).sum(-1)
        need_local = any(isinstance(t, SpinLocal) for t in self.spin)
        if need_local:
            M = torch.zeros_like(S).index_add(0, i, Sj * fc[:, None])
            norm_S = _safe_norm(S)
            A = to_atoms(norm_S[j] * fc)
            W = to_atoms(fc)
            Mfull = M + S  # including the central atom, f_c(0) = 1
            unit_M = Mfull * _safe_div(torch.ones_like(s2), _safe_norm(Mfull))[:, None]
            cos_pair = _safe_div((Sj * unit_M[i]).sum(-1), norm_S[j])
            cos_self = _safe_div((S * unit_M).sum(-1), norm_S)
            F5 = (to_atoms(fc * cos_pair) + cos_self) / (W + 1)
        cols = []
        for k, t in enumerate(self.spin):
            if isinstance(t, SpinSelf):
                cols.append(s2 ** int(t.xi))
            elif isinstance(t, SpinPair):
                cols.append(to_atoms(q[t.kind] ** int(t.xi) * fc))
            elif isinstance(t, SpinGaussSelf):
                pos = s2 > 0
                mag = torch.where(pos, torch.where(pos, s2, torch.ones_like(s2)) ** (t.xi / 2), torch.zeros_like(s2))
                cols.append(torch.exp(-t.eta * (mag - t.alpha) ** 2))
            elif isinstance(t, SpinGaussPair):
                cols.append(gauss_pair[k])
            else:  # SpinLocal
                if t.kind == "F1":
                    cols.append(torch.exp(-t.eta * (A - t.alpha) ** 2))
                elif t.kind == "F2":
                    cols.append(torch.exp(-t.eta * (_safe_norm(M) - t.alpha) ** 2))
                elif t.kind == "F3":
                    cols.append(torch.exp(-t.eta * ((S * M).sum(-1) - t.alpha) ** 2))
                elif t.kind == "F4":
                    cols.append(_safe_div(_safe_norm(Mfull), A + norm_S))
                elif t.kind == "F5":
                    cols.append(F5)
                else:  # F6
                    cols.append((to_atoms(fc * (cos_pair - F5[i]) ** 2) + (cos_self - F5) ** 2) / (W + 1))
        return torch.stack(cols, dim=1)

    # ------------------------------------------------------- basis shapes
    def radial_values(self, r: Any) -> np.ndarray:
        """Every radial term's value for a single neighbour at distance ``r`` (Å), shape
        ``(len(r), n_radial)`` — the curves of 002 fig 2.15–2.17, without building structures."""
        d = torch.as_tensor(np.asarray(r, dtype=float), dtype=torch.float64).reshape(-1)
        if not self.radial:
            return np.zeros((len(d), 0))
        values = {}
        if "G2" in self._params:
            p = self._p("G2", d)
            values[G2] = _g2_values(d, p["eta"], p["rs"], torch.tensor(self.cutoff, dtype=d.dtype), self._fc)
        if "GaussFourierRadial" in self._params:
            values[GaussFourierRadial] = _gf_radial(d, self._p("GaussFourierRadial", d))
        return _in_order(self.radial, values).numpy()

    def angular_values(self, theta: Any) -> np.ndarray:
        """The angular factor of every BP angular term (G4/G5/G9) at angle θ (radians):
        ``2^(1−ζ) (1 + λ cos θ)^ζ``, shape ``(len(theta), n_bp_angular)``; other angular
        families are left out."""
        t = np.asarray(theta, dtype=float).reshape(-1)
        cols = [2.0 ** (1 - a.zeta) * (1 + a.lam * np.cos(t)) ** a.zeta
                for a in self.angular if isinstance(a, (G4, G5, G9))]
        return np.stack(cols, axis=1) if cols else np.zeros((len(t), 0))

    # --------------------------------------------------------------- compute
    def compute(self, data: StructureDataset | Atoms | Sequence[Atoms], device: Any = "cpu",
                dtype: torch.dtype = torch.float64, max_atoms_per_chunk: int = 4096,
                progress: bool = False, min_distance: float | None = None, check: bool = True) -> torch.Tensor:
        """Features of every atom of ``data``, shape ``(N_atoms, n_features)``, on ``device``.

        Works through the structures in chunks of at most ``max_atoms_per_chunk``
        atoms (a structure is never split), without building autograd graphs.

        The structures are checked as in :meth:`prepare` (``min_distance``: None for the
        covalent-radii limit, a distance in Å, 0 for no overlap check; ``check=False``: no checks);
        the overlaps from the distances of the neighbour list the features need anyway
        (:meth:`neighbor_list`), so the check costs next to nothing.
        """
        from tqdm.auto import tqdm

        ds = StructureDataset.coerce(data, "data")
        if check:
            check_structures(ds, min_distance, overlaps=False)
        chunks = chunk_bounds(ds.n_atoms, max_atoms_per_chunk)
        out = []
        with torch.no_grad():
            for a, b in tqdm(chunks, desc="features", disable=not progress or len(chunks) < 2):
                batch = structure_tensors(ds[a:b], device, dtype, moments="required" if self.spin else "none")
                if check:
                    batch["neighbors"] = self.neighbor_list(batch, min_distance, first_structure=a)
                out.append(self(**batch))
        return torch.cat(out) if out else torch.zeros((0, self.n_features), dtype=dtype, device=device)


def _pair_geometry(positions: torch.Tensor, cells: torch.Tensor, batch: torch.Tensor,
                   neighbors: Neighbors) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair vectors ``(P, 3)`` and lengths ``(P,)`` (Å) of ``neighbors``. A list reused on unchanged,
    constant positions (a panel re-evaluating terms, spin Monte Carlo moves) keeps them; anything
    that needs gradients recomputes them."""
    frozen = not (positions.requires_grad or cells.requires_grad)
    kept = neighbors.kept_vectors(positions, cells) if frozen else None
    if kept is not None:
        return kept
    vec = pair_vectors(positions, cells.to(positions.dtype), batch, neighbors)
    d = _safe_norm(vec)
    if frozen:
        neighbors.keep_vectors(positions, cells, vec, d)
    return vec, d


def _check_overlaps(nb: Neighbors, d: torch.Tensor, reach: float, numbers: np.ndarray, offsets: np.ndarray,
                    min_distance: float | None, first_structure: int) -> None:
    """The overlap check :meth:`SymmetryFunctions.neighbor_list` arms, on the pair distances ``d`` (Å)
    :meth:`~SymmetryFunctions.forward` computed: only pairs within the largest limit ``reach`` (Å)
    leave the device, usually none."""
    near = torch.nonzero(d.detach() < reach).squeeze(1)
    if len(near):
        check_pair_distances(numbers, offsets, nb.centers[near].cpu().numpy(), nb.neighbors[near].cpu().numpy(),
                             d.detach()[near].cpu().double().numpy(), nb.shifts[near].cpu().numpy(), min_distance,
                             first_structure=first_structure, hint=OVERLAP_HINT)


def _in_order(terms: list[Term], values: dict[type, torch.Tensor]) -> torch.Tensor:
    """Columns of all families, rearranged to the order the terms were given."""
    families = [cls for cls in values]
    stacked = torch.cat([values[c] for c in families], dim=1) if len(families) > 1 else values[families[0]]
    start, pos = 0, {}
    for c in families:
        pos[c] = start
        start += values[c].shape[1]
    seen = {c: 0 for c in families}
    order = []
    for t in terms:
        c = type(t)
        order.append(pos[c] + seen[c])
        seen[c] += 1
    if order == list(range(len(order))):
        return stacked
    return stacked[:, torch.as_tensor(order, device=stacked.device)]


def chunk_bounds(n_atoms: Sequence[int] | np.ndarray, max_atoms: int) -> list[tuple[int, int]]:
    """Consecutive structure ranges ``[(start, stop), …]`` of at most ``max_atoms`` atoms each (a
    structure is never split, so one larger than ``max_atoms`` gets a range of its own); how
    :meth:`SymmetryFunctions.compute` and :class:`~mlexplore.descriptors.FeatureCache` bound memory.

    ``n_atoms``: atoms per structure, in dataset order."""
    if max_atoms < 1:
        raise InputError(f"max_atoms must be ≥ 1, got {max_atoms}", field="max_atoms")
    bounds, start, total = [], 0, 0
    for s, n in enumerate(n_atoms):
        if total + n > max_atoms and s > start:
            bounds.append((start, s))
            start, total = s, 0
        total += int(n)
    if start < len(n_atoms):
        bounds.append((start, len(n_atoms)))
    return bounds


def neighbor_reach(terms: Sequence, cutoff: float) -> float:
    """The neighbour cutoff (Å) of a descriptor of ``terms`` with cutoff radius ``cutoff``: R_c, or
    further where a Gauss-Fourier radial window or a bi-radial/angular term's windows reach past it."""
    reach = [t.reach for t in terms if isinstance(t, GaussFourierRadial)]
    reach += [max(t.ij.reach, t.ik.reach) for t in terms if isinstance(t, _ANGULAR) and hasattr(t, "ij")]
    return max([cutoff] + reach)


def structure_tensors(ds: StructureDataset, device: Any = "cpu", dtype: torch.dtype = torch.float64,
                      moments: str = "none") -> dict[str, torch.Tensor]:
    """A dataset as the tensors :meth:`SymmetryFunctions.forward` takes: positions (Å), numbers, cells
    (Å), pbc, n_atoms and, by ``moments``, the per-atom moments (μ_B, from ``magmoms`` or
    ``initial_magmoms``): ``"none"``, ``"if_present"`` or ``"required"`` (an InputError without them).

    The structures are taken as they are: the checked entry points (:meth:`SymmetryFunctions.prepare`,
    :meth:`~SymmetryFunctions.compute`, :class:`~mlexplore.descriptors.FeatureCache`) run
    :func:`~mlexplore.data.check_structures` before they call this."""
    out = {
        "positions": torch.as_tensor(ds.positions, dtype=dtype, device=device).clone(),
        "numbers": torch.as_tensor(ds.numbers, device=device),
        "cells": torch.as_tensor(ds.cells, dtype=dtype, device=device),
        "pbc": torch.as_tensor(ds.pbc, device=device),
        "n_atoms": torch.as_tensor(ds.n_atoms, device=device),
    }
    if moments != "none":
        name = next((k for k in ("magmoms", "initial_magmoms") if k in ds.atom_labels), None)
        if name is None and moments == "required":
            raise InputError("spin terms need per-atom magnetic moments: the dataset has no 'magmoms' "
                             "(or 'initial_magmoms') label", field="magmoms")
        if name is not None:
            out["magmoms"] = torch.as_tensor(ds.atom_labels[name], dtype=dtype, device=device).clone()
    return out

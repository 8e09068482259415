"""`FeatureCache`: features of one fixed set of structures for many descriptors, recomputing only
what changed.

Tuning a basis means featurising the same environments again and again with terms that differ a
little. :meth:`SymmetryFunctions.compute` starts from scratch each time; the cache keeps

- **one neighbour list** per chunk of structures (≤ ``max_atoms_per_chunk`` atoms), built once for
  the largest cutoff it is meant to serve (``max_cutoff``), with its pair vectors and lengths. A
  descriptor with a smaller R_c gets the list cut from it (:meth:`Neighbors.within`): a filter
  over the pairs, not a new neighbour search. The cut list for the current R_c is kept too, so
  the triplets and angular neighbour blocks stored with it are reused while R_c stays;
- **one feature block per term family** (radial, angular, spin), keyed by the family's terms,
  R_c, cutoff function and elements: moving a radial parameter recomputes only the radial block
  (the angular block, the expensive part, is reused) and vice versa.

Columns come in the descriptor's order (radial, then angular, then spin blocks) and equal
``descriptor.compute(dataset)`` to float rounding. The counters (:attr:`FeatureCache.neighbor_searches`,
:attr:`~FeatureCache.blocks_computed`, :attr:`~FeatureCache.blocks_reused`) and
:attr:`~FeatureCache.last_reused` say what was reused.

    from mlexplore.descriptors import FeatureCache, SymmetryFunctions, angular_grid, radial_grid

    cache = FeatureCache(dataset, max_cutoff=7.0, dtype="float32")
    for eta in (1.0, 2.0, 4.0):            # only the radial block is recomputed
        sf = SymmetryFunctions(radial_grid(8, 1.5, 5.0, eta=eta) + angular_grid([0.01]), cutoff=6.0,
                               elements=dataset.elements)
        G = cache.features(sf)             # (n_atoms, sf.n_features) numpy array
    cache.last_reused                      # {'radial': False, 'angular': True}
    cache.neighbor_searches                # 1: every cutoff ≤ 7 Å is cut from the same list
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset
from ..data.validate import OVERLAP_HINT, check_structures
from ..errors import InputError
from .neighbors import Neighbors, neighbor_pairs, pair_vectors
from .symmetry import SymmetryFunctions, chunk_bounds, neighbor_reach, structure_tensors

__all__ = ["FeatureCache", "environment_sample"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, torch.float32: torch.float32,
           torch.float64: torch.float64}
FAMILIES = ("radial", "angular", "spin")


def environment_sample(dataset: StructureDataset, max_environments: int, seed: int = 0) -> np.ndarray:
    """Indices (sorted) of whole structures taken in random order until they hold at least
    ``max_environments`` atoms (or all of them): a sample of environments that keeps structures whole.

    ``dataset[environment_sample(dataset, n)]`` is the sample, e.g. for a :class:`FeatureCache`."""
    if max_environments < 1:
        raise InputError(f"max_environments must be ≥ 1, got {max_environments}", field="max_environments")
    order = np.random.default_rng(seed).permutation(len(dataset))
    total = np.cumsum(dataset.n_atoms[order])
    n = int(np.searchsorted(total, max_environments) + 1)
    return np.sort(order[: min(n, len(dataset))])


class FeatureCache:
    """Features of ``dataset`` for many descriptors, reusing the neighbour list and unchanged blocks.

    Parameters
    ----------
    dataset:
        The structures to featurise (all of them, in order; rows of :meth:`features` are its atoms).
    max_cutoff:
        The largest neighbour cutoff (Å) to serve: the one neighbour search is done for it. A
        descriptor whose ``neighbor_cutoff`` is larger raises :class:`~mlexplore.errors.InputError`,
        unless ``rebuild=True``.
    dtype:
        ``"float32"`` / ``"float64"`` (or the torch dtypes) of the computation and of the features.
    device:
        Torch device of the computation (features come back as numpy arrays on the CPU).
    compile:
        Passed to :class:`SymmetryFunctions` (``torch.compile`` of the angular sums).
    rebuild:
        When a descriptor reaches beyond ``max_cutoff``: search neighbours again for its cutoff
        (then that is the new ``max_cutoff``) instead of raising.
    max_atoms_per_chunk:
        Atoms per chunk of structures (:func:`chunk_bounds`): bounds the memory of one evaluation.
    max_blocks:
        Feature blocks kept (least recently used dropped first).
    neighbor_method:
        ``"auto"``, ``"vesin"`` or ``"torch"`` (see :func:`neighbor_pairs`).
    min_distance:
        The structures are checked here, once (:func:`~mlexplore.data.check_structures`):
        non-finite positions or cells, a singular periodic cell or two atoms closer than
        ``min_distance`` Å (None: half the sum of their covalent radii; 0: no overlap check) are an
        :class:`~mlexplore.errors.InputError` naming the structure and the atoms.

    Attributes
    ----------
    chunks:
        ``[(start, stop), …]`` structure ranges, one neighbour list each.
    neighbor_searches:
        Neighbour searches done so far (1 after the first :meth:`features`, unless rebuilt).
    neighbor_filters:
        Times a list for a new cutoff was cut from the full one.
    blocks_computed, blocks_reused:
        Feature blocks computed and taken from the cache, over all calls.
    last_reused:
        ``{family: reused?}`` for the last :meth:`features` call (families the descriptor has).
    """

    def __init__(self, dataset: StructureDataset, max_cutoff: float, dtype: str | torch.dtype = "float64",
                 device: Any = "cpu", compile: bool = False, rebuild: bool = False,
                 max_atoms_per_chunk: int = 4096, max_blocks: int = 8, neighbor_method: str = "auto",
                 min_distance: float | None = None) -> None:
        if not isinstance(dataset, StructureDataset):
            raise InputError(f"dataset must be a StructureDataset, got {type(dataset).__name__}", field="dataset")
        if len(dataset) == 0:
            raise InputError("no structures to featurise", field="dataset")
        check_structures(dataset, min_distance, hint=OVERLAP_HINT)
        if not (float(max_cutoff) > 0 and np.isfinite(max_cutoff)):
            raise InputError(f"max_cutoff must be a positive number of Å, got {max_cutoff}", field="max_cutoff")
        if dtype not in _DTYPES:
            raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}", field="dtype")
        if max_blocks < 1:
            raise InputError(f"max_blocks must be ≥ 1, got {max_blocks}", field="max_blocks")
        self.dataset = dataset
        self.max_cutoff = float(max_cutoff)
        self.dtype = _DTYPES[dtype]
        self.device = torch.device(device)
        self.compile = bool(compile)
        self.rebuild = bool(rebuild)
        self.max_blocks = int(max_blocks)
        self.neighbor_method = neighbor_method
        self.chunks = chunk_bounds(dataset.n_atoms, max_atoms_per_chunk)
        self.neighbor_searches = 0
        self.neighbor_filters = 0
        self.blocks_computed = 0
        self.blocks_reused = 0
        self.last_reused: dict[str, bool] = {}
        self._batches: list[dict[str, torch.Tensor]] | None = None
        self._full: tuple[tuple[Neighbors, torch.Tensor], ...] | None = None
        self._cut: dict[float, list[Neighbors]] = {}
        self._blocks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.RLock()

    # --------------------------------------------------------------- public
    @property
    def n_atoms(self) -> int:
        """Rows of :meth:`features`: the atoms of :attr:`dataset`."""
        return int(self.dataset.n_total_atoms)

    @property
    def neighbors(self) -> tuple[Neighbors, ...]:
        """The full neighbour lists (one per chunk) for :attr:`max_cutoff`; built on first use. The
        same objects until a rebuild (``rebuild=True`` and a larger cutoff)."""
        with self._lock:
            return tuple(nb for nb, _ in self._full_lists())

    def neighbors_within(self, cutoff: float) -> list[Neighbors]:
        """Per chunk, the neighbour list for ``cutoff`` (Å), cut from :attr:`neighbors`. The lists cut
        for the last :meth:`features` call are kept, with what descriptors store on them
        (triplets, neighbour blocks), so they are reused while R_c stays."""
        with self._lock:
            cutoff = round(float(cutoff), 9)
            if cutoff > self.max_cutoff:
                if not self.rebuild:
                    raise InputError(f"R_c = {cutoff:g} Å is beyond the {self.max_cutoff:g} Å the neighbour list "
                                     "was built for: make the FeatureCache with a larger max_cutoff, or "
                                     "rebuild=True", field="cutoff")
                self.max_cutoff = cutoff
                self._full = None
                self._cut = {}
            full = self._full_lists()
            if cutoff not in self._cut:
                self._cut[cutoff] = [nb.within(d, cutoff) for nb, d in full]
                self.neighbor_filters += 1
            return self._cut[cutoff]

    def features(self, descriptor: SymmetryFunctions) -> np.ndarray:
        """Features of every atom of :attr:`dataset`, ``(n_atoms, descriptor.n_features)``, in the
        descriptor's column order; equal to ``descriptor.compute(dataset)`` to float rounding."""
        if not isinstance(descriptor, SymmetryFunctions):
            raise InputError(f"descriptor must be a SymmetryFunctions, got {type(descriptor).__name__}",
                             field="descriptor")
        with self._lock:
            reused: dict[str, bool] = {}
            blocks, cutoffs = [], set()
            for family in FAMILIES:
                terms = getattr(descriptor, family)
                if not terms:
                    continue
                cutoffs.add(round(neighbor_reach(terms, descriptor.cutoff), 9))  # the part's neighbour cutoff
                key = self.block_key(descriptor, family)
                reused[family] = key in self._blocks
                if reused[family]:
                    self._blocks.move_to_end(key)
                    self.blocks_reused += 1
                else:
                    part = SymmetryFunctions(terms, cutoff=descriptor.cutoff, cutoff_function=descriptor.cutoff_name,
                                             elements=descriptor.elements, compile=self.compile)
                    self._blocks[key] = self._compute_block(part, self.neighbors_within(part.neighbor_cutoff))
                    self.blocks_computed += 1
                    while len(self._blocks) > self.max_blocks:
                        self._blocks.popitem(last=False)
                blocks.append(self._blocks[key])
            self._cut = {c: v for c, v in self._cut.items() if c in cutoffs}  # keep the lists now in use
            self.last_reused = reused
            return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)

    def block(self, descriptor: SymmetryFunctions, family: str) -> np.ndarray | None:
        """The cached block of ``family`` (``"radial"``, ``"angular"``, ``"spin"``) for ``descriptor``:
        the very array :meth:`features` used, or None when it is not cached."""
        if family not in FAMILIES:
            raise InputError(f"family must be one of {FAMILIES}, got {family!r}", field="family")
        with self._lock:
            return self._blocks.get(self.block_key(descriptor, family))

    def block_key(self, descriptor: SymmetryFunctions, family: str) -> tuple:
        """What the block of one family depends on: the family, its terms, R_c (Å), the cutoff
        function and the elements (its neighbour cutoff follows from those)."""
        return (family, tuple(getattr(descriptor, family)), descriptor.cutoff, descriptor.cutoff_name,
                tuple(descriptor.elements) if descriptor.elements is not None else None)

    def clear(self) -> None:
        """Forget the feature blocks (the neighbour list stays)."""
        with self._lock:
            self._blocks.clear()

    # -------------------------------------------------------------- private
    def _batch_tensors(self) -> list[dict[str, torch.Tensor]]:
        if self._batches is None:
            self._batches = [structure_tensors(self.dataset[a:b], self.device, self.dtype, moments="if_present")
                             for a, b in self.chunks]
        return self._batches

    def _full_lists(self) -> tuple[tuple[Neighbors, torch.Tensor], ...]:
        if self._full is None:
            lists = []
            for batch in self._batch_tensors():
                pos, cells, n_atoms = batch["positions"], batch["cells"], batch["n_atoms"]
                nb = neighbor_pairs(pos, cells, batch["pbc"], n_atoms, self.max_cutoff, method=self.neighbor_method)
                owner = torch.repeat_interleave(torch.arange(len(n_atoms), device=pos.device), n_atoms)
                vec = pair_vectors(pos, cells, owner, nb)
                d = torch.linalg.vector_norm(vec, dim=1)
                nb.keep_vectors(pos, cells, vec, d)
                lists.append((nb, d))
            self._full = tuple(lists)
            self.neighbor_searches += 1
        return self._full

    def _compute_block(self, part: SymmetryFunctions, lists: list[Neighbors]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for batch, nb in zip(self._batch_tensors(), lists):
                if not part.spin:
                    batch = {k: v for k, v in batch.items() if k != "magmoms"}
                out.append(part(**batch, neighbors=nb))
        return torch.cat(out).cpu().numpy()

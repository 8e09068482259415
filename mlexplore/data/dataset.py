"""`StructureDataset`: atomic structures (ASE ``Atoms``) with their labels.

Storage is columnar: all atoms of all structures are concatenated into flat
arrays (``numbers``, ``positions`` and per-atom labels), with ``n_atoms`` per
structure telling where each structure begins. This keeps 10^5 structures
cheap to slice, save and move to torch, while every structure can still be
taken out as an ASE ``Atoms`` (``dataset[i]``) carrying its labels in a
``SinglePointCalculator`` and in ``atoms.info`` / ``atoms.arrays``.

Units (the whole toolkit): energies eV, lengths Å, forces eV/Å, stress eV/Å³
(Voigt order xx, yy, zz, yz, xz, xy), charges e, magnetic moments μ_B.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

from ..errors import InputError

__all__ = ["StructureDataset", "Structures", "LABEL_UNITS", "CALCULATOR_PROPERTIES", "parse_meta"]

#: Units of the labels mlexplore knows by name. Any other name is allowed and
#: is carried along unchanged (its unit is whatever the user put in).
LABEL_UNITS: dict[str, str] = {
    # per structure
    "energy": "eV (total)",
    "free_energy": "eV (total)",
    "mixing_energy": "eV/atom (H - sum_i c_i H_i, 001 eq 12)",
    "stress": "eV/Å³ (Voigt xx yy zz yz xz xy)",
    "magmom": "μ_B (total moment)",
    # per atom
    "forces": "eV/Å",
    "energies": "eV (per-atom energy)",
    "charges": "e (LSMS: electrons on the site; GPAW Hirshfeld, n2p2: partial charge Z - N_e)",
    "charge_transfer": "e (N_e - Z: electrons gained by the site)",
    "magmoms": "μ_B (scalar, collinear) or μ_B 3-vector",
    "initial_magmoms": "μ_B (initial moments that seeded a DFT run)",
}

#: Labels that ASE calculators produce; they go into ``atoms.calc`` when a
#: structure is taken out as ``Atoms``.
CALCULATOR_PROPERTIES = (
    "energy", "free_energy", "stress", "magmom", "forces", "energies", "charges", "magmoms",
)

_ASE_INTERNAL_ARRAYS = {"numbers", "positions"}


def parse_meta(text: str, *, path: Any = None, line: int | None = None, structure: int | None = None,
               field: str = "mlx_meta") -> dict:
    """The metadata of one structure from its JSON text (``mlx_meta`` in extxyz, ``meta=`` in n2p2).

    Raises :class:`InputError` naming the place for text that is not JSON or JSON that is not an
    object (``{"key": value, …}``): metadata is a dict of named entries, never a list or a number.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{text[:60]!r} is not valid JSON ({exc.msg} at character {exc.pos})",
                         path=path, line=line, structure=structure, field=field) from None
    if not isinstance(value, dict):
        raise InputError(f"must be a JSON object {{\"key\": value, …}}, got a {type(value).__name__} "
                         f"({text[:60]!r})", path=path, line=line, structure=structure, field=field)
    return value


def _as_index(index: Any, n: int) -> np.ndarray:
    """Turn a slice, mask, integer list or array into an int64 index array."""
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    arr = np.asarray(index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(f"boolean mask has shape {arr.shape}, the dataset has {n} structures")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise IndexError(f"cannot index a dataset with {arr.dtype} values")
    arr = arr.astype(np.int64).reshape(-1)
    if arr.min() < -n or arr.max() >= n:
        raise IndexError(f"index out of range for a dataset of {n} structures")
    return np.where(arr < 0, arr + n, arr)


class StructureDataset:
    """A set of atomic structures with per-structure and per-atom labels.

    Build one from ASE objects with :meth:`from_atoms`, read one with
    :func:`mlexplore.io.read`, or take a built-in one from
    :mod:`mlexplore.datasets`.

    Parameters
    ----------
    numbers:
        Atomic numbers of all atoms, concatenated, shape ``(N,)``.
    positions:
        Cartesian positions in Å, shape ``(N, 3)``.
    cells:
        Cell vectors in Å (rows), shape ``(n, 3, 3)``; zeros for open clusters.
    pbc:
        Periodic boundary conditions, shape ``(n, 3)``.
    n_atoms:
        Atoms per structure, shape ``(n,)``; ``sum(n_atoms) == N``.
    structure_labels:
        ``name -> array`` with first dimension ``n`` (e.g. ``energy`` in eV).
    atom_labels:
        ``name -> array`` with first dimension ``N`` (e.g. ``forces`` in eV/Å).
    tags:
        Group tags per structure, e.g. ``("surface-111", "rattled")``.
    meta:
        Free-form metadata per structure (JSON-serialisable dicts), e.g. the
        source file.
    ids:
        Identifier of each structure, kept through slicing and splitting, so a
        subset can always be traced back to the structure it came from.
        Defaults to ``0 … n-1``.
    name:
        Name of the dataset, shown in summaries.
    """

    def __init__(
        self,
        numbers: np.ndarray,
        positions: np.ndarray,
        cells: np.ndarray,
        pbc: np.ndarray,
        n_atoms: np.ndarray,
        structure_labels: dict[str, np.ndarray] | None = None,
        atom_labels: dict[str, np.ndarray] | None = None,
        tags: Sequence[Sequence[str]] | None = None,
        meta: Sequence[dict] | None = None,
        ids: np.ndarray | None = None,
        name: str = "",
    ) -> None:
        self.numbers = np.ascontiguousarray(numbers, dtype=np.int64).reshape(-1)
        self.positions = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 3)
        self.cells = np.ascontiguousarray(cells, dtype=np.float64).reshape(-1, 3, 3)
        self.pbc = np.ascontiguousarray(pbc, dtype=bool).reshape(-1, 3)
        self.n_atoms = np.ascontiguousarray(n_atoms, dtype=np.int64).reshape(-1)
        n = len(self.n_atoms)
        self.structure_labels = {k: np.asarray(v) for k, v in (structure_labels or {}).items()}
        self.atom_labels = {k: np.asarray(v) for k, v in (atom_labels or {}).items()}
        self.tags: list[tuple[str, ...]] = (
            [tuple(str(t) for t in tt) for tt in tags] if tags is not None else [()] * n
        )
        self.meta: list[dict] = [dict(m) for m in meta] if meta is not None else [{} for _ in range(n)]
        self.ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        self.name = name
        self._check_shapes()
        self._offsets = np.concatenate([[0], np.cumsum(self.n_atoms)]).astype(np.int64)
        self._counts: np.ndarray | None = None

    # ------------------------------------------------------------------ checks
    def _check_shapes(self) -> None:
        n, N = len(self.n_atoms), len(self.numbers)
        if (self.n_atoms < 0).any():
            raise InputError("n_atoms has negative entries", field="n_atoms")
        if int(self.n_atoms.sum()) != N:
            raise InputError(f"n_atoms sums to {int(self.n_atoms.sum())} but there are {N} atoms",
                             field="n_atoms")
        for name, arr, first in (("positions", self.positions, N), ("cells", self.cells, n),
                                 ("pbc", self.pbc, n), ("ids", self.ids, n)):
            if len(arr) != first:
                raise InputError(f"has {len(arr)} rows, expected {first}", field=name)
        if len(self.tags) != n or len(self.meta) != n:
            raise InputError(f"tags/meta must have one entry per structure ({n})", field="tags")
        for k, v in self.structure_labels.items():
            if v.ndim == 0 or len(v) != n:
                raise InputError(f"per-structure label has shape {v.shape}, expected ({n}, ...)",
                                 field=k)
        for k, v in self.atom_labels.items():
            if v.ndim == 0 or len(v) != N:
                raise InputError(f"per-atom label has shape {v.shape}, expected ({N}, ...)", field=k)
        clash = set(self.structure_labels) & set(self.atom_labels)
        if clash:
            raise InputError(f"label(s) {sorted(clash)} are both per-structure and per-atom")
        bad = (self.numbers < 1) | (self.numbers >= len(chemical_symbols))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            s = int(np.searchsorted(np.cumsum(self.n_atoms), i, side="right"))
            raise InputError(f"unknown element with atomic number {int(self.numbers[i])}",
                             structure=s, field="numbers")

    # ------------------------------------------------------------ construction
    @classmethod
    def from_atoms(
        cls,
        images: Atoms | Iterable[Atoms],
        *,
        tags: Sequence[Sequence[str]] | None = None,
        name: str = "",
        source: str | None = None,
    ) -> "StructureDataset":
        """Build a dataset from ASE ``Atoms``.

        Labels are taken from each structure's calculator results (``energy``,
        ``forces``, ``stress``, ``magmoms``, ``charges``, ``energies``, …),
        from numeric entries of ``atoms.info`` (per-structure) and from extra
        ``atoms.arrays`` (per-atom). A label that only some structures have is
        dropped with a warning. String entries of ``atoms.info`` go to
        ``meta``; ``info["tags"]`` (space- or comma-separated) and
        ``info["config_type"]`` become tags; ``info["mlx_meta"]`` (a JSON
        object, as written by :func:`mlexplore.io.write`) is merged into
        ``meta``; integer ``info["id"]`` values, when unique, become ``ids``.
        """
        if isinstance(images, Atoms):
            images = [images]
        images = list(images)
        n = len(images)
        s_labels: list[dict[str, Any]] = []
        a_labels: list[dict[str, np.ndarray]] = []
        all_tags: list[tuple[str, ...]] = []
        metas: list[dict] = []
        ids: list[Any] = []
        for i, atoms in enumerate(images):
            if not isinstance(atoms, Atoms):
                raise InputError(f"expected an ase.Atoms, got {type(atoms).__name__}", structure=i)
            sl: dict[str, Any] = {}
            al: dict[str, np.ndarray] = {}
            meta: dict = {} if source is None else {"source": source}
            tg: list[str] = []
            ids.append(atoms.info.get("id"))
            for key, value in atoms.info.items():
                if key == "id":
                    continue
                if key == "mlx_meta" and isinstance(value, str):
                    meta.update(parse_meta(value, structure=i))
                elif key in ("tags", "mlx_tags"):
                    tg.extend(t for t in str(value).replace(",", " ").split() if t)
                elif key == "config_type":
                    tg.append(str(value))
                elif isinstance(value, (bool, np.bool_)):
                    meta[key] = bool(value)
                elif isinstance(value, (int, float, np.integer, np.floating)):
                    sl[key] = value
                elif isinstance(value, np.ndarray) and value.dtype.kind in "if":
                    sl[key] = value
                elif isinstance(value, (list, tuple)) and value and all(
                        isinstance(x, (int, float)) for x in value):
                    sl[key] = np.asarray(value)
                elif isinstance(value, (str, int, float, bool)) or value is None:
                    meta[key] = value
                else:
                    meta[key] = str(value)
            for key, value in atoms.arrays.items():
                if key in _ASE_INTERNAL_ARRAYS:
                    continue
                if key in ("initial_magmoms", "initial_charges", "tags", "momenta", "masses") and \
                        not np.any(value):
                    continue  # ASE defaults (all zero) carry no information
                al[key] = np.asarray(value)
            if atoms.calc is not None:
                results = getattr(atoms.calc, "results", {})
                for key, value in results.items():
                    if value is None:
                        continue
                    value = np.asarray(value)
                    if key == "stress" and value.shape == (3, 3):
                        value = value[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
                    if value.ndim >= 1 and len(value) == len(atoms) and key not in ("stress", "dipole"):
                        al[key] = value
                    else:
                        sl[key] = value
            for clash in set(sl) & set(al):
                del sl[clash]
            s_labels.append(sl)
            a_labels.append(al)
            if tags is not None:
                tg = list(tags[i]) + tg
            all_tags.append(tuple(dict.fromkeys(tg)))
            metas.append(meta)

        def gather(dicts: list[dict], kind: str) -> dict[str, np.ndarray]:
            names = dict.fromkeys(k for d in dicts for k in d)
            out: dict[str, np.ndarray] = {}
            for name in names:
                missing = [i for i, d in enumerate(dicts) if name not in d]
                if missing:
                    warnings.warn(
                        f"{kind} label {name!r} is missing in {len(missing)} structure(s) "
                        f"(first: {missing[:5]}) and was dropped", stacklevel=3)
                    continue
                vals = [np.asarray(d[name]) for d in dicts]
                try:
                    out[name] = np.concatenate(vals) if kind == "per-atom" else np.stack(vals)
                except ValueError as exc:
                    raise InputError(f"{kind} label has inconsistent shapes across structures: {exc}",
                                     field=name) from None
            return out

        numbers = np.concatenate([a.numbers for a in images]) if n else np.zeros(0, np.int64)
        positions = np.concatenate([a.positions for a in images]) if n else np.zeros((0, 3))
        return cls(
            numbers=numbers,
            positions=positions,
            cells=np.array([a.cell.array for a in images]).reshape(n, 3, 3),
            pbc=np.array([a.pbc for a in images]).reshape(n, 3),
            n_atoms=np.array([len(a) for a in images], dtype=np.int64),
            structure_labels=gather(s_labels, "per-structure"),
            atom_labels=gather(a_labels, "per-atom"),
            tags=all_tags,
            meta=metas,
            ids=ids if all(isinstance(x, (int, np.integer)) for x in ids) and len(set(ids)) == n else None,
            name=name,
        )

    @classmethod
    def coerce(cls, data: "Structures", argument: str = "dataset") -> "StructureDataset":
        """``data`` as a dataset: a :class:`StructureDataset` itself, one ASE ``Atoms`` or a
        sequence of them (as ASE users hold structures). Anything else is an
        :class:`InputError` naming ``argument``; so is an empty sequence."""
        if isinstance(data, cls):
            return data
        if isinstance(data, Atoms):
            return cls.from_atoms([data])
        if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
            raise InputError(f"expected a StructureDataset, an ase.Atoms or a list of them, got "
                             f"{type(data).__name__} {str(data)[:40]!r}"
                             + (" (a file name? read it with mlexplore.io.read)" if isinstance(data, str) else ""),
                             field=argument)
        images = list(data)
        if not images:
            raise InputError("got an empty list of structures", field=argument)
        bad = next((k for k, a in enumerate(images) if not isinstance(a, Atoms)), None)
        if bad is not None:
            raise InputError(f"item {bad} is a {type(images[bad]).__name__}, not an ase.Atoms", field=argument)
        return cls.from_atoms(images)

    @classmethod
    def concatenate(cls, datasets: Sequence["StructureDataset"], name: str = "") -> "StructureDataset":
        """Join datasets. Labels that not all of them have are dropped with a warning.

        Identifiers (``ids``) are renumbered ``0 … n-1`` unless they stay unique.
        """
        datasets = list(datasets)
        if not datasets:
            raise InputError("nothing to concatenate: the list of datasets is empty")

        def common(attr: str) -> list[str]:
            names = [set(getattr(d, attr)) for d in datasets]
            keep = set.intersection(*names)
            dropped = set.union(*names) - keep
            if dropped:
                warnings.warn(f"labels {sorted(dropped)} are not in every dataset and were dropped",
                              stacklevel=3)
            return [k for k in getattr(datasets[0], attr) if k in keep]

        s_names, a_names = common("structure_labels"), common("atom_labels")
        ids = np.concatenate([d.ids for d in datasets])
        if len(np.unique(ids)) != len(ids):
            ids = None
        return cls(
            numbers=np.concatenate([d.numbers for d in datasets]),
            positions=np.concatenate([d.positions for d in datasets]),
            cells=np.concatenate([d.cells for d in datasets]),
            pbc=np.concatenate([d.pbc for d in datasets]),
            n_atoms=np.concatenate([d.n_atoms for d in datasets]),
            structure_labels={k: np.concatenate([d.structure_labels[k] for d in datasets]) for k in s_names},
            atom_labels={k: np.concatenate([d.atom_labels[k] for d in datasets]) for k in a_names},
            tags=[t for d in datasets for t in d.tags],
            meta=[m for d in datasets for m in d.meta],
            ids=ids,
            name=name or "+".join(d.name for d in datasets if d.name),
        )

    def __add__(self, other: "StructureDataset") -> "StructureDataset":
        return StructureDataset.concatenate([self, other])

    # -------------------------------------------------------------- container
    def __len__(self) -> int:
        return len(self.n_atoms)

    @property
    def n_total_atoms(self) -> int:
        """Number of atoms in all structures together."""
        return len(self.numbers)

    @property
    def offsets(self) -> np.ndarray:
        """Index of each structure's first atom in the flat arrays, shape ``(n + 1,)``."""
        return self._offsets

    @property
    def structure_index(self) -> np.ndarray:
        """For every atom, the index of the structure it belongs to, shape ``(N,)``."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.n_atoms)

    def atom_slice(self, i: int) -> slice:
        """Slice of structure ``i``'s atoms in the flat per-atom arrays."""
        return slice(int(self._offsets[i]), int(self._offsets[i + 1]))

    def __getitem__(self, index: Any) -> "Atoms | StructureDataset":
        if isinstance(index, (int, np.integer)):
            return self.get_atoms(int(index))
        return self.select(index)

    def __iter__(self) -> Iterator[Atoms]:
        for i in range(len(self)):
            yield self.get_atoms(i)

    def get_atoms(self, i: int) -> Atoms:
        """Structure ``i`` as ASE ``Atoms``, its labels attached.

        Calculator properties (energy, forces, stress, magmoms, …) are in a
        ``SinglePointCalculator`` (so ``atoms.get_potential_energy()`` works);
        every label is also in ``atoms.info`` (per-structure) or
        ``atoms.arrays`` (per-atom); tags are in ``atoms.info["tags"]``.
        """
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"structure {i} out of range for a dataset of {n}")
        i %= n
        sl = self.atom_slice(i)
        atoms = Atoms(numbers=self.numbers[sl], positions=self.positions[sl],
                      cell=self.cells[i], pbc=self.pbc[i])
        results: dict[str, Any] = {}
        for k, v in self.structure_labels.items():
            val = v[i]
            if k in CALCULATOR_PROPERTIES:
                results[k] = val.copy() if isinstance(val, np.ndarray) else float(val)
            else:
                atoms.info[k] = val.copy() if isinstance(val, np.ndarray) else val.item()
        for k, v in self.atom_labels.items():
            if k in CALCULATOR_PROPERTIES:
                results[k] = v[sl].copy()
            else:
                atoms.arrays[k] = v[sl].copy()
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        if self.tags[i]:
            atoms.info["tags"] = " ".join(self.tags[i])
        atoms.info.update({k: v for k, v in self.meta[i].items() if k not in atoms.info})
        atoms.info["id"] = int(self.ids[i])
        return atoms

    def to_atoms(self) -> list[Atoms]:
        """All structures as a list of ASE ``Atoms`` (see :meth:`get_atoms`)."""
        return [self.get_atoms(i) for i in range(len(self))]

    def select(self, index: Any) -> "StructureDataset":
        """Subset by slice, boolean mask or integer indices (order kept as given)."""
        idx = _as_index(index, len(self))
        # atom indices of the selected structures, in order, without a Python loop
        counts = self.n_atoms[idx]
        first_in_output = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        atom_idx = (np.repeat(self._offsets[idx] - first_in_output, counts)
                    + np.arange(int(counts.sum()), dtype=np.int64))
        return StructureDataset(
            numbers=self.numbers[atom_idx],
            positions=self.positions[atom_idx],
            cells=self.cells[idx],
            pbc=self.pbc[idx],
            n_atoms=self.n_atoms[idx],
            structure_labels={k: v[idx] for k, v in self.structure_labels.items()},
            atom_labels={k: v[atom_idx] for k, v in self.atom_labels.items()},
            tags=[self.tags[i] for i in idx],
            meta=[self.meta[i] for i in idx],
            ids=self.ids[idx],
            name=self.name,
        )

    def copy(self) -> "StructureDataset":
        """An independent copy."""
        return self.select(slice(None))

    # ---------------------------------------------------------------- labels
    @property
    def label_names(self) -> list[str]:
        """Names of all labels, per-structure first."""
        return list(self.structure_labels) + list(self.atom_labels)

    def __contains__(self, label: str) -> bool:
        return label in self.structure_labels or label in self.atom_labels

    def is_per_atom(self, label: str) -> bool:
        """True for a per-atom label, False for a per-structure one."""
        if label in self.atom_labels:
            return True
        if label in self.structure_labels:
            return False
        raise KeyError(self._missing_label_message(label))

    def _missing_label_message(self, label: str) -> str:
        return f"label {label!r} is not in the dataset (it has: {', '.join(self.label_names) or 'none'})"

    def label(self, name: str) -> np.ndarray:
        """A label's array: shape ``(n, ...)`` per-structure or ``(N, ...)`` per-atom."""
        if name in self.structure_labels:
            return self.structure_labels[name]
        if name in self.atom_labels:
            return self.atom_labels[name]
        raise KeyError(self._missing_label_message(name))

    def add_label(self, name: str, values: Any, per_atom: bool | None = None) -> None:
        """Add or replace a label in place.

        ``per_atom`` is inferred from the length when it is unambiguous
        (``len(values)`` equal to the number of structures or of atoms).
        """
        values = np.asarray(values)
        n, N = len(self), self.n_total_atoms
        if per_atom is None:
            if values.ndim == 0:
                raise InputError("a label needs one value per structure or per atom", field=name)
            if len(values) == n and n != N:
                per_atom = False
            elif len(values) == N and n != N:
                per_atom = True
            elif len(values) == n == N:
                raise InputError("ambiguous: every structure has one atom; pass per_atom=", field=name)
            else:
                raise InputError(f"has {len(values)} values; the dataset has {n} structures and {N} atoms",
                                 field=name)
        expected = N if per_atom else n
        if values.ndim == 0 or len(values) != expected:
            raise InputError(f"has {len(values) if values.ndim else 0} values, expected {expected}",
                             field=name)
        self.structure_labels.pop(name, None)
        self.atom_labels.pop(name, None)
        (self.atom_labels if per_atom else self.structure_labels)[name] = values

    def per_structure(self, name: str) -> list[np.ndarray]:
        """A per-atom label split into one array per structure."""
        if name not in self.atom_labels:
            raise KeyError(self._missing_label_message(name) if name not in self else
                           f"label {name!r} is per-structure, not per-atom")
        return np.split(self.atom_labels[name], self._offsets[1:-1])

    def energy_per_atom(self, name: str = "energy") -> np.ndarray:
        """A per-structure energy label divided by the number of atoms (eV/atom)."""
        return self.label(name) / self.n_atoms

    # ----------------------------------------------------------- composition
    @property
    def elements(self) -> list[str]:
        """Chemical symbols present, in order of atomic number."""
        return [chemical_symbols[z] for z in np.unique(self.numbers)]

    def element_counts(self) -> tuple[list[str], np.ndarray]:
        """Per-structure element counts: (symbols, int array of shape ``(n, n_elements)``)."""
        if self._counts is None:
            species, inverse = np.unique(self.numbers, return_inverse=True)
            counts = np.zeros((len(self), len(species)), dtype=np.int64)
            np.add.at(counts, (self.structure_index, inverse), 1)
            self._counts = counts
            self._species = [chemical_symbols[z] for z in species]
        return self._species, self._counts

    @property
    def formulas(self) -> list[str]:
        """Chemical formula of each structure, elements in alphabetical order, e.g. ``"Au12Cu20"``."""
        symbols, counts = self.element_counts()
        order = np.argsort(symbols)
        out = []
        for row in counts:
            out.append("".join(f"{symbols[j]}{row[j] if row[j] > 1 else ''}"
                               for j in order if row[j] > 0))
        return out

    def concentrations(self) -> tuple[list[str], np.ndarray]:
        """Per-structure atomic fractions: (symbols, array ``(n, n_elements)``)."""
        symbols, counts = self.element_counts()
        return symbols, counts / np.maximum(self.n_atoms[:, None], 1)

    # ------------------------------------------------------------- filtering
    @property
    def all_tags(self) -> list[str]:
        """Every tag that occurs, in order of first appearance."""
        return list(dict.fromkeys(t for tt in self.tags for t in tt))

    def filter(
        self,
        tag: str | Sequence[str] | None = None,
        *,
        exclude_tag: str | Sequence[str] | None = None,
        formula: str | Sequence[str] | None = None,
        elements: Sequence[str] | None = None,
        n_atoms: int | None = None,
        mask: np.ndarray | None = None,
    ) -> "StructureDataset":
        """Structures that match every criterion given.

        Parameters
        ----------
        tag:
            Keep structures carrying this tag (or any of these tags).
        exclude_tag:
            Drop structures carrying this tag (or any of these).
        formula:
            Keep structures with this formula (as in :attr:`formulas`, e.g. ``"AuCu3"``;
            any element order is accepted).
        elements:
            Keep structures whose elements are all among these symbols.
        n_atoms:
            Keep structures with this many atoms.
        mask:
            An extra boolean mask over structures.
        """
        keep = np.ones(len(self), dtype=bool)
        if tag is not None:
            wanted = {tag} if isinstance(tag, str) else set(tag)
            keep &= np.array([bool(wanted & set(t)) for t in self.tags], dtype=bool)
        if exclude_tag is not None:
            unwanted = {exclude_tag} if isinstance(exclude_tag, str) else set(exclude_tag)
            keep &= np.array([not (unwanted & set(t)) for t in self.tags], dtype=bool)
        if formula is not None:
            from ase.formula import Formula

            wanted_f = {frozenset(Formula(f).count().items())
                        for f in ([formula] if isinstance(formula, str) else formula)}
            keep &= np.array([frozenset(Formula(f).count().items()) in wanted_f for f in self.formulas])
        if elements is not None:
            from ase.data import atomic_numbers

            allowed = np.array([atomic_numbers[e] for e in elements])
            ok_atom = np.isin(self.numbers, allowed)
            bad = np.zeros(len(self), dtype=np.int64)
            np.add.at(bad, self.structure_index, ~ok_atom)
            keep &= bad == 0
        if n_atoms is not None:
            keep &= self.n_atoms == n_atoms
        if mask is not None:
            keep &= np.asarray(mask, dtype=bool)
        return self.select(keep)

    # ----------------------------------------------------------------- torch
    def to_torch(self, device: Any = "cpu", dtype: Any = None, labels: Sequence[str] | None = None) -> dict:
        """The dataset as a dict of torch tensors on ``device``.

        Keys: ``numbers`` (N,), ``positions`` (N, 3), ``cells`` (n, 3, 3),
        ``pbc`` (n, 3), ``n_atoms`` (n,), ``batch`` (N,) structure index of each
        atom, and one entry per label (all labels, or those named). Floating
        point arrays get ``dtype`` (default ``torch.get_default_dtype()``).
        """
        import torch

        dtype = dtype or torch.get_default_dtype()

        def t(a: np.ndarray) -> "torch.Tensor":
            if a.dtype.kind == "f":
                return torch.as_tensor(a, dtype=dtype, device=device)
            if a.dtype.kind == "b":
                return torch.as_tensor(a, dtype=torch.bool, device=device)
            return torch.as_tensor(a, dtype=torch.long, device=device)

        out = {
            "numbers": t(self.numbers), "positions": t(self.positions), "cells": t(self.cells),
            "pbc": t(self.pbc), "n_atoms": t(self.n_atoms), "batch": t(self.structure_index),
        }
        for name in (labels if labels is not None else self.label_names):
            out[name] = t(self.label(name))
        return out

    # ------------------------------------------------------------- save/load
    def save(self, path: Any) -> None:
        """Write to ``path``: ``.npz`` is the fast binary cache, anything else goes
        through :func:`mlexplore.io.write` (extxyz for ``.xyz``/``.extxyz``)."""
        from ..io import write

        write(self, path)

    @classmethod
    def load(cls, path: Any) -> "StructureDataset":
        """Read a dataset written by :meth:`save` (or any file :func:`mlexplore.io.read` reads)."""
        from ..io import read

        return read(path)

    # --------------------------------------------------------------- display
    def summary_rows(self) -> list[tuple[str, str]]:
        """(field, value) rows of the summary table."""
        n = len(self)
        rows: list[tuple[str, str]] = [
            ("name", self.name or "-"),
            ("structures", f"{n}"),
            ("atoms", f"{self.n_total_atoms} (per structure {int(self.n_atoms.min()) if n else 0}"
                      f"–{int(self.n_atoms.max()) if n else 0})"),
            ("elements", " ".join(self.elements) or "-"),
            ("compositions", f"{len(set(self.formulas))}"),
            ("periodic", f"{int(self.pbc.all(axis=1).sum())} fully, "
                         f"{int((~self.pbc).all(axis=1).sum())} open"),
        ]
        tag_names = self.all_tags
        if tag_names:
            counts = {t: sum(t in tt for tt in self.tags) for t in tag_names}
            rows.append(("tags", ", ".join(f"{t} ({c})" for t, c in counts.items())))
        for kind, labels in (("per structure", self.structure_labels), ("per atom", self.atom_labels)):
            for k, v in labels.items():
                if v.dtype.kind in "fi" and v.size:
                    rng = f"{np.nanmin(v):.6g} … {np.nanmax(v):.6g}"
                else:
                    rng = "-"
                shape = "" if v.ndim == 1 else f" ×{'×'.join(map(str, v.shape[1:]))}"
                unit = LABEL_UNITS.get(k, "")
                rows.append((f"{k}{shape}", f"{kind}: {rng}" + (f"  [{unit}]" if unit else "")))
        return rows

    def summary(self) -> str:
        """A plain-text table: counts, elements, compositions, tags and label ranges."""
        rows = self.summary_rows()
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def __repr__(self) -> str:
        labels = ", ".join(self.label_names) or "no labels"
        nm = f"{self.name!r}, " if self.name else ""
        return (f"StructureDataset({nm}{len(self)} structures, {self.n_total_atoms} atoms, "
                f"elements {'/'.join(self.elements) or '-'}; labels: {labels})")

    def _repr_html_(self) -> str:
        import html

        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
                        for k, v in self.summary_rows())
        return f"<table><caption>StructureDataset</caption>{cells}</table>"


#: What every function that takes structures accepts (see :meth:`StructureDataset.coerce`).
Structures = StructureDataset | Atoms | Sequence[Atoms]

"""The LSMS text format of the HydraGNN FePt/CuAu datasets (seeds 000, 001).

One structure per file::

    -53289.8760414  (further fields ignored)      <- total energy, Rydberg
    26  0  0.000  0.000  0.000  25.83  2.65       <- Z index x y z charge moment
    78  1  1.430  1.430  1.430  78.12  0.31
    ...

``charge`` is the electron count on the site (e), ``moment`` the magnetic
moment (μ_B); the charge transfer is ``charge - Z``. Energies are converted
from Rydberg to eV on read (``ase.units.Rydberg``); positions are Å unless
``length_unit="bohr"``. The files carry no cell: pass ``cell`` for periodic
data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols
from ase.units import Bohr, Rydberg

from ..data.dataset import StructureDataset
from ..errors import InputError
from .files import atomic_write, parse_number, reading, text_lines

__all__ = ["read_lsms", "write_lsms", "mixing_energy"]

_FIELDS = ("Z", "index", "x", "y", "z", "charge", "moment")
_LENGTH = {"angstrom": 1.0, "bohr": Bohr}


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _read_one(path: Path, length_scale: float, n_atoms: int | None) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with reading(path, "LSMS"):
        lines = [line.rstrip("\r\n") for _, line in text_lines(path)]
    if not lines or not lines[0].split():
        raise InputError("empty first line: expected the total energy (Rydberg)", path=path, line=1,
                         field="energy")
    energy_ry = parse_number(lines[0].split()[0], path, 1, "energy")
    rows = []
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < len(_FIELDS):
            missing = ", ".join(_FIELDS[len(fields):])
            raise InputError(f"missing field(s) {missing}: found {len(fields)} of {len(_FIELDS)} "
                             f"({' '.join(_FIELDS)})", path=path, line=line_no, field=_FIELDS[len(fields)])
        values = [parse_number(tok, path, line_no, name, integer=name in ("Z", "index"))
                  for tok, name in zip(fields, _FIELDS)]
        z = int(values[0])
        if not 1 <= z < len(chemical_symbols):
            raise InputError(f"unknown element: Z = {z}", path=path, line=line_no, field="Z")
        rows.append((line_no, values))
    if not rows:
        raise InputError("no atom lines after the energy line", path=path, line=2)
    if n_atoms is not None and len(rows) != n_atoms:
        raise InputError(f"wrong atom count: {len(rows)} atom lines, expected {n_atoms}", path=path)
    data = np.array([v for _, v in rows])
    index = data[:, 1].astype(np.int64)
    base = 0 if index.min() == 0 else 1
    expected = np.arange(base, base + len(rows))
    if not np.array_equal(np.sort(index), expected):
        dup = [int(i) for i in np.unique(index) if (index == i).sum() > 1]
        gap = sorted(set(expected) - set(index.tolist()))
        what = f"duplicated index {dup[0]}" if dup else f"index {gap[0]} is missing"
        bad_line = rows[int(np.flatnonzero(index == dup[0])[1])][0] if dup else None
        raise InputError(f"atom indices are not {base}…{base + len(rows) - 1}: {what} "
                         f"(wrong atom count or a duplicated line?)", path=path, line=bad_line,
                         field="index")
    order = np.argsort(index, kind="stable")
    data = data[order]
    numbers = data[:, 0].astype(np.int64)
    return energy_ry * Rydberg, numbers, data[:, 2:5] * length_scale, data[:, 5], data[:, 6]


def mixing_energy(dataset: StructureDataset, references: Mapping[str, float] | str = "auto",
                  energy: str = "energy") -> np.ndarray:
    """Mixing energy per atom, ``ΔH = E/N − Σ_el c_el e_el`` (001 eq 12), in eV/atom.

    Parameters
    ----------
    references:
        Energy per atom (eV) of each pure element, or ``"auto"``: the lowest
        energy per atom among the dataset's single-element structures.
    energy:
        The per-structure total-energy label (eV).
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    symbols, counts = dataset.element_counts()
    e_per_atom = dataset.label(energy) / dataset.n_atoms
    if isinstance(references, str):
        if references != "auto":
            raise InputError(f"references must be a mapping or 'auto', got {references!r}",
                             field="references")
        refs = {}
        for j, sym in enumerate(symbols):
            pure = np.flatnonzero(counts[:, j] == dataset.n_atoms)
            if len(pure) == 0:
                raise InputError(f"references='auto' needs a pure {sym} structure in the data; "
                                 "pass references={element: eV/atom} instead", field="references")
            refs[sym] = float(e_per_atom[pure].min())
    else:
        refs = dict(references)
        missing = [s for s in symbols if s not in refs]
        if missing:
            raise InputError(f"no reference energy for element(s) {missing}", field="references")
    ref = np.array([refs[s] for s in symbols])
    return e_per_atom - (counts @ ref) / dataset.n_atoms


def read_lsms(
    path: str | os.PathLike,
    cell: Sequence[Sequence[float]] | np.ndarray | None = None,
    pbc: bool | Sequence[bool] | None = None,
    references: Mapping[str, float] | str | None = None,
    length_unit: str = "angstrom",
    n_atoms: int | None = None,
    pattern: str = "*",
    check: bool = True,
) -> StructureDataset:
    """Read LSMS text files (a directory of them, or one file).

    Parameters
    ----------
    path:
        A file, or a directory whose files matching ``pattern`` (hidden files
        skipped) are read in natural order (``2.txt`` before ``10.txt``).
    cell:
        Cell vectors in Å (rows) shared by all structures; ``None`` gives
        open (non-periodic) structures.
    pbc:
        Periodicity; defaults to True when a cell is given.
    references:
        Pure-element energies per atom in eV, or ``"auto"`` (from the pure
        structures in the data); when given, the label ``mixing_energy``
        (eV/atom) is added.
    length_unit:
        ``"angstrom"`` or ``"bohr"`` for the positions in the files.
    n_atoms:
        Expected atom count; a file with another count is an error.

    Returns
    -------
    StructureDataset with labels ``energy`` (eV), ``charges`` (e),
    ``charge_transfer`` (e) and ``magmoms`` (μ_B), plus ``mixing_energy``
    when ``references`` is given; ``meta["source"]`` is the file name.
    """
    from ..data.validate import check_dataset

    path = Path(path)
    if length_unit not in _LENGTH:
        raise InputError(f"length_unit must be one of {sorted(_LENGTH)}, got {length_unit!r}",
                         field="length_unit")
    if path.is_dir():
        files = sorted((p for p in path.glob(pattern) if p.is_file() and not p.name.startswith(".")),
                       key=_natural_key)
        if not files:
            raise InputError(f"no files matching {pattern!r} in the directory", path=path)
    elif path.exists():  # a file, or a device or pipe read as one
        files = [path]
    else:
        raise FileNotFoundError(f"{path}: no such file or directory")
    if cell is not None:
        cell = np.asarray(cell, dtype=float)
        if cell.shape == (3,):
            cell = np.diag(cell)
        if cell.shape != (3, 3):
            raise InputError(f"cell must be 3×3 (or 3 lengths), got shape {cell.shape}", field="cell")
    pbc_arr = np.broadcast_to(np.asarray(cell is not None if pbc is None else pbc, dtype=bool), (3,))
    parts = [_read_one(f, _LENGTH[length_unit], n_atoms) for f in files]
    n = len(parts)
    numbers = np.concatenate([p[1] for p in parts])
    charges = np.concatenate([p[3] for p in parts])
    ds = StructureDataset(
        numbers=numbers,
        positions=np.concatenate([p[2] for p in parts]),
        cells=np.broadcast_to(np.zeros((3, 3)) if cell is None else cell, (n, 3, 3)),
        pbc=np.broadcast_to(pbc_arr, (n, 3)),
        n_atoms=np.array([len(p[1]) for p in parts]),
        structure_labels={"energy": np.array([p[0] for p in parts])},
        atom_labels={"charges": charges, "charge_transfer": charges - numbers,
                     "magmoms": np.concatenate([p[4] for p in parts])},
        meta=[{"source": f.name} for f in files],
        name=path.name,
    )
    if check:
        for s, f in enumerate(files):  # name the offending file itself, line 2 = first atom
            try:
                check_dataset(ds.select([s]))
            except InputError as exc:
                raise InputError(exc.problem, path=f, line=2, field=exc.field) from None
    if references is not None:
        ds.add_label("mixing_energy", mixing_energy(ds, references), per_atom=False)
    return ds


def write_lsms(dataset: StructureDataset, directory: str | os.PathLike, prefix: str = "config",
               length_unit: str = "angstrom") -> list[Path]:
    """Write one LSMS text file per structure into ``directory``; returns the paths.

    Needs the ``energy`` label (eV, written in Rydberg). Charges come from
    ``charges`` or ``charge_transfer + Z``; moments from scalar ``magmoms``
    (zeros where absent).
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    if "energy" not in dataset:
        raise InputError("writing LSMS files needs the 'energy' label", field="energy")
    if "charges" in dataset.atom_labels:
        charges = dataset.atom_labels["charges"]
    elif "charge_transfer" in dataset.atom_labels:
        charges = dataset.atom_labels["charge_transfer"] + dataset.numbers
    else:
        charges = np.zeros(dataset.n_total_atoms)
    moments = dataset.atom_labels.get("magmoms", np.zeros(dataset.n_total_atoms))
    if moments.ndim != 1:
        raise InputError("LSMS files hold scalar (collinear) moments only", field="magmoms")
    scale = 1.0 / _LENGTH[length_unit]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    width = len(str(max(len(dataset) - 1, 0)))
    paths = []
    for s in range(len(dataset)):
        sl = dataset.atom_slice(s)
        p = directory / f"{prefix}_{s:0{width}d}.txt"
        with atomic_write(p) as fh:
            fh.write(f"{float(dataset.label('energy')[s]) / Rydberg!r}\n")
            for k, (z, pos, q, m) in enumerate(zip(dataset.numbers[sl], dataset.positions[sl] * scale,
                                                    charges[sl], moments[sl])):
                x, y, zz = (float(c) for c in pos)
                fh.write(f"{int(z)} {k} {x!r} {y!r} {zz!r} {float(q)!r} {float(m)!r}\n")
        paths.append(p)
    return paths

"""n2p2 / RuNNer ``input.data`` files.

Layout of one structure (keywords first on each line)::

    begin
    comment free text
    lattice ax ay az          (three lines, or none for a cluster)
    atom x y z El c n fx fy fz
    energy E
    charge Q
    end

``c`` is the atomic charge (e) and ``n`` an unused column (written 0). The
format holds positions, cell, elements, charges, forces, total energy and
total charge; other labels are dropped on write (with a warning). mlexplore
writes ``mlexplore tags=a,b meta={json}`` into the comment line so that its
own round trips keep tags and metadata; a foreign comment is kept as
``meta["comment"]``.

n2p2 itself is unit-agnostic: ``units="eV-angstrom"`` (default) reads the
numbers as they are; ``units="hartree-bohr"`` converts atomic units (RuNNer
convention) to eV and Å.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from ase.units import Bohr, Hartree

from ..data.dataset import StructureDataset, parse_meta
from ..errors import InputError
from .files import atomic_write, parse_number, text_lines

__all__ = ["read_n2p2", "write_n2p2"]

_UNITS = {"eV-angstrom": (1.0, 1.0), "hartree-bohr": (Hartree, Bohr)}
_ATOM_FIELDS = ("x", "y", "z", "element", "c", "n", "fx", "fy", "fz")


def _parse_comment(text: str, path=None, line: int | None = None) -> tuple[list[str], dict]:
    """Tags and metadata of a comment line. A comment mlexplore wrote (``mlexplore tags=… meta={…}``)
    must hold valid JSON metadata; one from another program is kept whole as ``meta["comment"]``."""
    tags: list[str] = []
    meta: dict = {}
    ours = text.split()[:1] == ["mlexplore"]
    if "meta=" in text:
        head, _, js = text.partition("meta=")
        if ours:
            meta = parse_meta(js, path=path, line=line, field="meta")
        else:
            try:
                meta = json.loads(js)
            except json.JSONDecodeError:
                meta = {}
            if not isinstance(meta, dict):
                meta = {}
            if not meta:
                meta = {"comment": text}
        text = head
    for tok in text.split():
        if tok.startswith("tags="):
            tags = [t for t in tok[5:].split(",") if t]
    words = text.split()
    if not meta and words and words[0] != "mlexplore":  # a comment from another program: keep it
        meta = {"comment": text.strip()}
    return tags, meta


def read_n2p2(path: str | os.PathLike, units: str = "eV-angstrom", check: bool = True) -> StructureDataset:
    """Read an n2p2 ``input.data`` file.

    Returns a dataset with labels ``energy`` (eV), ``forces`` (eV/Å),
    ``charges`` (e) and ``charge`` (total, e). Every malformed line raises
    :class:`~mlexplore.errors.InputError` with the file and line.
    """
    from ..data.validate import check_dataset

    if units not in _UNITS:
        raise InputError(f"units must be one of {sorted(_UNITS)}, got {units!r}", field="units")
    e_scale, l_scale = _UNITS[units]
    structures = []
    current: dict | None = None
    for line_no, line in text_lines(path):
        fields = line.split()
        if not fields:
            continue
        key = fields[0]
        if key == "begin":
            if current is not None:
                raise InputError(f"'begin' inside the structure that begins on line {current['line']} "
                                 "(missing 'end')", path=path, line=line_no)
            current = {"line": line_no, "lattice": [], "atoms": [], "energy": None, "charge": 0.0,
                       "comment": "", "seen": {}}
            continue
        if current is None:
            raise InputError(f"{key!r} outside a begin … end block", path=path, line=line_no)
        if key in ("energy", "charge", "comment") and key in current["seen"]:
            raise InputError(f"{key!r} is given twice in the structure that begins on line {current['line']} "
                             f"(first on line {current['seen'][key]}): which one is meant?",
                             path=path, line=line_no, field=key)
        if key in ("energy", "charge", "comment"):
            current["seen"][key] = line_no
        if key == "comment":
            current["comment"] = line.strip()[len("comment"):].strip()
        elif key == "lattice":
            if len(fields) != 4:
                raise InputError(f"'lattice' needs 3 numbers, found {len(fields) - 1}",
                                 path=path, line=line_no, field="lattice")
            current["lattice"].append([parse_number(t, path, line_no, "lattice") for t in fields[1:]])
        elif key == "atom":
            if len(fields) != 10:
                missing = _ATOM_FIELDS[len(fields) - 1] if len(fields) < 10 else None
                what = f"missing field {missing!r}" if missing else "too many fields"
                raise InputError(f"{what}: an atom line has 10 entries (atom {' '.join(_ATOM_FIELDS)}), "
                                 f"found {len(fields)}", path=path, line=line_no, field=missing)
            el = fields[4]
            if el not in atomic_numbers:
                raise InputError(f"unknown element {el!r}", path=path, line=line_no, field="element")
            nums = [parse_number(t, path, line_no, name) for t, name in zip(fields[1:4] + fields[5:],
                                                                      _ATOM_FIELDS[:3] + _ATOM_FIELDS[4:])]
            current["atoms"].append((atomic_numbers[el], nums))
        elif key == "energy":
            if len(fields) != 2:
                raise InputError("'energy' needs one number", path=path, line=line_no, field="energy")
            current["energy"] = parse_number(fields[1], path, line_no, "energy")
        elif key == "charge":
            if len(fields) != 2:
                raise InputError("'charge' needs one number", path=path, line=line_no, field="charge")
            current["charge"] = parse_number(fields[1], path, line_no, "charge")
        elif key == "end":
            if current["energy"] is None:
                raise InputError(f"the structure that begins on line {current['line']} has no 'energy'",
                                 path=path, line=line_no, field="energy")
            if not current["atoms"]:
                raise InputError(f"the structure that begins on line {current['line']} has no atoms",
                                 path=path, line=line_no)
            if len(current["lattice"]) not in (0, 3):
                raise InputError(f"{len(current['lattice'])} 'lattice' lines; need 3 (periodic) or "
                                 "none (cluster)", path=path, line=current["line"], field="lattice")
            structures.append(current)
            current = None
        else:
            raise InputError(f"unknown keyword {key!r}", path=path, line=line_no)
    if current is not None:
        raise InputError(f"file ends inside the structure that begins on line {current['line']} "
                         "(missing 'end')", path=path)
    if not structures:
        raise InputError("no structures (no begin … end block) in the file", path=path)

    numbers = np.array([z for s in structures for z, _ in s["atoms"]], dtype=np.int64)
    vals = np.array([v for s in structures for _, v in s["atoms"]])  # x y z c n fx fy fz
    tags_meta = [_parse_comment(s["comment"], path, s["seen"].get("comment")) for s in structures]
    ds = StructureDataset(
        numbers=numbers,
        positions=vals[:, 0:3] * l_scale,
        cells=np.array([np.array(s["lattice"]) * l_scale if s["lattice"] else np.zeros((3, 3))
                        for s in structures]),
        pbc=np.array([[bool(s["lattice"])] * 3 for s in structures]),
        n_atoms=np.array([len(s["atoms"]) for s in structures]),
        structure_labels={"energy": np.array([s["energy"] for s in structures]) * e_scale,
                          "charge": np.array([s["charge"] for s in structures])},
        atom_labels={"forces": vals[:, 5:8] * (e_scale / l_scale), "charges": vals[:, 3]},
        tags=[t for t, _ in tags_meta],
        meta=[m for _, m in tags_meta],
        name=os.path.basename(str(path)),
    )
    if check:
        check_dataset(ds, path=path, lines=[s["line"] for s in structures])
    return ds


def write_n2p2(dataset: StructureDataset, path: str | os.PathLike, units: str = "eV-angstrom") -> None:
    """Write ``dataset`` as an n2p2 ``input.data`` file (atomically).

    Needs ``energy``; writes ``forces`` and ``charges`` when present (zeros
    otherwise). Labels the format cannot hold are dropped with a warning.
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    if units not in _UNITS:
        raise InputError(f"units must be one of {sorted(_UNITS)}, got {units!r}", field="units")
    if "energy" not in dataset.structure_labels:
        raise InputError("writing n2p2 needs the per-structure 'energy' label", field="energy")
    e_scale, l_scale = _UNITS[units]
    held = {"energy", "charge", "forces", "charges"}
    dropped = [k for k in dataset.label_names if k not in held]
    if dropped:
        warnings.warn(f"n2p2 files cannot hold the labels {dropped}; they were not written", stacklevel=2)
    N = dataset.n_total_atoms
    forces = dataset.atom_labels.get("forces", np.zeros((N, 3))) / (e_scale / l_scale)
    charges = dataset.atom_labels.get("charges", np.zeros(N))
    total_charge = dataset.structure_labels.get("charge", np.zeros(len(dataset)))
    positions = dataset.positions / l_scale
    energy = dataset.structure_labels["energy"] / e_scale

    def f(x: float) -> str:
        return repr(float(x))

    with atomic_write(path) as fh:
        for s in range(len(dataset)):
            sl = dataset.atom_slice(s)
            comment = "mlexplore"
            if dataset.tags[s]:
                comment += " tags=" + ",".join(dataset.tags[s])
            if dataset.meta[s]:
                comment += " meta=" + json.dumps(dataset.meta[s], sort_keys=True)
            out = ["begin", f"comment {comment}"]
            if dataset.pbc[s].any():
                out += ["lattice " + " ".join(f(x) for x in row) for row in dataset.cells[s] / l_scale]
            for a in range(sl.start, sl.stop):
                out.append("atom " + " ".join(f(x) for x in positions[a]) + f" {chemical_symbols[dataset.numbers[a]]} "
                           f"{f(charges[a])} 0.0 " + " ".join(f(x) for x in forces[a]))
            out += [f"energy {f(energy[s])}", f"charge {f(total_charge[s])}", "end"]
            fh.write("\n".join(out) + "\n")

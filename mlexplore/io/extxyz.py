"""Extended XYZ: lossless writing, checked reading.

Writing: ASE's extxyz writer rounds per-atom columns to 8 decimals; this one
writes every float with 17 significant digits (``repr``), so a round trip is
bit-for-bit. Files stay standard extended XYZ that ASE, OVITO or MACE read.
Tags go into ``tags="a b"``, metadata into ``mlx_meta`` (a JSON string),
identifiers into ``id``.

Reading: the file is first scanned line by line, so a wrong atom count, a
missing column, text in a number column, a non-finite number or an unknown
element is reported with its line; then ASE parses it.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from ..data.dataset import StructureDataset, parse_meta
from ..errors import InputError
from .files import atomic_write, open_text, text_lines

__all__ = ["write_extxyz", "scan_extxyz", "read_extxyz"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PROPS = re.compile(r"Properties=(\S+)", re.IGNORECASE)


def _fmt_float(x: float) -> str:
    return repr(float(x))


def _fmt_value(v: object) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    arr = np.asarray(v)
    if arr.dtype.kind == "b":
        return '"' + " ".join("T" if x else "F" for x in arr.ravel()) + '"' if arr.ndim else ("T" if arr else "F")
    if arr.dtype.kind == "f":
        body = " ".join(_fmt_float(x) for x in arr.ravel())
    elif arr.dtype.kind in "iu":
        body = " ".join(str(int(x)) for x in arr.ravel())
    else:
        raise TypeError(f"cannot write a value of type {arr.dtype} to extxyz")
    return body if arr.ndim == 0 else f'"{body}"'


def _column(name: str, arr: np.ndarray) -> tuple[str, list[str]]:
    """Properties entry and per-atom formatted strings for one per-atom array."""
    kind = arr.dtype.kind
    code = {"f": "R", "i": "I", "u": "I", "b": "L"}.get(kind)
    if code is None:
        raise TypeError(f"per-atom label {name!r} has unsupported type {arr.dtype}")
    two_d = arr.reshape(len(arr), -1)
    if kind == "f":
        rows = [" ".join(_fmt_float(x) for x in r) for r in two_d]
    elif kind == "b":
        rows = [" ".join("T" if x else "F" for x in r) for r in two_d]
    else:
        rows = [" ".join(str(int(x)) for x in r) for r in two_d]
    return f"{name}:{code}:{two_d.shape[1]}", rows


def _write_frames(fh, dataset: StructureDataset) -> None:
    from ase.data import chemical_symbols

    for name in dataset.label_names:
        if not _KEY.match(name):
            raise InputError("label names must be letters, digits, '_' or '-' to be written to extxyz",
                             field=name)
    symbols = np.array(chemical_symbols, dtype=object)[dataset.numbers]
    for s in range(len(dataset)):
        sl = dataset.atom_slice(s)
        n = sl.stop - sl.start
        props = ["species:S:1", "pos:R:3"]
        columns = [list(symbols[sl]), [" ".join(_fmt_float(x) for x in r) for r in dataset.positions[sl]]]
        for name, arr in dataset.atom_labels.items():
            prop, rows = _column(name, arr[sl])
            props.append(prop)
            columns.append(rows)
        parts = []
        if dataset.cells[s].any():
            parts.append(f'Lattice="{" ".join(_fmt_float(x) for x in dataset.cells[s].ravel())}"')
        parts.append("Properties=" + ":".join(props))
        for name, arr in dataset.structure_labels.items():
            val = arr[s]
            if name == "stress" and np.shape(val) == (6,):  # extxyz wants the full 3x3 stress
                xx, yy, zz, yz, xz, xy = val
                val = np.array([xx, xy, xz, xy, yy, yz, xz, yz, zz])
            parts.append(f"{name}={_fmt_value(val)}")
        if dataset.tags[s]:
            parts.append(f"tags={_fmt_value(' '.join(dataset.tags[s]))}")
        if dataset.meta[s]:
            parts.append(f"mlx_meta={_fmt_value(json.dumps(dataset.meta[s], sort_keys=True))}")
        parts.append(f"id={int(dataset.ids[s])}")
        parts.append('pbc="' + " ".join("T" if p else "F" for p in dataset.pbc[s]) + '"')
        fh.write(f"{n}\n{' '.join(parts)}\n")
        fh.writelines(" ".join(col[a] for col in columns) + "\n" for a in range(n))


def write_extxyz(dataset: StructureDataset, path: str | os.PathLike) -> None:
    """Write ``dataset`` to extended XYZ at ``path`` (atomically; ``.gz``/``.xz`` compress)."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    with atomic_write(path) as fh:
        _write_frames(fh, dataset)


def _parse_properties(comment: str, path, line_no: int) -> list[tuple[str, str, int]]:
    m = _PROPS.search(comment)
    if not m:
        return [("species", "S", 1), ("pos", "R", 3)]
    tokens = m.group(1).strip('"').split(":")
    if len(tokens) % 3:
        raise InputError(f"malformed Properties={m.group(1)} (expected name:type:count triples)",
                         path=path, line=line_no, field="Properties")
    out = []
    for k in range(0, len(tokens), 3):
        name, code, count = tokens[k:k + 3]
        if code.upper() not in "RISL" or not count.isdigit():
            raise InputError(f"malformed Properties entry {':'.join(tokens[k:k + 3])!r}",
                             path=path, line=line_no, field="Properties")
        out.append((name, code.upper(), int(count)))
    return out


#: one key=value pair of a comment line: the value quoted (with backslash escapes), in braces, or bare
_PAIR = re.compile(r'\s*([^\s=]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|\{[^}]*\}|[^\s"]+))?')
#: per-structure labels that are numbers, and how many (stress: Voigt 6 or a full 3 × 3)
_NUMERIC_INFO = {"energy": (1,), "free_energy": (1,), "mixing_energy": (1,), "stress": (6, 9), "virial": (6, 9)}
#: per-atom columns of a known meaning: their type and number of values per atom
_KNOWN_COLUMNS = {"pos": (3,), "forces": (3,), "force": (3,), "energies": (1,), "charges": (1,),
                  "magmoms": (1, 3), "initial_magmoms": (1, 3), "momenta": (3,), "velocities": (3,)}


def _check_comment(comment: str, props: list[tuple[str, str, int]], path, line_no: int) -> None:
    """The labels of a comment line, as far as their meaning is known: a key given twice, a
    numeric label that is not a number (or has the wrong number of values), a known per-atom
    column of the wrong type or width. (NaN and inf are named later, with their structure, by
    :func:`~mlexplore.data.check_dataset`.)"""
    seen: dict[str, str] = {}
    pos = 0
    text = comment.rstrip("\n")
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        key, value = m.group(1), m.group(2)
        if value is None:  # a bare word (a flag, or a plain XYZ comment's text)
            continue
        low = key.lower()
        if low in seen:
            raise InputError(f"{key!r} is given twice ({seen[low]!r} and {value!r}): which one is meant?",
                             path=path, line=line_no, field=key)
        seen[low] = value
        if low == "mlx_meta":
            text_value = value
            if value.startswith('"'):
                text_value = re.sub(r'\\(.)', r'\1', value[1:-1])
            parse_meta(text_value, path=path, line=line_no, field=key)
        if low in _NUMERIC_INFO:
            tokens = value.strip('"{}').replace(",", " ").split()
            try:
                values = [float(t) for t in tokens]
            except ValueError:
                raise InputError(f"{key}={value} is not a number", path=path, line=line_no, field=key) from None
            if len(values) not in _NUMERIC_INFO[low]:
                raise InputError(f"{key} has {len(values)} values, expected "
                                 f"{' or '.join(map(str, _NUMERIC_INFO[low]))}", path=path, line=line_no, field=key)
    for name, code, count in props:
        widths = _KNOWN_COLUMNS.get(name.lower())
        if widths is not None and (code != "R" or count not in widths):
            raise InputError(f"column {name}:{code}:{count} of Properties: {name} are real numbers, "
                             f"{' or '.join(map(str, widths))} per atom", path=path, line=line_no, field=name)


def scan_extxyz(path: str | os.PathLike) -> list[int]:
    """Check the layout of an (extended) XYZ file; return the line where each structure starts.

    Raises :class:`~mlexplore.errors.InputError` naming the file, the line and
    the column for: a count line that is not a number, fewer atom lines than
    the count says (or more: the extra line is then not a count), a line with
    too few or too many fields, text in a numeric column, NaN/inf, an unknown
    element.
    """
    starts: list[int] = []
    lines = text_lines(path)
    for line_no, line in lines:
        if not line.strip():
            # blank lines after the last frame are harmless
            continue
        try:
            n = int(line.split()[0])
            if n < 0 or len(line.split()) != 1:
                raise ValueError
        except ValueError:
            hint = (" (is the atom count of the structure before it too small?)" if starts else "")
            raise InputError(f"expected the number of atoms, found {line.strip()[:60]!r}{hint}",
                             path=path, line=line_no) from None
        starts.append(line_no)
        comment_no, comment = next(lines, (line_no + 1, None))
        if comment is None:
            raise InputError("file ends before the comment line", path=path, line=comment_no)
        props = _parse_properties(comment, path, comment_no)
        _check_comment(comment, props, path, comment_no)
        n_fields = sum(c for _, _, c in props)
        for k in range(n):
            atom_no, atom_line = next(lines, (None, None))
            if atom_line is None:
                raise InputError(f"file ends after {k} of {n} atom lines (wrong atom count on line "
                                 f"{line_no}?)", path=path, line=line_no)
            fields = atom_line.split()
            if len(fields) != n_fields:
                raise InputError(f"expected {n_fields} fields ({':'.join(p for p, _, _ in props)}), "
                                 f"found {len(fields)}", path=path, line=atom_no)
            col = 0
            for name, code, count in props:
                for value in fields[col:col + count]:
                    if code == "R":
                        try:
                            x = float(value)
                        except ValueError:
                            raise InputError(f"{value!r} is not a number", path=path, line=atom_no,
                                             field=name) from None
                        if not np.isfinite(x):
                            raise InputError(f"non-finite value {value!r}", path=path, line=atom_no,
                                             field=name)
                    elif code == "I":
                        try:
                            int(value)
                        except ValueError:
                            raise InputError(f"{value!r} is not an integer", path=path, line=atom_no,
                                             field=name) from None
                    elif name.lower() in ("species", "element") and value not in atomic_numbers:
                        raise InputError(f"unknown element {value!r}", path=path, line=atom_no,
                                         field=name)
                col += count
    if not starts:
        raise InputError("no structures in the file", path=path)
    return starts


def read_extxyz(path: str | os.PathLike, check: bool = True, name: str = "") -> StructureDataset:
    """Read an (extended) XYZ file with all labels; see :func:`mlexplore.io.read`."""
    from ase.io import read as ase_read

    from ..data.validate import check_dataset

    starts = scan_extxyz(path)
    source = path
    if Path(path).suffix in (".gz", ".bz2", ".xz"):
        # ASE seeks through a compressed stream frame by frame (10x slower); decompress once
        with open_text(path) as fh:
            source = io.StringIO(fh.read())
    try:
        images = ase_read(source, index=":", format="extxyz")
    except Exception as exc:  # ASE's own parse errors: wrap with the file name
        raise InputError(f"extxyz parser: {exc}", path=path) from exc
    ds = StructureDataset.from_atoms(images, name=name or os.path.basename(str(path)))
    if check:
        check_dataset(ds, path=path, lines=starts)
    return ds

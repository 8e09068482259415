"""Reading and writing structures with their labels.

- :func:`read` / :func:`write`: any format, chosen by name or suffix —
  ``.npz`` (mlexplore's binary cache), ``.xyz``/``.extxyz`` (lossless extended
  XYZ, optionally ``.gz``/``.bz2``/``.xz``), ``input.data`` or ``format="n2p2"``,
  ``format="lsms"`` (a directory or file), and everything else ASE reads
  (VASP OUTCAR/vasprun, Quantum ESPRESSO output, CIF, …).
- :func:`read_lsms`, :func:`read_n2p2`, :func:`write_n2p2`, :func:`write_lsms`.

Malformed input raises :class:`mlexplore.errors.InputError` (a ``ValueError``)
naming the file, line and field.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.dataset import StructureDataset
from ..errors import InputError
from .cache import load_cache, save_cache
from .extxyz import read_extxyz, scan_extxyz, write_extxyz
from .files import append_line, atomic_write, open_text, reading, strip_compression
from .lsms import mixing_energy, read_lsms, write_lsms
from .n2p2 import read_n2p2, write_n2p2
from .predictions import write_predictions
from .text import parse_numbers, parse_pairs, parse_value

__all__ = ["read", "write", "read_lsms", "write_lsms", "read_n2p2", "write_n2p2", "read_extxyz",
           "write_extxyz", "scan_extxyz", "save_cache", "load_cache", "mixing_energy", "atomic_write",
           "open_text", "append_line", "reading", "write_predictions", "parse_value", "parse_numbers", "parse_pairs"]


def _guess_format(path: Path) -> str | None:
    plain = strip_compression(path)
    if path.is_dir():
        return "lsms"
    if plain.suffix == ".npz":
        return "npz"
    if plain.suffix in (".xyz", ".extxyz"):
        return "extxyz"
    if plain.name == "input.data" or plain.suffix == ".data":
        return "n2p2"
    return None


def read(path: str | os.PathLike, format: str | None = None, check: bool = True, **kwargs) -> StructureDataset:
    """Read structures and labels from ``path`` into a :class:`StructureDataset`.

    Parameters
    ----------
    path:
        File (or, for LSMS, directory).
    format:
        ``"npz"``, ``"extxyz"``, ``"n2p2"``, ``"lsms"`` or any ASE format name;
        guessed from the name when omitted.
    check:
        Check for NaN/inf and overlapping atoms (see
        :func:`mlexplore.data.check_dataset`); the binary cache is trusted.
    kwargs:
        Passed to the format's reader (e.g. ``cell=`` and ``references=`` for LSMS,
        ``units=`` for n2p2, ``index=`` for ASE formats).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    fmt = format or _guess_format(p)
    with reading(p, fmt or ""):
        if fmt == "npz":
            return load_cache(p)
        if fmt == "extxyz":
            return read_extxyz(p, check=check)
        if fmt == "n2p2":
            return read_n2p2(p, check=check, **kwargs)
        if fmt == "lsms":
            return read_lsms(p, check=check, **kwargs)
    from ase.io import read as ase_read

    from ..data.validate import check_dataset

    try:
        images = ase_read(p, index=kwargs.pop("index", ":"), format=fmt, **kwargs)
    except Exception as exc:
        raise InputError(f"could not be read{' as ' + fmt if fmt else ''} by ASE: "
                         f"{type(exc).__name__}: {exc}", path=p) from exc
    ds = StructureDataset.from_atoms(images if isinstance(images, list) else [images], name=p.name,
                                     source=p.name)
    if check:
        check_dataset(ds, path=p)
    return ds


def write(dataset: StructureDataset, path: str | os.PathLike, format: str | None = None, **kwargs) -> None:
    """Write ``dataset`` to ``path`` atomically (a failed write leaves the old file intact).

    ``.npz`` → binary cache (lossless); ``.xyz``/``.extxyz`` (optionally
    compressed) → lossless extended XYZ; ``input.data``/``format="n2p2"`` →
    n2p2; ``format="lsms"`` → a directory of LSMS files; anything else → ASE's
    writer for that format (which may not hold every label).
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    p = Path(path)
    fmt = format or _guess_format(p)
    if fmt == "npz":
        save_cache(dataset, p, **kwargs)
    elif fmt == "extxyz":
        write_extxyz(dataset, p)
    elif fmt == "n2p2":
        write_n2p2(dataset, p, **kwargs)
    elif fmt == "lsms":
        write_lsms(dataset, p, **kwargs)
    else:
        from ase.io import write as ase_write

        with atomic_write(p, text=False) as tmp:
            ase_write(tmp, dataset.to_atoms(), format=fmt or None, **kwargs)

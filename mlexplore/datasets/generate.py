"""Generate a built-in dataset by its name (what ``mlexplore generate`` runs).

    from mlexplore.datasets.generate import check_output_file, generate_dataset

    check_output_file("agpd.xyz")  # before the work: a name mlexplore can write every structure to
    ds = generate_dataset("lattice_alloy", n=4, pair="AgPd")
"""

from __future__ import annotations

import inspect

import os
from pathlib import Path
from typing import Any

from ..data.dataset import StructureDataset
from ..errors import InputError
from ..io import strip_compression
from .registry import REGISTRY

__all__ = ["generate_dataset", "check_output_file", "OUTPUT_FORMATS"]

#: the files :meth:`StructureDataset.save` writes a whole dataset to, by name
OUTPUT_FORMATS = ".xyz/.extxyz[.gz], .npz, input.data (n2p2) or an ASE format of many structures (.traj, .cif, …)"


def check_output_file(path: str | os.PathLike, option: str = "--out", structures: bool = True) -> None:
    """Refuse, before any work, a ``path`` that :meth:`StructureDataset.save` could not write a dataset to.

    An existing directory (``save`` would write LSMS files into it) and a name that tells no
    format holding many structures (no suffix, ``.txt``, ``POSCAR``: ASE writes one structure)
    raise :class:`InputError` naming ``path`` and ``option``; an existing file is overwritten
    (atomically). ``structures=False``: any other output file, only an existing directory is refused.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"is an existing directory; {option} wants a file name"
                         + (f" ({OUTPUT_FORMATS})" if structures else ""), path=p)
    plain = strip_compression(p)
    if not structures or plain.suffix in (".npz", ".xyz", ".extxyz", ".data") or plain.name == "input.data":
        return
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    try:
        fmt = ioformats.get(filetype(p, read=False))
    except UnknownFileTypeError:
        fmt = None
    if plain != p or fmt is None or not fmt.can_write or fmt.single:
        why = (" (only extxyz is written compressed)" if plain != p else
               f" (ASE's {fmt.name!r} holds one)" if fmt and fmt.can_write else
               f" (ASE cannot write {fmt.name!r})" if fmt else "")
        raise InputError(f"{option}: the name tells no format that holds many structures{why}; give "
                         f"{OUTPUT_FORMATS}", path=p)


def generate_dataset(name: str, n: int | None = None, seed: int = 0, progress: bool = True, cache: bool = True,
                     **params: Any) -> StructureDataset:
    """The built-in dataset ``name`` (a key of :data:`mlexplore.datasets.REGISTRY`).

    ``n`` sets the dataset's size parameter (e.g. ``n_per_composition``; None: the generator's
    default); ``seed`` the random seed unless ``params`` holds one; ``params`` go to the generator
    (e.g. ``pair="AgPd"``). An unknown name or argument raises :class:`InputError`.
    """

    entry = REGISTRY.get(name)
    if entry is None:
        raise InputError(f"unknown dataset {name!r}; choose from {', '.join(REGISTRY)}", field="name")
    if n is not None:
        params[entry.size_parameter] = n
    params.setdefault("seed", seed)
    accepted = inspect.signature(entry.function).parameters
    unknown = [k for k in params if k not in accepted]
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        known = [k for k, p in accepted.items() if k not in ("progress", "cache") and p.kind is not p.VAR_POSITIONAL]
        raise InputError(f"{name} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                         f"{', '.join(known)}", field=unknown[0])
    return entry.function(progress=progress, cache=cache, **params)

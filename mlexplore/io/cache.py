"""The binary cache: one ``.npz`` file per dataset.

Why ``.npz``: it needs nothing beyond numpy, stores the flat float64/int64
arrays of :class:`StructureDataset` bit-for-bit, loads without pickle
(``allow_pickle=False``, so a cache file cannot run code), and reads the
28 058-structure CuAu set in 0.15 s where parsing and checking the same data
as extxyz takes 48 s (measured on the 2-core development machine). Tags and metadata travel as one JSON string inside
the archive. HDF5 would add a compiled dependency for no gain at this size.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib

import numpy as np

from ..data.dataset import StructureDataset, Structures
from ..errors import InputError
from .files import atomic_write

__all__ = ["save_cache", "load_cache", "CACHE_FORMAT", "CACHE_VERSION", "content_hash"]

CACHE_FORMAT = "mlexplore-dataset"
#: 2: the header records the SHA-256 of the arrays (``content_hash``); version-1 files have none
CACHE_VERSION = 2

#: dtype kinds and shapes (``N``: atoms, ``S``: structures) of the arrays every cache file holds
_REQUIRED = {"numbers": ("iu", ("N",)), "positions": ("f", ("N", 3)), "cells": ("f", ("S", 3, 3)),
             "pbc": ("b", ("S", 3)), "n_atoms": ("iu", ("S",)), "ids": ("iu", ("S",))}
#: a compressed member that claims to grow more than this many times on decompression, beyond
#: :data:`_BOMB_FLOOR` bytes, is refused (real coordinates compress 2–10×)
_BOMB_RATIO, _BOMB_FLOOR = 200, 1 << 26


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes (sorted by name), hex."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_cache(dataset: Structures, path: str | os.PathLike, compress: bool = False) -> None:
    """Write ``dataset`` (or ASE ``Atoms``) to ``path`` (``.npz``) atomically, with the SHA-256 of
    its arrays in the header; ``compress`` trades speed for size."""
    dataset = StructureDataset.coerce(dataset)
    arrays = {"numbers": dataset.numbers, "positions": dataset.positions, "cells": dataset.cells,
              "pbc": dataset.pbc, "n_atoms": dataset.n_atoms, "ids": dataset.ids}
    for k, v in dataset.structure_labels.items():
        arrays[f"s:{k}"] = v
    for k, v in dataset.atom_labels.items():
        arrays[f"a:{k}"] = v
    for k, v in arrays.items():
        if v.dtype.kind == "O":
            raise InputError("object arrays cannot be cached", field=k)
    header = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "name": dataset.name,
              "tags": [list(t) for t in dataset.tags], "meta": dataset.meta, "sha256": content_hash(arrays)}
    arrays["header"] = np.array(json.dumps(header))
    with atomic_write(path, text=False) as tmp:
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)


def _check_sizes(path: str | os.PathLike) -> None:
    """Refuse members whose ``.npy`` header claims more data than the member holds (a truncated or
    crafted file would otherwise make numpy allocate what the header says before reading)."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(
                    _BOMB_FLOOR, _BOMB_RATIO * info.compress_size):
                raise InputError(f"array {name!r} claims {info.file_size} bytes from {info.compress_size} "
                                 "compressed ones: damaged or crafted", path=path)
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(fh, max_header_size=1 << 16)
                claimed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                held = info.file_size - fh.tell()
            if dtype.hasobject:
                raise InputError(f"array {name!r} holds Python objects, which a cache never does", path=path)
            if claimed != held:
                raise InputError(f"array {name!r} claims {claimed} bytes (shape {shape}, {dtype}) but holds "
                                 f"{held}: a truncated or damaged cache file", path=path)


def _check_arrays(arrays: dict[str, np.ndarray], header: dict, path: str | os.PathLike) -> None:
    """Dtypes, shapes, finiteness and the recorded content hash of a cache's arrays."""
    missing = [k for k in _REQUIRED if k not in arrays] + [k for k in ("tags", "meta") if k not in header]
    if missing:
        raise InputError(f"an incomplete dataset cache: no {', '.join(map(repr, missing))} "
                         "(a damaged or foreign file)", path=path)
    sizes = {"N": len(arrays["numbers"]), "S": len(arrays["n_atoms"])}
    for name, (kinds, shape) in _REQUIRED.items():
        a = arrays[name]
        want = tuple(sizes.get(d, d) for d in shape)
        if a.dtype.kind not in kinds or a.shape != want:
            raise InputError(f"array {name!r} is {a.dtype} of shape {a.shape}, expected "
                             f"{'integer' if 'i' in kinds else {'f': 'float', 'b': 'bool'}[kinds]} of shape {want}",
                             path=path, field=name)
    for name, a in arrays.items():
        if name == "header" or a.dtype.kind not in "fc":
            continue
        bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1) if a.ndim else ~np.isfinite(a.reshape(1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "atom" if name in ("positions",) or name.startswith("a:") else "structure"
            raise InputError(f"non-finite value in {what} {row}", path=path, field=name.split(":")[-1])
    recorded = header.get("sha256")
    if recorded is not None and recorded != content_hash({k: v for k, v in arrays.items() if k != "header"}):
        raise InputError("the arrays do not match the content hash recorded when the file was written: "
                         "the file was damaged or changed", path=path)


def load_cache(path: str | os.PathLike) -> StructureDataset:
    """Read a dataset written by :func:`save_cache`, checked like any file: the sizes its arrays
    claim, their dtypes, shapes and finiteness, and the content hash recorded at write
    (:class:`InputError` naming the file and array for each)."""
    try:
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as z:
            if "header" not in z.files:
                raise InputError("not an mlexplore dataset cache (no header)", path=path)
            try:
                header = json.loads(str(z["header"]))
            except json.JSONDecodeError as exc:
                raise InputError(f"the header is not valid JSON ({exc.msg})", path=path) from None
            if not isinstance(header, dict):
                raise InputError(f"not an mlexplore dataset cache (its header is a {type(header).__name__})",
                                 path=path)
            if header.get("format") != CACHE_FORMAT:
                raise InputError(f"not an mlexplore dataset cache (format {header.get('format')!r})",
                                 path=path)
            version = header.get("version", 0)
            if not isinstance(version, int) or version > CACHE_VERSION:
                raise InputError(f"cache version {version!r} is newer than this mlexplore "
                                 f"understands ({CACHE_VERSION}); upgrade mlexplore", path=path)
            arrays = {k: z[k] for k in z.files}
    except InputError:
        raise
    # zipfile raises NotImplementedError for a member compressed by a method it lacks (e.g. from another tool)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error, NotImplementedError) as exc:
        raise InputError(f"unreadable dataset cache: {type(exc).__name__}: {exc}", path=path) from None
    _check_arrays(arrays, header, path)
    try:
        return StructureDataset(
            numbers=arrays["numbers"], positions=arrays["positions"], cells=arrays["cells"],
            pbc=arrays["pbc"], n_atoms=arrays["n_atoms"], ids=arrays["ids"],
            structure_labels={k[2:]: v for k, v in arrays.items() if k.startswith("s:")},
            atom_labels={k[2:]: v for k, v in arrays.items() if k.startswith("a:")},
            tags=header["tags"], meta=header["meta"], name=header.get("name", ""),
        )
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        if isinstance(exc, InputError) and exc.path:
            raise
        raise InputError(f"inconsistent dataset cache: {exc}", path=path) from None

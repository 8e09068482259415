"""Descriptor ⇄ plain dict (JSON/torch-safe), so checkpoints restore the exact descriptor."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

from ..errors import InputError
from ..io.files import atomic_write
from . import terms as _terms
from .symmetry import SymmetryFunctions

__all__ = ["descriptor_to_config", "descriptor_from_config", "term_to_dict", "term_from_dict", "save_basis",
           "load_basis"]


def term_to_dict(term: _terms.Term) -> dict:
    out = {"type": type(term).__name__}
    for f in fields(term):
        v = getattr(term, f.name)
        out[f.name] = term_to_dict(v) if isinstance(v, _terms.Term) else v
    return out


def term_from_dict(d: dict) -> _terms.Term:
    d = dict(d)
    name = d.pop("type")
    cls = getattr(_terms, name, None)
    if not (isinstance(cls, type) and issubclass(cls, _terms.Term)):
        raise InputError(f"unknown descriptor term type {name!r}", field="terms")
    kwargs = {k: term_from_dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    return cls(**kwargs)


def descriptor_to_config(sf: SymmetryFunctions) -> dict:
    return {"terms": [term_to_dict(t) for t in sf.terms], "cutoff": sf.cutoff,
            "cutoff_function": sf.cutoff_name, "elements": sf.elements, "neighbor_method": sf.neighbor_method}


def descriptor_from_config(cfg: dict) -> SymmetryFunctions:
    return SymmetryFunctions([term_from_dict(t) for t in cfg["terms"]], cutoff=cfg["cutoff"],
                             cutoff_function=cfg["cutoff_function"], elements=cfg["elements"],
                             neighbor_method=cfg.get("neighbor_method", "auto"))


def save_basis(descriptor: SymmetryFunctions, path: str | os.PathLike) -> Path:
    """Write a descriptor's parameters as JSON (atomically), e.g. a basis tuned in the ``BasisTuner``
    (``save_basis(tuner.descriptor, "basis.json")``), for ``mlexplore train --basis basis.json``."""
    path = Path(path)
    with atomic_write(path) as fh:
        json.dump(descriptor_to_config(descriptor), fh, indent=1)
        fh.write("\n")
    return path


def load_basis(path: str | os.PathLike) -> SymmetryFunctions:
    """Read a descriptor written by :func:`save_basis`; a malformed file raises an
    :class:`InputError` that names it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such basis file")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(cfg, dict):
        raise InputError("a basis file holds one JSON object (see save_basis)", path=path)
    missing = [k for k in ("terms", "cutoff", "cutoff_function", "elements") if k not in cfg]
    if missing:
        raise InputError(f"the basis file lacks {missing} (write it with save_basis)", path=path)
    try:
        return descriptor_from_config(cfg)
    except InputError as exc:
        raise InputError(exc.problem, path=path, field=exc.field) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"a term in the basis file is malformed: {exc}", path=path, field="terms") from None

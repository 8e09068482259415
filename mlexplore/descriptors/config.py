"""Descriptor ⇄ plain dict (JSON/torch-safe), so checkpoints restore the exact descriptor."""

from __future__ import annotations

from dataclasses import fields

from ..errors import InputError
from . import terms as _terms
from .symmetry import SymmetryFunctions

__all__ = ["descriptor_to_config", "descriptor_from_config", "term_to_dict", "term_from_dict"]


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

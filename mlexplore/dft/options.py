"""DFT settings typed as text (``mlexplore label`` options, configuration strings) → the values
:class:`~mlexplore.dft.DFTSettings` takes. ``field`` names the option in every :class:`InputError`.

    parse_kpts("2,2,2")                          # (2, 2, 2)
    parse_magmoms(["Fe=2.5"])                    # {"Fe": 2.5, ...the defaults} (μ_B)
    parse_mixer("dif:beta=0.05,nmaxold=5")       # {"kind": "dif", "beta": 0.05, "nmaxold": 5}
"""

from __future__ import annotations

from collections.abc import Sequence

from ase.data import chemical_symbols

from ..errors import InputError
from ..io.text import parse_pairs, parse_value
from .settings import DEFAULT_MAGMOMS

__all__ = ["parse_kpts", "parse_magmoms", "parse_mixer"]


def parse_kpts(text: str | None, field: str = "kpts") -> tuple[int, int, int] | None:
    """``"2,2,2"`` → ``(2, 2, 2)`` (a Monkhorst-Pack grid); None → None."""
    if text is None:
        return None
    kpts = parse_value(text)
    if not (isinstance(kpts, tuple) and len(kpts) == 3 and all(isinstance(k, int) for k in kpts)):
        raise InputError(f"{field} expects three integers like 2,2,2, got {text!r}", field=field.lstrip("-"))
    return kpts


def parse_magmoms(items: Sequence[str] | None, field: str = "magmom") -> dict[str, float]:
    """``["Fe=2.5", "Pt=0.4"]`` → initial moments per element (μ_B) over :data:`DEFAULT_MAGMOMS`."""
    given = parse_pairs(items, field, "ELEMENT=MOMENT (e.g. Fe=2.5)", chemical_symbols[1:], number=True)
    return {**DEFAULT_MAGMOMS, **given}


def parse_mixer(text: str | None, field: str = "mixer") -> dict | None:
    """``"dif:beta=0.05,nmaxold=5,weight=50"`` → ``{"kind": "dif", "beta": 0.05, "nmaxold": 5,
    "weight": 50.0}`` (the kind is checked by :class:`DFTSettings`); None → None (GPAW's mixer)."""
    if text is None:
        return None
    kind, _, rest = text.partition(":")
    items = [t for t in rest.split(",") if t.strip()]
    values = parse_pairs(items, field, f"KIND[:beta=B,nmaxold=N,weight=W] (in {text!r})",
                         ("beta", "nmaxold", "weight"), number=True)
    return {"kind": kind.strip(), **{k: int(v) if k == "nmaxold" else v for k, v in values.items()}}

"""Per-atom colours for structure views: by element (Jmol colours) or by a value on a colour scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["element_colors", "value_colors", "to_hex"]


def to_hex(rgb: Any) -> str:
    """``#rrggbb`` from an RGB triple in [0, 1] or a plotly ``rgb(r, g, b)`` string."""
    if isinstance(rgb, str):
        if rgb.startswith("#"):
            return rgb
        rgb = [float(v) / 255 for v in rgb[rgb.index("(") + 1: rgb.index(")")].split(",")[:3]]
    r, g, b = (int(round(255 * min(max(float(v), 0.0), 1.0))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def element_colors(numbers: Any) -> list[str]:
    """Jmol colour of every atom (hex)."""
    from ase.data.colors import jmol_colors

    return [to_hex(jmol_colors[int(z)]) for z in np.asarray(numbers).reshape(-1)]


def value_colors(values: Any, colorscale: str = "RdBu_r", vmin: float | None = None, vmax: float | None = None,
                 symmetric: bool | None = None) -> tuple[list[str], float, float]:
    """Colour of every value on a plotly colour scale: ``(hex colours, vmin, vmax)``.

    ``symmetric`` (default: when the values change sign) centres the scale on 0,
    so e.g. up and down moments or gained and lost charge get opposite colours.
    """
    from plotly.colors import sample_colorscale

    v = np.asarray(values, dtype=float).reshape(-1)
    if v.size == 0:
        return [], 0.0, 0.0
    if not np.isfinite(v).all():
        raise InputError("values to colour contain NaN or inf", field="values")
    if symmetric is None:
        symmetric = v.min() < 0 < v.max()
    lo = float(v.min()) if vmin is None else float(vmin)
    hi = float(v.max()) if vmax is None else float(vmax)
    if symmetric:
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):  # (nearly) one value: the middle colour
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    t = np.clip((v - lo) / span, 0.0, 1.0)
    return [to_hex(c) for c in sample_colorscale(colorscale, t.tolist())], lo, hi

"""Values typed as text (command-line options, configuration strings) → Python values.

Every parser names the option or field it reads (``field``) in its :class:`InputError`.

    parse_value("2,2,2")                     # (2, 2, 2)
    parse_numbers("25,25", "--hidden", int)  # [25, 25]
    parse_pairs(["pair=AgPd"], "--param")    # {"pair": "AgPd"}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError

__all__ = ["parse_value", "parse_numbers", "parse_pairs"]


def parse_value(text: str) -> Any:
    """``"3"`` → 3, ``"0.1"`` → 0.1, ``"true"`` → True, ``"2,2,2"`` → (2, 2, 2), else the string itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "," in text:
        return tuple(parse_value(t) for t in text.split(","))
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_numbers(text: str, field: str, cast: type = float) -> list:
    """``"0.8,0.1,0.1"`` → ``[0.8, 0.1, 0.1]``; ``cast=int`` asks for positive integers (e.g. layer widths)."""
    try:
        values = [cast(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"{field} expects {'integers' if cast is int else 'numbers'} separated by commas, "
                         f"got {text!r}", field=field) from None
    if cast is int and (not values or any(v < 1 for v in values)):
        raise InputError(f"{field} expects positive integers, got {text!r}", field=field)
    return values


def parse_pairs(items: Sequence[str] | None, field: str, form: str = "KEY=VALUE", keys: Sequence[str] | None = None,
                number: bool = False) -> dict[str, Any]:
    """``["A=1", "B=x"]`` → ``{"A": "1", "B": "x"}`` (``number``: the values as floats); an item that is
    not ``KEY=VALUE`` (``form`` says what is expected) or whose key is not in ``keys`` is refused."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = (t.strip() for t in item.partition("="))
        if not sep or not key or (keys is not None and key not in keys):
            raise InputError(f"{field} expects {form}, got {item!r}", field=field.lstrip("-"))
        try:
            out[key] = float(value) if number else value
        except ValueError:
            raise InputError(f"{field} {item!r}: {value!r} is not a number", field=field.lstrip("-")) from None
    return out

"""Errors raised for bad user input.

Every reader and constructor in mlexplore reports malformed input with
:class:`InputError`, a :class:`ValueError` whose message names *where* the
problem is (file, line, structure, field) and *what* it is, e.g.::

    data/fept.txt, line 5, field 'x': 'abc' is not a number

:func:`describe_error` tells bad input from a bug and puts either on one line (the CLI's stderr).
"""

from __future__ import annotations

from os import PathLike

__all__ = ["InputError", "where", "describe_error", "check_whole", "check_positive"]


def where(
    path: str | PathLike | None = None,
    line: int | None = None,
    structure: int | None = None,
    field: str | None = None,
) -> str:
    """Format a location as ``"file, line N, structure K, field 'f'"`` (parts that are None are left out)."""
    parts = []
    if path is not None:
        parts.append(str(path))
    if line is not None:
        parts.append(f"line {line}")
    if structure is not None:
        parts.append(f"structure {structure}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


class InputError(ValueError):
    """Malformed or physically impossible input.

    Parameters
    ----------
    problem:
        What is wrong, in words.
    path, line, structure, field:
        Where it is wrong; each is optional and kept as an attribute so that
        callers (the CLI, widgets) can point at it.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | PathLike | None = None,
        line: int | None = None,
        structure: int | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.line = line
        self.structure = structure
        self.field = field
        loc = where(path, line, structure, field)
        super().__init__(f"{loc}: {problem}" if loc else problem)


def describe_error(exc: BaseException) -> tuple[bool, str]:
    """``(bad_input, line)``: whether ``exc`` is bad input rather than a bug, and what it says, on one line.

    Bad input: an :class:`InputError`; an ``OSError`` (a file missing, a directory, not readable),
    told as ``"path: problem"`` with the user's file (the target of a failed rename, not the
    temporary file); an ``ImportError`` of an optional dependency (of mlexplore's own modules: a bug).
    A bug's line starts with its type: ``"KeyError: 'x'"``.
    """
    own = str(getattr(exc, "name", "")).startswith("mlexplore")
    bad = isinstance(exc, (InputError, OSError)) or (isinstance(exc, ImportError) and not own)
    named = isinstance(exc, OSError) and exc.filename is not None and exc.strerror
    text = f"{exc.filename2 or exc.filename}: {exc.strerror}" if named else str(exc)
    text = text if bad and text else f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return bad, " ".join(text.split())


def _is_number(value: object, whole: bool) -> bool:
    import numpy as np

    kinds = (int, np.integer) if whole else (int, float, np.integer, np.floating)
    return isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))


def check_whole(value: object, name: str, least: int) -> int:
    """``value`` as an int if it is a whole number (not a bool, not a float) ≥ ``least``; else an
    :class:`InputError` naming the argument ``name`` and the value."""
    if not _is_number(value, whole=True) or value < least:  # type: ignore[operator]
        raise InputError(f"{name} must be a whole number ≥ {least}, got {value!r}", field=name)
    return int(value)  # type: ignore[arg-type]


def check_positive(value: object, name: str, zero: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (≥ 0 with ``zero``); else an
    :class:`InputError` naming the argument ``name`` and the value."""
    import math

    if not (_is_number(value, whole=False) and math.isfinite(value)  # type: ignore[arg-type]
            and (value >= 0 if zero else value > 0)):  # type: ignore[operator]
        raise InputError(f"{name} must be a {'non-negative' if zero else 'positive'} number, got {value!r}",
                         field=name)
    return float(value)  # type: ignore[arg-type]

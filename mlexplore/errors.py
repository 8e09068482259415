"""Errors raised for bad user input.

Every reader and constructor in mlexplore reports malformed input with
:class:`InputError`, a :class:`ValueError` whose message names *where* the
problem is (file, line, structure, field) and *what* it is, e.g.::

    data/fept.txt, line 5, field 'x': 'abc' is not a number
"""

from __future__ import annotations

from os import PathLike

__all__ = ["InputError", "where"]


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

"""How a trained model of a comparison is named: the one place that builds "STL energy" / "MTL a+b"."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["run_label"]


def run_label(tasks: Sequence[str] | str, separator: str = "+") -> str:
    """``"STL energy"`` for one task, ``"MTL energy+forces"`` for several.

    ``tasks``: the task names, or one string of names joined by ``"+"`` (a table row's ``tasks``).
    ``separator``: what joins the names in the label (``" + "`` reads better in a figure).
    """
    names = tasks.split("+") if isinstance(tasks, str) else list(tasks)
    return ("MTL " if len(names) > 1 else "STL ") + separator.join(names)

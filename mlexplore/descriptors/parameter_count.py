"""Counting a network's trainable parameters per input feature (TPI, 002 eq 3.25–3.28)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError

__all__ = ["tpi", "tpi_classwise"]


def tpi(n_inputs: int, hidden: Sequence[int] = (25, 25), n_outputs: int = 1) -> float:
    """Trainable parameters per input of a dense network (002 eq 3.25)."""
    if n_inputs < 1:
        raise InputError("n_inputs must be ≥ 1", field="n_inputs")
    widths = [n_inputs, *hidden, n_outputs]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])) / n_inputs


def tpi_classwise(n_radial: int, n_angular: int, n_spin: int = 0, hidden: Sequence[int] = (25, 25)) -> float:
    """TPI of the class-wise ("CNN") network as printed in 002 eq 3.27–3.28: a dense block per basis
    class. (The equation counts the first dense layer as ``(i + 1) h1``; the text, which
    :class:`mlexplore.models.BPNN` follows, feeds it the class outputs too, adding ``i · h1``.)"""
    n = n_radial + n_angular + n_spin
    blocks = sum((k + 1) * k for k in (n_radial, n_angular, n_spin) if k)
    return (blocks + tpi(n, hidden) * n) / n

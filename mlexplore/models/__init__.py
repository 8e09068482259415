"""Models: :class:`BPNN` (Behler-Parrinello potential). LatticeMLP and GraphNet follow."""

from .bpnn import ACTIVATIONS, BPNN, mlp

__all__ = ["BPNN", "ACTIVATIONS", "mlp"]

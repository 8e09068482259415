"""Models: :class:`BPNN` (Behler-Parrinello potential), :class:`LatticeMLP` (000 STL/MTL),
:class:`GraphNet` (001 multi-task graph network)."""

from .bpnn import ACTIVATIONS, BPNN, mlp
from .graph import GatedConv, GraphNet
from .lattice import LatticeMLP, site_occupations

__all__ = ["BPNN", "ACTIVATIONS", "mlp", "LatticeMLP", "site_occupations", "GraphNet", "GatedConv"]

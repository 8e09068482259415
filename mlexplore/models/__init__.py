"""Models: :class:`BPNN` (Behler-Parrinello potential), :class:`LatticeMLP` (000 STL/MTL),
:class:`GraphNet` (001 multi-task graph network)."""

from .bpnn import ACTIVATIONS, BPNN, mlp
from .committee import Committee
from .domain import DomainAssessment, FeatureDomain
from .graph import GatedConv, GraphNet
from .lattice import LatticeMLP, site_occupations

__all__ = ["BPNN", "Committee", "FeatureDomain", "DomainAssessment", "ACTIVATIONS", "mlp", "LatticeMLP", "site_occupations", "GraphNet", "GatedConv"]
from .ldos_net import LDOS_ACTIVATIONS, LDOSNet

__all__ += ["LDOSNet", "LDOS_ACTIVATIONS"]

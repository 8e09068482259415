"""mlexplore: machine learning of atomistic materials, made to be explored in Jupyter.

Layers (each uses only those before it; docs/architecture.md): ``data`` → ``io`` →
``descriptors`` → ``datasets`` → ``analysis`` / ``models`` / ``dft`` → ``training`` → ``viz`` →
``widgets`` → ``cli``.

Units everywhere: eV, Å, e, μ_B.
"""

from .data import StructureDataset
from .errors import InputError

__version__ = "0.1.0"
__all__ = ["StructureDataset", "InputError", "__version__"]

"""mlexplore: machine learning of atomistic materials, made to be explored in Jupyter.

Layers (each uses only those before it; docs/architecture.md): ``data`` → ``io`` →
``descriptors`` → ``datasets`` → ``analysis`` / ``models`` / ``dft`` → ``training`` → ``simulation`` → ``viz`` →
``widgets`` → ``cli``.

Units everywhere: eV, Å, e, μ_B.

On import the package sets torch's thread count for the cores this process may use and the other
work on the machine (:func:`configure_threads`; ``MLEXPLORE_NUM_THREADS`` overrides it): one
thread on a 2-core machine, where two collapse under a busy neighbour (:mod:`mlexplore.threads`).
"""

import warnings

from .data import StructureDataset
from .errors import InputError
from .threads import configure_threads

try:
    configure_threads()
except InputError as _exc:  # a bad MLEXPLORE_NUM_THREADS must not make the package unimportable
    warnings.warn(f"{_exc}; torch keeps its own thread count ({_exc.field} is read again by "
                  "mlexplore.configure_threads())", stacklevel=2)

__version__ = "0.1.0"
__all__ = ["StructureDataset", "InputError", "configure_threads", "__version__"]
